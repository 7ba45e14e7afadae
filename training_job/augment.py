"""Augmented views of a training image for few-shot training: a mild random resized crop, a horizontal flip, a
colour jitter and, when the project enables them, a small rotation and histogram equalisation, on the PIL image.
Which transforms run is the project's `augmentationMethods` (pipeline.core.augmentation); a view draws the same
random numbers whichever are enabled, so switching one transform off leaves the others' draws as they were. Each
view ends at the model's input size, so `preprocess` then applies exactly the geometry serving uses (a size x size
image passes through it unchanged). Detection's box-aware views are `detection_augment`'s: this module needs only
PIL, so a classifier's job never imports torchvision (seconds of its start)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageEnhance, ImageOps

from pipeline.core.augmentation import DEFAULT_METHODS, AugmentationMethod, enabled_methods
from pipeline.vision.preprocessing import resize_and_crop

Methods = frozenset[AugmentationMethod]
DEFAULT_AUGMENTATION: Methods = enabled_methods(DEFAULT_METHODS)
MAX_ROTATION = 15.0  # degrees either way
EQUALIZE = 0.25  # the share of views equalised
FILL = (124, 116, 104)  # the ImageNet mean colour, for the corners a rotation uncovers


@dataclass(frozen=True)
class Augmentation:
    min_area: float = 0.55  # of the centre square that serving sees
    max_aspect_change: float = 4 / 3
    flip: float = 0.5
    jitter: float = 0.15  # brightness, contrast and saturation factors in 1 +- jitter


def random_view(
    image: Image.Image,
    size: int,
    rng: random.Random,
    augmentation: Augmentation,
    methods: Methods = DEFAULT_AUGMENTATION,
) -> Image.Image:
    """One augmented size x size view of `image`."""
    width, height = image.size
    side = min(width, height)
    area = side * side * rng.uniform(augmentation.min_area, 1.0)
    log_ratio = math.log(augmentation.max_aspect_change)
    ratio = math.exp(rng.uniform(-log_ratio, log_ratio))
    if AugmentationMethod.SCALING not in methods:
        area, ratio = side * side, 1.0
    crop_w = min(width, round(math.sqrt(area * ratio)))
    crop_h = min(height, round(math.sqrt(area / ratio)))
    left = rng.randint(0, width - crop_w)
    top = rng.randint(0, height - crop_h)
    if AugmentationMethod.TRANSLATION not in methods:
        left, top = (width - crop_w) // 2, (height - crop_h) // 2
    view = image.convert("RGB").resize(
        (size, size), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h)
    )
    if rng.random() < augmentation.flip and AugmentationMethod.HORIZONTAL_FLIP in methods:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    view = change_colour(view, rng, augmentation.jitter, methods)
    if AugmentationMethod.ROTATION in methods:
        view = view.rotate(
            rng.uniform(-MAX_ROTATION, MAX_ROTATION), Image.Resampling.BILINEAR, fillcolor=FILL
        )
    return view


def change_colour(view: Image.Image, rng: random.Random, jitter: float, methods: Methods) -> Image.Image:
    """The colour jitter (its three factors drawn whether or not it is enabled) and the equalisation."""
    factors = [1 + rng.uniform(-jitter, jitter) for _ in range(3)]
    if AugmentationMethod.COLOR_JITTER in methods:
        for enhancer, factor in zip(
            (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color), factors, strict=True
        ):
            view = enhancer(view).enhance(factor)
    if AugmentationMethod.EQUALIZE in methods and rng.random() < EQUALIZE:
        view = ImageOps.equalize(view)
    return view


def views(
    image: Image.Image,
    size: int,
    count: int,
    rng: random.Random,
    methods: Methods = DEFAULT_AUGMENTATION,
    augmentation: Augmentation = Augmentation(),
) -> list[Image.Image]:
    """The serving view (no augmentation) followed by `count` random views."""
    return [resize_and_crop(image, size)] + [
        random_view(image, size, rng, augmentation, methods) for _ in range(count)
    ]
