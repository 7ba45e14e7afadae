"""Small images made on the fly for tests (no fixtures on disk, no ../shared needed)."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image, ImageDraw


def make_image(
    width: int = 320,
    height: int = 240,
    color: tuple[int, int, int] = (200, 30, 30),
    fmt: str = "JPEG",
    seed: int = 0,
) -> bytes:
    """A distinct picture: a coloured background with a shape whose position depends on `seed`."""
    image = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(image)
    x = (seed * 37) % max(1, width - 40)
    y = (seed * 53) % max(1, height - 40)
    draw.rectangle([x, y, x + 40, y + 40], fill=(255 - color[0], 255 - color[1], 255 - color[2]))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def noise_image(width: int, height: int, fmt: str = "BMP", seed: int = 0) -> bytes:
    """Random pixels: a valid image that does not compress, to go over a byte-size limit."""
    pixels = random.Random(seed).randbytes(width * height * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """An image bomb: a tiny, well-formed PNG (correct CRCs) whose header declares a `width` x `height` canvas."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    rows = zlib.compress(b"\0" * 1024, 9)  # the start of an all-black canvas; a decoder would keep going
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def pattern_image(kind: int, seed: int, width: int = 320, height: int = 240) -> bytes:
    """One of two easily told apart picture families (kind 0: warm stripes, kind 1: cool discs), varied by `seed`,
    so that a classifier trained on a few of each must generalise to new seeds."""
    rng = random.Random(seed * 2 + kind)
    base = (rng.randint(170, 230), rng.randint(60, 110), rng.randint(20, 60))
    if kind:
        base = base[::-1]
    image = Image.new("RGB", (width, height), base)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        shade = tuple(min(255, c + rng.randint(20, 60)) for c in base)
        if kind:
            radius = rng.randint(12, 40)
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=shade)
        else:
            draw.rectangle([0, y, width, y + rng.randint(6, 18)], fill=shade)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


DETECTION_COLOURS = ((220, 40, 40), (40, 60, 220))


def detection_scene(
    seed: int, width: int = 320, height: int = 256
) -> tuple[Image.Image, list[tuple[int, ...]]]:
    """A noisy grey-green picture with one or two solid rectangles in the two tags' colours (tag 0 red, tag 1
    blue; every third seed has both), and their boxes as (tag, left, top, width, height) in pixels."""
    import numpy as np

    rng = random.Random(seed)
    noise = np.random.default_rng(seed).normal(0, 20, (height, width, 3))
    image = Image.fromarray(np.clip(np.array([120, 140, 110]) + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    boxes = []
    tags = [seed % 2] if seed % 3 else [0, 1]
    for slot, tag in enumerate(tags):
        box_width, box_height = (
            rng.randint(width // 5, width * 2 // 5),
            rng.randint(height // 5, height * 2 // 5),
        )
        half = width // 2
        x = min(rng.randint(0, half - box_width // 2) + half * slot * (len(tags) - 1), width - box_width)
        y = rng.randint(0, height - box_height)
        draw.rectangle([x, y, x + box_width - 1, y + box_height - 1], fill=DETECTION_COLOURS[tag])
        boxes.append((tag, x, y, box_width, box_height))
    return image, boxes


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()
