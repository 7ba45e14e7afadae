"""Small images made on the fly for tests (no fixtures on disk, no ../shared needed)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def make_image(
    width: int = 320, height: int = 240, color: tuple[int, int, int] = (200, 30, 30), fmt: str = "JPEG", seed: int = 0
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
