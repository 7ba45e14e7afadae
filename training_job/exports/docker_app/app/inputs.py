"""Turning a request into a picture: an uploaded body (raw bytes or the multipart field `imageData`, as Custom
Vision's containers take them) or a URL fetched within a size and time limit, then decoded with the limits Seer's
Prediction API applies. Anything unusable raises BadInput, which the server answers with a 400."""

from __future__ import annotations

import http.client
import io
import time
import urllib.request
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import urlsplit

from config import Config
from PIL import ExifTags, Image, ImageOps
from reduced_decode import normalised_size, reduced_rgb, reduction_factor, stored_size

FORMATS = ("JPEG", "PNG", "BMP", "GIF")
IMAGE_FIELD = "imageData"
SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that turn the picture a quarter
READ_CHUNK = 64 * 1024


class BadInput(Exception):
    """A request the server cannot predict on; `code` is the Custom Vision error code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def uploaded_image(body: bytes, content_type: str) -> bytes:
    """The image bytes of a POST /image: the multipart field `imageData`, or else the whole body."""
    if content_type.lower().startswith("multipart/form-data"):
        return _form_field(body, content_type, IMAGE_FIELD)
    return body


def _form_field(body: bytes, content_type: str, name: str) -> bytes:
    form = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts: list[Message] = form.get_payload() if form.is_multipart() else []  # type: ignore[assignment]
    for part in parts:
        if part.get_param("name", header="content-disposition") == name:
            return part.get_payload(decode=True) or b""
    raise BadInput("BadRequestImageStream", f"The form has no field named {name!r} holding the image.")


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


class _WebOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http and https only (urllib also allows ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise BadInput("BadRequestImageUrl", f"The image URL redirects to {newurl!r}, not http or https.")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_WebOnlyRedirects)


def fetched_image(url: str, config: Config) -> bytes:
    """The bytes behind an http or https URL: at most `max_image_bytes`, within `url_timeout_seconds` overall."""
    deadline = time.monotonic() + config.url_timeout_seconds
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput("BadRequestImageUrl", f"{url!r} is not an http or https URL.")
        request = urllib.request.Request(url, headers={"Accept": "image/*"})
        with _opener.open(request, timeout=config.url_timeout_seconds) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > config.max_image_bytes:
                raise _too_large(config)
            return _read_capped(response, config, deadline)
    except (OSError, ValueError, http.client.HTTPException) as error:  # URLError, HTTPError and timeouts too
        raise BadInput("BadRequestImageUrl", f"Could not download {url!r}: {error}") from error


def _read_capped(response: http.client.HTTPResponse, config: Config, deadline: float) -> bytes:
    chunks: list[bytes] = []
    received = 0
    while chunk := response.read(READ_CHUNK):
        received += len(chunk)
        if received > config.max_image_bytes:
            raise _too_large(config)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the download took more than {config.url_timeout_seconds} s")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(config: Config) -> BadInput:
    return BadInput(
        "BadRequestImageSizeBytes", f"The image is larger than the limit of {config.max_image_bytes} bytes."
    )
