"""The picture in a request's bytes, decoded as Seer's service decodes a picture to predict on
(pipeline/vision/imaging.py), with its limits, using the service's own `reduced_decode.py` shipped beside this
file: so the model gets exactly the pixels the service would give it."""

from __future__ import annotations

import io

from answers import BadInput
from config import Config
from PIL import ExifTags, Image, ImageOps
from reduced_decode import normalised_size, reduced_rgb, reduction_factor, stored_size

FORMATS = ("JPEG", "PNG", "BMP", "GIF")
SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that turn the picture a quarter


def decode(data: bytes, config: Config) -> Image.Image:
    """The picture in `data` as Seer's service decodes it for prediction (pipeline/vision/imaging.py): upright,
    RGB with transparency flattened onto white, brought to the size the service predicts at (LANCZOS; JPEGs
    decoded at a reduced scale when much larger). Size and declared dimensions are checked before any pixel is
    decoded."""
    if not data:
        raise BadInput("BadRequestImageStream", "The request holds no image.")
    if len(data) > config.max_image_bytes:
        raise BadInput(
            "BadRequestImageSizeBytes",
            f"The image is {len(data)} bytes; the limit is {config.max_image_bytes} bytes.",
        )
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as error:
        raise BadInput("BadRequestImageDimensions", f"The image is too large: {error}") from error
    except Exception as error:  # Pillow signals unreadable input with several exception types
        raise BadInput("BadRequestImageFormat", "The body is not a JPEG, PNG, BMP or GIF image.") from error
    declared = image.size
    width, height = declared
    if max(width, height) > config.max_image_side or width * height > config.max_image_pixels:
        raise BadInput(
            "BadRequestImageDimensions",
            f"The image is {width}x{height}; each side may be at most {config.max_image_side} pixels and the "
            f"image at most {config.max_image_pixels} pixels.",
        )
    try:
        if image.format in ("JPEG", "MPO"):  # its orientation is in the header, read without decoding
            orientation = _orientation(image)
            target = _target(declared, orientation, config)
            image.draft("RGB", target[::-1] if orientation in SWAPS_AXES else target)
        image.load()
        target = _target(declared, _orientation(image), config)  # a PNG may keep its EXIF after the pixels
        upright = ImageOps.exif_transpose(image)
        rgb = reduced_rgb(upright, reduction_factor(upright.size, target))
        return rgb if rgb.size == target else rgb.resize(target, Image.Resampling.LANCZOS)
    except BadInput:
        raise
    except Exception as error:  # truncated or corrupt pixel data
        raise BadInput("BadRequestImageFormat", f"The image could not be decoded: {error}") from error


def _orientation(image: Image.Image) -> int:
    return image.getexif().get(ExifTags.Base.Orientation, 1)


def _target(declared: tuple[int, int], orientation: int, config: Config) -> tuple[int, int]:
    """The upright size the service predicts at, from the file's declared size."""
    upright = declared[::-1] if orientation in SWAPS_AXES else declared
    normalised = normalised_size(*upright, config.min_image_side)
    if max(normalised) > config.max_image_side:
        raise BadInput(
            "BadRequestImageDimensions",
            f"The image is {upright[0]}x{upright[1]}; upscaled to a shortest side of {config.min_image_side} its "
            f"longest side would exceed {config.max_image_side} pixels.",
        )
    return stored_size(*normalised, config.min_image_side, config.stored_image_max_side)
