"""The image bytes a request carries: an uploaded body (raw, or the multipart field `imageData`, as Custom
Vision's containers take them) or what a URL gives, fetched within a size and time limit. Anything unusable raises
BadInput, which the server answers with a 400."""

from __future__ import annotations

import http.client
import time
import urllib.request
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import urlsplit

from answers import BadInput
from config import Config

IMAGE_FIELD = "imageData"
READ_CHUNK = 64 * 1024


def uploaded_image(body: bytes, content_type: str) -> bytes:
    """The image bytes of a POST /image: the multipart field `imageData`, or else the whole body."""
    if content_type.lower().startswith("multipart/form-data"):
        return _form_field(body, content_type, IMAGE_FIELD)
    return body


def _form_field(body: bytes, content_type: str, name: str) -> bytes:
    form = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in form.iter_parts():
        if part.get_param("name", header="content-disposition") == name:
            return part.get_payload(decode=True) or b""
    raise BadInput("BadRequestImageStream", f"The form has no field named {name!r} holding the image.")


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
