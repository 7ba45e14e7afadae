"""A corpus of hostile and awkward image files, generated in memory for given limits (no fixtures in git).

Each case names what Seer must do with it: accept it (`refused is None`, with the colour its upright top-left and
bottom-right corners must have) or refuse it with an ImageCreateStatus. Bombs are built at the largest size the
settings allow and just past it, cheaply: PNG rows are streamed through zlib and RLE BMPs are written by hand, so a
10240x10240 bomb costs no more than its file to make.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ImageCreateStatus

FORMAT = ImageCreateStatus.ERROR_IMAGE_FORMAT
DIMENSIONS = ImageCreateStatus.ERROR_IMAGE_DIMENSIONS
SIZE = ImageCreateStatus.ERROR_IMAGE_SIZE
Colour = tuple[int, int, int]
# The four quadrants of the EXIF test picture, as seen upright: red, green / blue, white.
QUADRANTS: tuple[Colour, Colour, Colour, Colour] = ((200, 0, 0), (0, 200, 0), (0, 0, 200), (255, 255, 255))


@dataclass(frozen=True)
class HostileCase:
    name: str
    data: bytes
    refused: ImageCreateStatus | None = None  # None: accepted
    corners: tuple[Colour, Colour] | None = None  # accepted: upright top-left and bottom-right colours
    filename: str = "image"
    content_type: str = "application/octet-stream"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(
    width: int, height: int, bit_depth: int, colour_type: int, row: bytes, extra: bytes = b"", rows: int = -1
) -> bytes:
    """A PNG whose every row is `row` (unfiltered); `rows` < height writes only that many (a truncated stream)."""
    packer = zlib.compressobj(9)
    count = height if rows < 0 else rows
    batch = max(1, (1 << 20) // (len(row) + 1))  # about 1 MiB of rows per call
    line = b"\0" + row
    body = b"".join(packer.compress(line * min(batch, count - done)) for done in range(0, count, batch))
    body += packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + extra + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )


def bmp_rle8(width: int, height: int, index: int = 7, end_early: bool = False) -> bytes:
    """An 8-bit RLE BMP of one grey: runs of 255 pixels, or (`end_early`) an end-of-bitmap after one row."""
    palette = b"".join(struct.pack("<BBBB", i, i, i, 0) for i in range(256))
    row = b"".join(bytes([n, index]) for n in [255] * (width // 255) + [width % 255] if n) + b"\0\0"
    rows = row + b"\0\1" if end_early else row * height + b"\0\1"
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(rows), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + info + palette + rows


def bmp_declaring(width: int, height: int) -> bytes:
    """A 24-bit BMP header declaring `width` x `height`, followed by a few bytes of pixels."""
    row = bytes(16)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + len(row), 0, 0, 54) + info + row


def _saved(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _gif_screen(data: bytes, width: int, height: int) -> bytes:
    """The GIF with its logical screen set to `width` x `height` (the frame stays as it was)."""
    return data[:6] + struct.pack("<HH", width, height) + data[10:]


def _gif_frames(data: bytes, frames: int) -> bytes:
    """The single-frame GIF with its image block repeated: `frames` frames."""
    start = data.index(b"\x2c", 13 + 3 * 2 ** ((data[10] & 7) + 1))
    block = data[start:-1]  # image descriptor to the last data sub-block; the trailer (0x3B) stays last
    return data[:start] + block * frames + data[-1:]


def _jpeg_declaring(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF0) declaring `width` x `height`."""
    at = data.index(b"\xff\xc0") + 5
    return data[:at] + struct.pack(">HH", height, width) + data[at + 4 :]


def exif_picture(orientation: int) -> bytes:
    """A 400x300 JPEG (as seen upright) of four coloured quadrants, stored rotated/flipped for `orientation`."""
    upright = Image.new("RGB", (400, 300), QUADRANTS[3])
    for index, colour in enumerate(QUADRANTS[:3]):
        upright.paste(
            colour, ((index % 2) * 200, (index // 2) * 150, (index % 2) * 200 + 200, (index // 2) * 150 + 150)
        )
    undo = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    stored = upright.transpose(undo[orientation]) if orientation in undo else upright
    exif = stored.getexif()
    exif[0x0112] = orientation
    return _saved(stored, "JPEG", quality=95, exif=exif)


def bombs(side: int, settings: Settings) -> Iterator[HostileCase]:
    """The largest canvas each format may declare, at a tiny file size: all must be accepted."""
    grey, white = (100, 100, 100), (255, 255, 255)
    yield HostileCase(
        "png 1-bit bomb", png(side, side, 1, 0, b"\xff" * math.ceil(side / 8)), corners=(white, white)
    )
    yield HostileCase("png 8-bit grey bomb", png(side, side, 8, 0, bytes([100]) * side), corners=(grey, grey))
    palette = _chunk(b"PLTE", bytes([10, 200, 30]) + bytes(765))
    yield HostileCase(
        "png palette bomb",
        png(side, side, 8, 3, bytes(side), palette),
        corners=((10, 200, 30), (10, 200, 30)),
    )
    transparent = palette + _chunk(b"tRNS", b"\0")
    yield HostileCase(
        "png transparent palette bomb",
        png(side, side, 8, 3, bytes(side), transparent),
        corners=(white, white),
    )
    yield HostileCase(
        "png rgb bomb", png(side, side, 8, 2, bytes([1, 2, 3]) * side), corners=((1, 2, 3), (1, 2, 3))
    )
    rle_side = min(side, math.isqrt(16 * 1024 * 1024))
    yield HostileCase("bmp rle8 bomb", bmp_rle8(rle_side, rle_side), corners=((7, 7, 7), (7, 7, 7)))
    yield HostileCase("bmp rle8 past the rle limit", bmp_rle8(rle_side + 1, rle_side + 1), DIMENSIONS)
    one_bit = min(side, math.isqrt(settings.max_training_image_bytes * 8 * 9 // 10))
    yield HostileCase(
        "bmp 1-bit bomb", _saved(Image.new("1", (one_bit, one_bit), 1), "BMP"), corners=(white, white)
    )
    frame = _saved(Image.new("P", (1, 1), 0), "GIF")
    yield HostileCase("gif bomb", _saved(Image.new("L", (side, side), 100), "GIF"), corners=(grey, grey))
    yield HostileCase("gif huge screen, 1x1 frame", _gif_screen(frame, side, side))
    yield HostileCase("gif with 100000 frames", _gif_frames(frame, 100_000), corners=((0, 0, 0), (0, 0, 0)))
    jpeg_colour = (100, 50, 20)
    yield HostileCase("jpeg bomb", _saved(Image.new("L", (side, side), 100), "JPEG"), corners=(grey, grey))
    yield HostileCase(
        "progressive jpeg bomb",
        _saved(Image.new("RGB", (side, side), jpeg_colour), "JPEG", progressive=True),
        corners=(jpeg_colour, jpeg_colour),
    )


def _beyond_limits(side: int) -> Iterator[HostileCase]:
    """Files declaring more than the limits: refused from the header, before any decoding."""
    yield HostileCase("png one pixel too wide", png(side + 1, 1, 8, 0, bytes(side + 1)), DIMENSIONS)
    yield HostileCase("png 65535x65535", png(65535, 65535, 1, 0, bytes(8192), rows=1), DIMENSIONS)
    yield HostileCase("bmp one pixel too tall", bmp_declaring(1, side + 1), DIMENSIONS)
    yield HostileCase("bmp 2^31-1 wide", bmp_declaring(2**31 - 1, 1), DIMENSIONS)
    frame = _saved(Image.new("P", (1, 1), 0), "GIF")
    yield HostileCase("gif screen one pixel too wide", _gif_screen(frame, side + 1, 1), DIMENSIONS)
    yield HostileCase("gif screen 65535x65535", _gif_screen(frame, 65535, 65535), DIMENSIONS)
    small = _saved(Image.new("RGB", (64, 64), (9, 9, 9)), "JPEG")
    yield HostileCase("jpeg one pixel too tall", _jpeg_declaring(small, 64, side + 1), DIMENSIONS)
    yield HostileCase("jpeg 65500x65500", _jpeg_declaring(small, 65500, 65500), DIMENSIONS)


def _truncated() -> Iterator[HostileCase]:
    picture = Image.new("RGB", (300, 300), (30, 60, 90))
    for fmt, data in (
        ("png", png(1000, 1000, 8, 2, bytes(range(250)) * 12)),
        ("bmp", _saved(picture, "BMP")),
        ("gif", _saved(picture.quantize(16), "GIF")),
        ("jpeg", _saved(picture, "JPEG")),
        ("progressive jpeg", _saved(picture, "JPEG", progressive=True)),
        ("bmp rle8", bmp_rle8(300, 300, end_early=True)),
    ):
        cut = data if fmt == "bmp rle8" else data[: len(data) // 2]
        yield HostileCase(f"truncated {fmt}", cut, FORMAT)
    # A complete zlib stream with fewer rows than declared: Pillow leaves the missing rows black.
    short = png(1000, 1000, 8, 2, bytes([9, 9, 9]) * 1000, rows=400)
    yield HostileCase("png whose rows stop early", short, corners=((9, 9, 9), (0, 0, 0)))


def _wrong_types() -> Iterator[HostileCase]:
    picture = Image.new("RGB", (300, 300), (30, 60, 90))
    yield HostileCase("zero bytes", b"", FORMAT)
    yield HostileCase(
        "text", b"hello, this is not an image\n" * 10, FORMAT, filename="a.jpg", content_type="image/jpeg"
    )
    yield HostileCase("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n", FORMAT)
    yield HostileCase("tiff", _saved(picture, "TIFF"), FORMAT, content_type="image/tiff")
    yield HostileCase("webp", _saved(picture, "WEBP"), FORMAT, content_type="image/webp")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300"><rect width="300" height="300"/></svg>'
    yield HostileCase("svg", svg, FORMAT, content_type="image/svg+xml")
    colour = (30, 60, 90)
    yield HostileCase(
        "png named and typed as jpeg",
        _saved(picture, "PNG"),
        corners=(colour, colour),
        filename="photo.jpg",
        content_type="image/jpeg",
    )


def _awkward(side: int, settings: Settings) -> Iterator[HostileCase]:
    """Valid images that are easy to get wrong: deep colour, CMYK, rotations, tiny and extreme shapes."""
    tones = struct.pack(">H", 32768) * 300
    yield HostileCase("png 16-bit grey", png(300, 300, 16, 0, tones), corners=((128, 128, 128),) * 2)
    rgb16 = struct.pack(">HHH", 65535, 32768, 0) * 300
    yield HostileCase("png 16-bit rgb", png(300, 300, 16, 2, rgb16), corners=((255, 128, 0),) * 2)
    cmyk = _saved(Image.new("RGB", (300, 300), (200, 40, 40)).convert("CMYK"), "JPEG")
    yield HostileCase("cmyk jpeg", cmyk, corners=((200, 40, 40),) * 2)
    for orientation in range(1, 9):
        yield HostileCase(
            f"jpeg exif orientation {orientation}",
            exif_picture(orientation),
            corners=(QUADRANTS[0], QUADRANTS[3]),
        )
    yield HostileCase("png 1x1", _saved(Image.new("RGB", (1, 1), (5, 6, 7)), "PNG"), corners=((5, 6, 7),) * 2)
    low = settings.min_image_side
    yield HostileCase(
        "png at the widest allowed aspect ratio",
        png(side, low, 8, 0, bytes([50]) * side),
        corners=((50, 50, 50),) * 2,
    )
    yield HostileCase("png past the widest aspect ratio", png(side, low - 1, 8, 0, bytes(side)), DIMENSIONS)
    yield HostileCase("png one pixel high and wide as allowed", png(side, 1, 8, 0, bytes(side)), DIMENSIONS)
    too_big = b"\x89PNG\r\n\x1a\n" + bytes(settings.max_training_image_bytes)
    yield HostileCase("one byte past the size limit", too_big, SIZE)


def hostile_cases(settings: Settings) -> list[HostileCase]:
    """Every case for `settings`' limits."""
    side = min(settings.max_image_side, math.isqrt(settings.max_image_pixels))
    return [
        *bombs(side, settings),
        *_beyond_limits(settings.max_image_side),
        *_truncated(),
        *_wrong_types(),
        *_awkward(side, settings),
    ]
