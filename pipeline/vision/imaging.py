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

import numpy as np
from PIL import ExifTags, Image, ImageOps

from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ImageCreateStatus

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
RESIZED_QUALITY = 90
THUMBNAIL_QUALITY = 85
_WHITE = (255, 255, 255)
_WIDE_GREY = ("I", "I;16", "I;16L", "I;16B", "I;16N")


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


def _orientation(image: Image.Image) -> int:
    return image.getexif().get(ExifTags.Base.Orientation, 1)


def _geometry(width: int, height: int, settings: Settings) -> _Geometry:
    """Sizes of the normalised and the stored image, from the upright (EXIF-applied) size."""
    up = max(1.0, settings.min_image_side / min(width, height))
    norm_w, norm_h = round(width * up), round(height * up)
    if max(norm_w, norm_h) > settings.max_image_side:
        raise ImageRejected(
            ImageCreateStatus.ERROR_IMAGE_DIMENSIONS,
            f"The image is {width}x{height}; upscaled to a shortest side of {settings.min_image_side} its longest "
            f"side would exceed {settings.max_image_side} pixels.",
        )
    down = min(1.0, settings.stored_image_max_side / max(norm_w, norm_h))
    down = max(down, settings.min_image_side / min(norm_w, norm_h))
    return _Geometry(norm_w, norm_h, (max(1, round(norm_w * down)), max(1, round(norm_h * down))))


def _eight_bit_grey(image: Image.Image) -> Image.Image:
    """16-bit greyscale (opened as "I;16..." or 32-bit "I") as 8-bit: the high byte of each tone. Pillow's own
    conversion clips every tone above 255, which turns a 16-bit photo white."""
    tones = np.asarray(image)
    return Image.fromarray(np.clip(tones >> 8, 0, 255).astype(np.uint8), "L")


def _to_rgb(image: Image.Image) -> Image.Image:
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


def _load(data: bytes, settings: Settings, max_bytes: int) -> tuple[Image.Image, _Geometry, str]:
    """The upright RGB image at the stored size, its geometry, and the file's format."""
    image = _open(data, settings, max_bytes)
    file_format = image.format or ""
    try:
        orientation = _orientation(image)
        upright = image.size[::-1] if orientation in _SWAPS_AXES else image.size
        geometry = _geometry(*upright, settings)
        target = geometry.resized[::-1] if orientation in _SWAPS_AXES else geometry.resized
        if file_format in ("JPEG", "MPO"):
            image.draft("RGB", target)  # let libjpeg decode at a reduced scale when the photo is much larger
        image.load()  # full decode: truncated or corrupt data fails here (LOAD_TRUNCATED_IMAGES stays off)
        rgb = _to_rgb(ImageOps.exif_transpose(image))
        if rgb.size != geometry.resized:
            rgb = rgb.resize(geometry.resized, Image.Resampling.LANCZOS)
    except ImageRejected:
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
