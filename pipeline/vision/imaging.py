"""Validate and normalise uploaded image bytes, the same way for training uploads and for prediction.

Order matters for safety: the byte size is checked first, then the dimensions the file *declares* (read lazily
by `Image.open`), and only then are pixels decoded, so a small file declaring a huge canvas is refused before it
can allocate anything.

Geometry, as Custom Vision does it: EXIF orientation is applied, then the image is upscaled so its shortest side is
at least `min_image_side` (256). That is the *normalised* image; its size is what `Image.width/height` report. An
image whose normalised longest side would exceed `max_image_side` (an aspect ratio over 40:1 with the defaults) is
refused with ErrorImageDimensions, since it could not be normalised without a huge allocation. The stored "resized"
copy used for training (and the image `decode_image` hands to prediction) is the normalised image scaled down so its
longest side is at most `stored_image_max_side`, unless that would take the shortest side below `min_image_side`,
in which case the shortest side wins.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import ExifTags, Image

from pipeline.core.errors import ServiceUnavailable
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ImageCreateStatus
from pipeline.vision.decode_budget import decode_budget
from pipeline.vision.reduced_decode import (
    decode_cost,
    is_rle_bmp,
    normalised_size,
    reduced_rgb,
    reduction_factor,
    stored_size,
)

# Pillow plugins allowed to open uploads: the formats Custom Vision accepts, nothing else.
ACCEPTED_FORMATS = ("JPEG", "PNG", "BMP", "GIF")
# Camera JPEGs with a second picture (e.g. depth) open as MPO; they are JPEG files.
_CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "BMP": "image/bmp",
    "GIF": "image/gif",
}
_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "BMP": "bmp", "GIF": "gif"}
# EXIF orientations 5-8 rotate by 90 degrees, so width and height swap.
_SWAPS_AXES = {5, 6, 7, 8}
# What makes each EXIF orientation upright (as `ImageOps.exif_transpose`).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Larger RLE BMPs are refused: Pillow's RLE decoder is pure Python (about 0.1 s per million pixels, GIL held).
MAX_RLE_BMP_PIXELS = 16 * 1024 * 1024
RESIZED_QUALITY = 90
THUMBNAIL_QUALITY = 85


class ImageRejected(Exception):
    """An image Seer will not store or predict on; `status` is the ImageCreateStatus to report."""

    def __init__(self, status: ImageCreateStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class PreparedImage:
    """Everything stored for one training image."""

    original: bytes
    format: str
    content_type: str
    extension: str
    resized: bytes
    thumbnail: bytes
    width: int
    height: int
    content_hash: str


@dataclass(frozen=True)
class _Geometry:
    width: int  # normalised size (reported)
    height: int
    resized: tuple[int, int]  # stored / model-input size


def content_hash(data: bytes) -> str:
    """Duplicates are detected on the exact bytes uploaded."""
    return hashlib.sha256(data).hexdigest()


def _open(data: bytes, settings: Settings, max_bytes: int) -> Image.Image:
    """Open lazily (header only) and refuse oversize files and oversize declared dimensions."""
    if len(data) > max_bytes:
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_SIZE,
            f"The image is {len(data)} bytes; the limit is {max_bytes} bytes.",
        )
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_DIMENSIONS, f"The image is too large: {exc}"
        ) from exc
    except Exception as exc:  # Pillow signals unreadable input with several exception types
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_FORMAT, "The file is not a JPEG, PNG, BMP or GIF image."
        ) from exc
    width, height = image.size
    if min(width, height) < 1 or max(width, height) > settings.max_image_side:
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_DIMENSIONS,
            f"The image is {width}x{height}; each side must be 1 to {settings.max_image_side} pixels.",
        )
    if width * height > settings.max_image_pixels:
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_DIMENSIONS,
            f"The image has {width * height} pixels; the limit is {settings.max_image_pixels}.",
        )
    return image


def _png_exif_after_pixels(data: bytes) -> bytes:
    """The eXIf chunk of a PNG that puts it after the image data ("Exif\\0\\0" and the chunk), or b"" if none,
    found by walking the chunk headers."""
    offset = 8
    while offset + 8 <= len(data):
        length, kind = int.from_bytes(data[offset : offset + 4], "big"), data[offset + 4 : offset + 8]
        if kind == b"eXIf":
            return b"Exif\0\0" + data[offset + 8 : offset + 8 + length]
        if kind == b"IEND":
            break
        offset += 12 + length
    return b""


def _orientation(image: Image.Image, data: bytes) -> int:
    """The EXIF orientation, read without decoding: Pillow's PNG plugin decodes the whole image to look for an
    eXIf chunk after the pixels, outside the decode budget and at full size, so that chunk is found here."""
    if image.format == "PNG" and "exif" not in image.info:
        image.info["exif"] = _png_exif_after_pixels(data)
    return image.getexif().get(ExifTags.Base.Orientation, 1)


def _geometry(width: int, height: int, settings: Settings) -> _Geometry:
    """Sizes of the normalised and the stored image, from the upright (EXIF-applied) size."""
    norm_w, norm_h = normalised_size(width, height, settings.min_image_side)
    if max(norm_w, norm_h) > settings.max_image_side:
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_DIMENSIONS,
            f"The image is {width}x{height}; upscaled to a shortest side of {settings.min_image_side} its longest "
            f"side would exceed {settings.max_image_side} pixels.",
        )
    resized = stored_size(norm_w, norm_h, settings.min_image_side, settings.stored_image_max_side)
    return _Geometry(norm_w, norm_h, resized)


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)


def _refuse_slow_decoders(image: Image.Image) -> None:
    """Pillow decodes RLE BMPs in Python, about ten seconds for the largest allowed canvas with the GIL held."""
    width, height = image.size
    if is_rle_bmp(image) and width * height > MAX_RLE_BMP_PIXELS:
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_DIMENSIONS,
            f"The image is a {width}x{height} RLE-compressed BMP; RLE BMPs may have at most "
            f"{MAX_RLE_BMP_PIXELS} pixels.",
        )


def _decode(
    image: Image.Image, data: bytes, orientation: int, geometry: _Geometry, settings: Settings
) -> Image.Image:
    """The upright RGB image at the stored size, decoded within the process's decode budget."""
    target = geometry.resized[::-1] if orientation in _SWAPS_AXES else geometry.resized
    declared = image.size
    if image.format in ("JPEG", "MPO"):
        image.draft("RGB", target)  # let libjpeg decode at a reduced scale when the photo is much larger
    _refuse_slow_decoders(image)
    cost = decode_cost(image, data, declared, target)
    budget = decode_budget(settings)
    if cost > budget.capacity:
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_DIMENSIONS,
            f"Decoding this {declared[0]}x{declared[1]} image would take {cost >> 20} MiB; the decoding budget is "
            f"{budget.capacity >> 20} MiB.",
        )
    with budget.hold(cost, settings.decode_wait_seconds):
        image.load()  # full decode: truncated or corrupt data fails here (LOAD_TRUNCATED_IMAGES stays off)
        rgb = _upright(reduced_rgb(image, reduction_factor(image.size, target)), orientation)
        if rgb.size != geometry.resized:
            rgb = rgb.resize(geometry.resized, Image.Resampling.LANCZOS)
        if rgb is not image:
            image.close()  # free the full-size pixels now, while they are still counted
    return rgb


def _load(data: bytes, settings: Settings, max_bytes: int) -> tuple[Image.Image, _Geometry, str]:
    """The upright RGB image at the stored size, its geometry, and the file's format."""
    image = _open(data, settings, max_bytes)
    file_format = image.format or ""
    try:
        orientation = _orientation(image, data)
        upright = image.size[::-1] if orientation in _SWAPS_AXES else image.size
        geometry = _geometry(*upright, settings)
        rgb = _decode(image, data, orientation, geometry, settings)
    except (ImageRejected, ServiceUnavailable):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_DIMENSIONS, f"The image is too large: {exc}"
        ) from exc
    except Exception as exc:  # Pillow signals corrupt pixel data or EXIF with several exception types
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_FORMAT, "The image data is truncated or corrupt."
        ) from exc
    return rgb, geometry, file_format


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@dataclass(frozen=True)
class DecodedImage:
    """An upload decoded for use: the upright RGB image at the stored size, and what the file was."""

    image: Image.Image
    format: str
    width: int  # normalised size (what the API reports)
    height: int

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.format]


def decode_image(data: bytes, settings: Settings, *, max_bytes: int) -> DecodedImage:
    """Validate and decode an upload (training: `max_training_image_bytes`, prediction:
    `max_prediction_image_bytes`); raises ImageRejected for bad input."""
    rgb, geometry, file_format = _load(data, settings, max_bytes)
    return DecodedImage(rgb, file_format, geometry.width, geometry.height)


def stored_copies(image: Image.Image, settings: Settings) -> tuple[bytes, bytes]:
    """The resized JPEG (what training reads) and the thumbnail JPEG kept for a decoded image."""
    thumbnail = image.copy()
    thumbnail.thumbnail((settings.thumbnail_max_side, settings.thumbnail_max_side), Image.Resampling.LANCZOS)
    return _jpeg(image, RESIZED_QUALITY), _jpeg(thumbnail, THUMBNAIL_QUALITY)


def prepare_image(data: bytes, settings: Settings, *, max_bytes: int) -> PreparedImage:
    """Validate an upload and produce what is stored for it; raises ImageRejected for bad input."""
    decoded = decode_image(data, settings, max_bytes=max_bytes)
    resized, thumbnail = stored_copies(decoded.image, settings)
    return PreparedImage(
        original=data,
        format=decoded.format,
        content_type=decoded.content_type,
        extension=decoded.extension,
        resized=resized,
        thumbnail=thumbnail,
        width=decoded.width,
        height=decoded.height,
        content_hash=content_hash(data),
    )
