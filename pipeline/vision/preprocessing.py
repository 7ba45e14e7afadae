"""The one image preprocessing step shared by training, serving and export checks, so an exported model sees
exactly the pixels it was trained on. numpy + Pillow only: the serving side never imports torch.

Geometry for classifiers: convert to RGB, resize the shortest side to `size` (Pillow bilinear, which antialiases
when it shrinks), then take the centre `size` x `size` square. Detectors must see the whole image (a box may lie
anywhere), so they resize it to `size` x `size` without cropping (`preprocess_full`); their boxes, normalised to
the image, stay valid through that stretch. Values stay 0..255; the model normalises them itself
((x - 127) / 128, the TF-Lite EfficientNet-Lite convention), so the ONNX input is plain RGB."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image

PREPROCESSING: dict[str, Any] = {
    "color": "RGB",
    "layout": "NCHW",
    "dtype": "float32",
    "range": [0, 255],
    "resize": "shortest side to size, PIL bilinear (antialiased)",
    "crop": "centre size x size",
    "normalisation": "inside the model: (x - 127) / 128",
}


FULL_PREPROCESSING: dict[str, Any] = {
    **PREPROCESSING,
    "resize": "whole image to size x size (aspect ratio not kept), PIL bilinear (antialiased)",
    "crop": "none",
}


def describe(size: int, preprocessing: dict[str, Any] = PREPROCESSING) -> dict[str, Any]:
    """The preprocessing plus the input size: what offline users need to reproduce the model's input."""
    return {**preprocessing, "size": size}


def resize_and_crop(image: Image.Image, size: int) -> Image.Image:
    """The geometry step alone (RGB, shortest side to `size`, centre square)."""
    image = image.convert("RGB")
    width, height = image.size
    scale = size / min(width, height)
    new_width, new_height = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_width, new_height) != (width, height):
        image = image.resize((new_width, new_height), Image.Resampling.BILINEAR)
    left, top = (new_width - size) // 2, (new_height - size) // 2
    return image.crop((left, top, left + size, top + size))


def resize_full(image: Image.Image, size: int) -> Image.Image:
    """The detectors' geometry step: RGB, the whole image stretched to `size` x `size`."""
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return image


def to_array(image: Image.Image) -> np.ndarray:
    """float32 [3, H, W], RGB, 0..255, of an already resized RGB image."""
    pixels = np.asarray(image, dtype=np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def preprocess(image: Image.Image, size: int) -> np.ndarray:
    """float32 [3, size, size], RGB, 0..255: a classifier's input for one image."""
    return to_array(resize_and_crop(image, size))


def preprocess_full(image: Image.Image, size: int) -> np.ndarray:
    """float32 [3, size, size], RGB, 0..255: a detector's input for one image (nothing cropped)."""
    return to_array(resize_full(image, size))


def preprocess_batch(images: Iterable[Image.Image], size: int) -> np.ndarray:
    """float32 [N, 3, size, size] for several images."""
    return np.stack([preprocess(image, size) for image in images])
