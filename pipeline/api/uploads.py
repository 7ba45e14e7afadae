"""Reading uploaded image bytes from a request: multipart parts (as the SDK sends them) or a raw body, capped
so a hostile body cannot fill memory. Shared by image creation, quick test and prediction."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from pipeline.core.errors import bad_request


class _Parts:
    """python-multipart callbacks that keep every part as raw bytes.

    The SDK sends one part named `imageData` with no filename and no content type; form parsers that treat such
    a part as text would mangle the image, so parts are collected here whatever their headers say. Each part is
    cut at `max_bytes + 1` (enough to report ErrorImageSize) and parts past `max_parts + 1` are dropped (enough to
    report the batch as too large) so a hostile body cannot fill memory.
    """

    def __init__(self, max_bytes: int, max_parts: int) -> None:
        self.max_bytes = max_bytes
        self.max_parts = max_parts
        self.parts: list[tuple[str | None, bytes]] = []
        self._field = b""
        self._value = b""
        self._filename: str | None = None
        self._data = bytearray()

    def callbacks(self) -> dict:
        names = (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
        )
        return {name: getattr(self, name) for name in names}

    def on_part_begin(self) -> None:
        self._filename = None
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if self._field.strip().lower() == b"content-disposition":
            filename = parse_options_header(self._value)[1].get(b"filename")
            self._filename = filename.decode("utf-8", "replace") if filename else None
        self._field = self._value = b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        room = self.max_bytes + 1 - len(self._data)
        if room > 0:
            self._data += data[start : min(end, start + room)]

    def on_part_end(self) -> None:
        if len(self.parts) <= self.max_parts:
            self.parts.append((self._filename, bytes(self._data)))


async def _read_capped(stream: AsyncIterator[bytes], max_bytes: int) -> bytes:
    body = bytearray()
    async for chunk in stream:
        if len(body) <= max_bytes:
            body += chunk[: max_bytes + 1 - len(body)]
    return bytes(body)


async def uploaded_images(request: Request, max_bytes: int, max_parts: int) -> list[tuple[str | None, bytes]]:
    """The (file name, bytes) of each image in a multipart body, or the whole body as one image."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        body = await _read_capped(request.stream(), max_bytes)
        return [(None, body)] if body else []
    boundary = options.get(b"boundary")
    if not boundary:
        raise bad_request("BadRequestImageStream", "A multipart/form-data body needs a boundary.")
    parts = _Parts(max_bytes, max_parts)
    parser = MultipartParser(boundary, parts.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise bad_request("BadRequestImageStream", f"The multipart body is malformed: {exc}") from exc
    return parts.parts


async def uploaded_image(request: Request, max_bytes: int) -> bytes:
    """The one image of a prediction or quick-test request (the first part), or the Custom Vision error."""
    uploads = await uploaded_images(request, max_bytes, max_parts=1)
    if not uploads or not uploads[0][1]:
        raise bad_request("BadRequestImageStream", "The request contains no image.")
    return uploads[0][1]
