"""Augmented views of a detection training image: the picture and its boxes (torchvision `BoundingBoxes`) pass
through the same `torchvision.transforms.v2.functional` calls: the crop and stretch, the flip and the rotation (a
rotated box becomes the upright box around it), with `augment`'s colour change. A view drops the boxes that keep
less than `min_visible` of their area in it; the first view is the serving view, `resize_full`, with every box as
it was."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F
from torchvision.tv_tensors import BoundingBoxes

from pipeline.core.augmentation import AugmentationMethod
from pipeline.vision.preprocessing import resize_full
from training_job.augment import DEFAULT_AUGMENTATION, FILL, MAX_ROTATION, Methods, change_colour


@dataclass(frozen=True)
class DetectionAugmentation:
    min_scale: float = 0.4  # crop side as a fraction of the image side (each axis drawn separately)
    full_view: float = 0.25  # chance of keeping the whole image (only flip and colour change)
    min_visible: float = 0.45  # a box keeps at least this fraction of its area, or is dropped from the view
    flip: float = 0.5
    jitter: float = 0.25


def detection_view(
    image: Image.Image,
    boxes: np.ndarray,
    size: int,
    rng: random.Random,
    methods: Methods = DEFAULT_AUGMENTATION,
    augmentation: DetectionAugmentation = DetectionAugmentation(),
) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """One augmented size x size view (stretched like `resize_full`), its boxes, and which input boxes it kept.
    The picture and its boxes go through the same torchvision calls, so they cannot drift apart."""
    view = image.convert("RGB")
    width, height = view.size
    left, top, crop_width, crop_height = _window(rng, methods, augmentation)
    left, crop_width = _pixels(left, crop_width, width)
    top, crop_height = _pixels(top, crop_height, height)
    pixels = torch.as_tensor(boxes.reshape(-1, 4), dtype=torch.float32) * torch.tensor([width, height] * 2)
    moved = BoundingBoxes(pixels, format="XYWH", canvas_size=(height, width), clamping_mode=None)
    view, moved = _together(F.resized_crop, view, moved, top, left, crop_height, crop_width, [size, size])
    moved, keep = _in_view(moved, augmentation.min_visible)
    if rng.random() < augmentation.flip and AugmentationMethod.HORIZONTAL_FLIP in methods:
        view, moved = _together(F.horizontal_flip, view, moved)
    view = change_colour(view, rng, augmentation.jitter, methods)
    if AugmentationMethod.ROTATION in methods:
        degrees = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
        view, moved = _together(F.rotate, view, moved, degrees, F.InterpolationMode.BILINEAR, fill=list(FILL))
        moved, still = _in_view(moved, augmentation.min_visible)
        keep &= still
    return view, (moved[keep] / size).numpy(), keep.numpy()


def _window(
    rng: random.Random, methods: Methods, augmentation: DetectionAugmentation
) -> tuple[float, float, float, float]:
    """The crop (left, top, width, height as fractions of the image), drawn whichever methods are enabled."""
    if rng.random() < augmentation.full_view:
        return 0.0, 0.0, 1.0, 1.0
    width, height = (rng.uniform(augmentation.min_scale, 1.0) for _ in range(2))
    left, top = rng.uniform(0, 1 - width), rng.uniform(0, 1 - height)
    if AugmentationMethod.SCALING not in methods:
        left, top, width, height = 0.0, 0.0, 1.0, 1.0
    if AugmentationMethod.TRANSLATION not in methods:
        left, top = (1 - width) / 2, (1 - height) / 2
    return left, top, width, height


def _pixels(start: float, extent: float, side: int) -> tuple[int, int]:
    """A span of the image (a fraction) in whole pixels, as torchvision crops: at least one, and inside."""
    length = max(1, round(extent * side))
    return min(round(start * side), side - length), length


def _together(
    transform: Callable[..., Any], view: Image.Image, boxes: BoundingBoxes, *args: Any, **kwargs: Any
) -> tuple[Image.Image, BoundingBoxes]:
    """The same torchvision call on the picture and on its boxes (the box kernels ignore `interpolation` and
    `fill`)."""
    return transform(view, *args, **kwargs), transform(boxes, *args, **kwargs)


def _in_view(boxes: BoundingBoxes, min_visible: float) -> tuple[BoundingBoxes, torch.Tensor]:
    """The boxes cut to the view, and which keep at least `min_visible` of their area. Written here because
    torchvision only clamps boxes, and its `SanitizeBoundingBoxes` drops them by size, not by the share of
    each still in view (the transforms leave boxes whole, `clamping_mode=None`, so that share can be
    measured)."""
    inside = F.clamp_bounding_boxes(boxes, clamping_mode="hard")
    share = inside[:, 2] * inside[:, 3] / (boxes[:, 2] * boxes[:, 3]).clamp(min=1e-12)
    return inside, share >= min_visible


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
