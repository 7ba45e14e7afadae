"""Decode an image holding no more than it needs, and say beforehand how much that is.

A file may declare up to `max_image_pixels` while compressing to a few kilobytes (a 1-bit PNG of 10240x10240 is
13 KB). Pillow decodes such a file at full size in the file's own mode, which is narrow for the cheapest bombs (one
byte a pixel for "1", "L" and "P"); the expensive step is the conversion to RGB (four bytes a pixel) at full size.
So the decoded image is shrunk by a whole factor (box average, `Image.reduce`) strip by strip, each strip converted
to RGB on its own, and only the reduced RGB image is ever whole. The factor keeps the reduced image at least
`REDUCING_GAP` times the target size, the gap Pillow's own `thumbnail` uses, so the LANCZOS resize that follows sees
enough pixels for the result to match a full-size resize. A photo much larger than its target is rare outside JPEG,
and JPEG already decodes at a reduced scale through `draft`, which leaves the factor at 1 and the pixels unchanged.

`decode_cost` is the estimate the decode budget charges: the decoded image, the decoder's own whole-image buffers
(libjpeg's coefficients for progressive and multi-scan JPEGs, Pillow's Python RLE decoder for BMP), and the RGB
copies at the reduced and the stored size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

REDUCING_GAP = 2.0
# Pixels converted to RGB at once while reducing (16 MiB of RGB).
_STRIP_PIXELS = 4 * 1024 * 1024
_WHITE = (255, 255, 255)
_WIDE_GREY = ("I", "I;16", "I;16L", "I;16B", "I;16N")
_NARROW = ("1", "L", "P")
# Pillow decodes RLE BMPs in Python into a growing bytearray (over-allocated by up to an eighth), then copies it.
_RLE_BUFFER_BYTES_PER_PIXEL = 2.25
# libjpeg keeps every DCT coefficient (64 of 2 bytes per 8x8 block) when it cannot decode in one pass.
_COEFFICIENT_BYTES_PER_PIXEL = 2


def normalised_size(width: int, height: int, min_side: int) -> tuple[int, int]:
    """An upright image's size once upscaled so its shortest side is at least `min_side` (what Custom Vision
    reports as the image's size)."""
    up = max(1.0, min_side / min(width, height))
    return round(width * up), round(height * up)


def stored_size(width: int, height: int, min_side: int, max_side: int) -> tuple[int, int]:
    """The size a normalised image is decoded to for storage and prediction: its longest side at most `max_side`,
    unless that would take its shortest side below `min_side`, in which case the shortest side wins."""
    down = min(1.0, max_side / max(width, height))
    down = max(down, min_side / min(width, height))
    return max(1, round(width * down)), max(1, round(height * down))


def reduction_factor(size: tuple[int, int], target: tuple[int, int]) -> int:
    """The whole factor to shrink a decoded image of `size` by before resizing it to `target`."""
    scale = min(size[0] / target[0], size[1] / target[1])
    return max(1, int(scale / REDUCING_GAP))


def _bytes_per_pixel(mode: str) -> int:
    """What Pillow stores per pixel: one byte for narrow modes, two for 16-bit grey, four for everything else."""
    if mode in _NARROW:
        return 1
    return 2 if mode.startswith("I;16") else 4


def is_rle_bmp(image: Image.Image) -> bool:
    return bool(image.tile) and image.tile[0][0] == "bmp_rle"


def _jpeg_decodes_in_passes(image: Image.Image, data: bytes) -> bool:
    """Progressive JPEGs, and sequential ones whose first scan lacks a component, make libjpeg buffer the whole
    image's coefficients (whatever `draft` asked for)."""
    if image.info.get("progressive"):
        return True
    components = len(getattr(image, "layer", ())) or 1
    offset = 2
    while offset + 4 < len(data):
        marker, length = data[offset + 1], int.from_bytes(data[offset + 2 : offset + 4], "big")
        if marker == 0xDA:  # start of scan: the next byte counts the scan's components
            return data[offset + 4] < components
        offset += 2 + length
    return False


def _coefficient_bytes(image: Image.Image, declared: tuple[int, int]) -> int:
    """Every component's coefficients at the declared size, by its sampling factors."""
    layers = getattr(image, "layer", ()) or [(0, 1, 1, 0)]
    h_max = max(h for _, h, _, _ in layers)
    v_max = max(v for _, _, v, _ in layers)
    width, height = declared
    pixels = sum(width * h / h_max * height * v / v_max for _, h, v, _ in layers)
    return int(pixels * _COEFFICIENT_BYTES_PER_PIXEL)


def decode_cost(image: Image.Image, data: bytes, declared: tuple[int, int], target: tuple[int, int]) -> int:
    """Bytes a decode of the opened (and, for JPEG, drafted) `image` holds at its peak, ending at `target`."""
    width, height = image.size
    decoded = width * height * _bytes_per_pixel(image.mode)
    buffers = 0
    if image.format in ("JPEG", "MPO") and _jpeg_decodes_in_passes(image, data):
        buffers = _coefficient_bytes(image, declared)
    elif is_rle_bmp(image):
        buffers = int(width * height * _RLE_BUFFER_BYTES_PER_PIXEL)
    factor = reduction_factor(image.size, target)
    reduced = (width // factor) * (height // factor) * 4
    strip = 2 * 4 * _STRIP_PIXELS if factor > 1 else 0
    stored = target[0] * target[1] * 4
    # The reduced RGB image, one transposed or half-resized copy of it, the strips, the stored image.
    return decoded + buffers + 2 * reduced + strip + stored


def _eight_bit_grey(image: Image.Image) -> Image.Image:
    """16-bit greyscale (opened as "I;16..." or 32-bit "I") as 8-bit: the high byte of each tone. Pillow's own
    conversion clips every tone above 255, which turns a 16-bit photo white."""
    tones = np.asarray(image)
    return Image.fromarray(np.clip(tones >> 8, 0, 255).astype(np.uint8), "L")


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparent areas flattened onto white (not onto whatever colour the palette hides there)."""
    if image.mode == "RGB":
        return image
    if image.mode in _WIDE_GREY:
        image = _eight_bit_grey(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def reduced_rgb(image: Image.Image, factor: int) -> Image.Image:
    """The loaded `image` as RGB, `factor` times smaller each way, converting at most a strip of it at a time.

    The last `width % factor` columns and `height % factor` rows (fewer than `factor`, a tiny fraction of a side)
    are left out, so every reduced pixel averages a whole box and the edges are not darker or lighter than a
    full-size resize would make them."""
    if factor == 1:
        return to_rgb(image)
    width, height = image.size[0] - image.size[0] % factor, image.size[1] - image.size[1] % factor
    reduced = Image.new("RGB", (width // factor, height // factor))
    rows = factor * max(1, _STRIP_PIXELS // (width * factor))
    for top in range(0, height, rows):
        strip = to_rgb(image.crop((0, top, width, min(height, top + rows))))
        reduced.paste(strip.reduce(factor), (0, top // factor))
    return reduced
