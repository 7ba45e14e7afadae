"""Augmented views of a training image for few-shot training: a mild random resized crop, a horizontal flip, a
colour jitter and, when the project enables them, a small rotation and histogram equalisation, on the PIL image.
Which transforms run is the project's `augmentationMethods` (pipeline.core.augmentation); a view draws the same
random numbers whichever are enabled, so switching one transform off leaves the others' draws as they were. Each
view ends at the model's input size, so `preprocess` then applies exactly the geometry serving uses (a size x size
image passes through it unchanged). Detection views move the image's boxes with the crop, the flip and the
rotation, and drop boxes that the crop mostly cut away."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from pipeline.core.augmentation import DEFAULT_METHODS, AugmentationMethod, enabled_methods
from pipeline.vision.preprocessing import resize_and_crop, resize_full

Methods = frozenset[AugmentationMethod]
DEFAULT_AUGMENTATION: Methods = enabled_methods(DEFAULT_METHODS)
MAX_ROTATION = 15.0  # degrees either way
EQUALIZE = 0.25  # the share of views equalised
_FILL = (124, 116, 104)  # the ImageNet mean colour, for the corners a rotation uncovers


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
            rng.uniform(-MAX_ROTATION, MAX_ROTATION), Image.Resampling.BILINEAR, fillcolor=_FILL
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


@dataclass(frozen=True)
class DetectionAugmentation:
    min_scale: float = 0.4  # crop side as a fraction of the image side (each axis drawn separately)
    full_view: float = 0.25  # chance of keeping the whole image (only flip and colour change)
    min_visible: float = 0.45  # a box keeps at least this fraction of its area, or is dropped from the view
    flip: float = 0.5
    jitter: float = 0.25


def crop_boxes(
    boxes: np.ndarray, window: tuple[float, float, float, float], min_visible: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [n, 4] (left, top, width, height, normalised to the image) seen through `window` (the same form),
    normalised to the window, and which boxes were kept (those with at least `min_visible` of their area inside)."""
    left, top, width, height = window
    x0 = np.clip(boxes[:, 0], left, left + width)
    y0 = np.clip(boxes[:, 1], top, top + height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], left, left + width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], top, top + height)
    visible = (x1 - x0) * (y1 - y0) / np.maximum(boxes[:, 2] * boxes[:, 3], 1e-12)
    keep = visible >= min_visible
    inside = np.stack([(x0 - left) / width, (y0 - top) / height, (x1 - x0) / width, (y1 - y0) / height], 1)
    return inside[keep], keep


def rotate_boxes(boxes: np.ndarray, degrees: float) -> np.ndarray:
    """Boxes [n, 4] of a square view, normalised, after `Image.rotate(degrees)` (counter-clockwise about the
    centre): the upright box around each rotated box, which may reach past the view (`crop_boxes` clips it)."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    xs = np.stack([boxes[:, 0], boxes[:, 0] + boxes[:, 2]] * 2, 1) - 0.5
    ys = np.stack([boxes[:, 1]] * 2 + [boxes[:, 1] + boxes[:, 3]] * 2, 1) - 0.5
    turned_x = xs * cos + ys * sin + 0.5
    turned_y = -xs * sin + ys * cos + 0.5
    left, top = turned_x.min(1), turned_y.min(1)
    return np.stack([left, top, turned_x.max(1) - left, turned_y.max(1) - top], 1).astype(boxes.dtype)


def detection_view(
    image: Image.Image,
    boxes: np.ndarray,
    size: int,
    rng: random.Random,
    methods: Methods = DEFAULT_AUGMENTATION,
    augmentation: DetectionAugmentation = DetectionAugmentation(),
) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """One augmented size x size view (stretched like `resize_full`), its boxes, and which input boxes it kept."""
    window = (0.0, 0.0, 1.0, 1.0)
    if rng.random() >= augmentation.full_view:
        width, height = (rng.uniform(augmentation.min_scale, 1.0) for _ in range(2))
        left, top = rng.uniform(0, 1 - width), rng.uniform(0, 1 - height)
        if AugmentationMethod.SCALING not in methods:
            left, top, width, height = 0.0, 0.0, 1.0, 1.0
        if AugmentationMethod.TRANSLATION not in methods:
            left, top = (1 - width) / 2, (1 - height) / 2
        window = (left, top, width, height)
    kept_boxes, keep = crop_boxes(boxes.reshape(-1, 4), window, augmentation.min_visible)
    w, h = image.size
    left, top, width, height = window
    view = image.convert("RGB").resize(
        (size, size),
        Image.Resampling.BILINEAR,
        box=(left * w, top * h, (left + width) * w, (top + height) * h),
    )
    if rng.random() < augmentation.flip and AugmentationMethod.HORIZONTAL_FLIP in methods:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        kept_boxes[:, 0] = 1 - kept_boxes[:, 0] - kept_boxes[:, 2]
    view = change_colour(view, rng, augmentation.jitter, methods)
    if AugmentationMethod.ROTATION in methods:
        degrees = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
        view = view.rotate(degrees, Image.Resampling.BILINEAR, fillcolor=_FILL)
        turned, still = crop_boxes(
            rotate_boxes(kept_boxes, degrees), (0.0, 0.0, 1.0, 1.0), augmentation.min_visible
        )
        kept_boxes, keep = turned, _narrowed(keep, still)
    return view, kept_boxes, keep


def _narrowed(keep: np.ndarray, still: np.ndarray) -> np.ndarray:
    """`keep` (over the input boxes) with the kept boxes that `still` (over the kept ones) drops turned off."""
    narrowed = keep.copy()
    narrowed[np.flatnonzero(keep)[~still]] = False
    return narrowed


def detection_views(
    image: Image.Image,
    boxes: np.ndarray,
    size: int,
    count: int,
    rng: random.Random,
    methods: Methods = DEFAULT_AUGMENTATION,
) -> list[tuple[Image.Image, np.ndarray, np.ndarray]]:
    """The serving view (the whole image, all boxes) followed by `count` random views."""
    everything = np.ones(len(boxes), dtype=bool)
    return [(resize_full(image, size), boxes.reshape(-1, 4).copy(), everything)] + [
        detection_view(image, boxes, size, rng, methods) for _ in range(count)
    ]
