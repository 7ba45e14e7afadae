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
