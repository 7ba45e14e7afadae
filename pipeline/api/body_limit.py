"""Request body caps, as ASGI middleware inside the key check and before anything reads a body.

A declared Content-Length over the cap is refused before a byte of the body is read; a body without one (chunked)
is counted as it streams in and refused as soon as it passes the cap, whatever the route was doing with it. Image
uploads (`POST .../projects/{id}/images`, multipart or raw, and `.../images/files`, base64 JSON) may be as large as
`settings.max_request_bytes`; any other request as `settings.max_other_request_bytes`. The answer is 413 with
`BadRequestImageSizeBytes` on routes that carry images (it is the images that are too large) and `BadRequestInvalid`
elsewhere, and it closes the connection, so the rest of the body is never read.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.core.settings import Settings


class _BodyTooLarge(Exception):
    """Raised into the route from `receive` once the body passes the cap."""


def _route(path: str) -> tuple[bool, bool]:
    """(is an image upload, carries images) for a path as CaseInsensitivePaths leaves it."""
    segments = [s for s in path.split("/") if s]
    # customvision / {version} / training / projects / {id} / images [/ files]
    upload = (
        len(segments) in (6, 7)
        and segments[2:4] == ["training", "projects"]
        and segments[5] == "images"
        and segments[6:] in ([], ["files"])
    )
    # prediction .../image[/nostore] and quick test .../quicktest/image
    single = segments[-1:] == ["image"] or segments[-2:] == ["image", "nostore"]
    return upload, upload or single


def _too_large(limit: int, carries_images: bool) -> JSONResponse:
    code = "BadRequestImageSizeBytes" if carries_images else "BadRequestInvalid"
    return JSONResponse(
        {"code": code, "message": f"The request body is larger than the limit of {limit} bytes."},
        status_code=413,
        headers={"Connection": "close"},
    )


class CapBodies:
    """ASGI middleware: refuse bodies over the route's cap with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.upload_limit = settings.max_request_bytes
        self.other_limit = settings.max_other_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload, carries_images = _route(scope["path"])
        limit = self.upload_limit if upload else self.other_limit
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit, carries_images)(scope, receive, send)
            return

        received = 0
        exceeded = started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the route made of the interrupted body, the answer is the 413 below
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _too_large(limit, carries_images)(scope, receive, send)
