"""Augmented views of a training image for few-shot training: a mild random resized crop, a horizontal flip and a
small colour jitter, on the PIL image. Each view ends at the model's input size, so `preprocess` then applies
exactly the geometry serving uses (a size x size image passes through it unchanged). Detection views move the
image's boxes with the crop and the flip, and drop boxes that the crop mostly cut away."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance

from pipeline.vision.preprocessing import resize_and_crop, resize_full


@dataclass(frozen=True)
class Augmentation:
    min_area: float = 0.55  # of the centre square that serving sees
    max_aspect_change: float = 4 / 3
    flip: float = 0.5
    jitter: float = 0.15  # brightness, contrast and saturation factors in 1 +- jitter


def random_view(image: Image.Image, size: int, rng: random.Random, augmentation: Augmentation) -> Image.Image:
    """One augmented size x size view of `image`."""
    width, height = image.size
    side = min(width, height)
    area = side * side * rng.uniform(augmentation.min_area, 1.0)
    log_ratio = math.log(augmentation.max_aspect_change)
    ratio = math.exp(rng.uniform(-log_ratio, log_ratio))
    crop_w = min(width, round(math.sqrt(area * ratio)))
    crop_h = min(height, round(math.sqrt(area / ratio)))
    left = rng.randint(0, width - crop_w)
    top = rng.randint(0, height - crop_h)
    view = image.convert("RGB").resize(
        (size, size), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h)
    )
    if rng.random() < augmentation.flip:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return jitter_colour(view, rng, augmentation.jitter)


def jitter_colour(view: Image.Image, rng: random.Random, jitter: float) -> Image.Image:
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        view = enhancer(view).enhance(1 + rng.uniform(-jitter, jitter))
    return view


def views(
    image: Image.Image, size: int, count: int, rng: random.Random, augmentation: Augmentation = Augmentation()
) -> list[Image.Image]:
    """The serving view (no augmentation) followed by `count` random views."""
    return [resize_and_crop(image, size)] + [
        random_view(image, size, rng, augmentation) for _ in range(count)
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


def detection_view(
    image: Image.Image,
    boxes: np.ndarray,
    size: int,
    rng: random.Random,
    augmentation: DetectionAugmentation = DetectionAugmentation(),
) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """One augmented size x size view (stretched like `resize_full`), its boxes, and which input boxes it kept."""
    window = (0.0, 0.0, 1.0, 1.0)
    if rng.random() >= augmentation.full_view:
        width, height = (rng.uniform(augmentation.min_scale, 1.0) for _ in range(2))
        window = (rng.uniform(0, 1 - width), rng.uniform(0, 1 - height), width, height)
    kept_boxes, keep = crop_boxes(boxes.reshape(-1, 4), window, augmentation.min_visible)
    w, h = image.size
    left, top, width, height = window
    view = image.convert("RGB").resize(
        (size, size),
        Image.Resampling.BILINEAR,
        box=(left * w, top * h, (left + width) * w, (top + height) * h),
    )
    if rng.random() < augmentation.flip:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        kept_boxes[:, 0] = 1 - kept_boxes[:, 0] - kept_boxes[:, 2]
    return jitter_colour(view, rng, augmentation.jitter), kept_boxes, keep


def detection_views(
    image: Image.Image, boxes: np.ndarray, size: int, count: int, rng: random.Random
) -> list[tuple[Image.Image, np.ndarray, np.ndarray]]:
    """The serving view (the whole image, all boxes) followed by `count` random views."""
    everything = np.ones(len(boxes), dtype=bool)
    return [(resize_full(image, size), boxes.reshape(-1, 4).copy(), everything)] + [
        detection_view(image, boxes, size, rng) for _ in range(count)
    ]
