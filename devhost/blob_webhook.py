"""The blob extension's webhook, where Event Grid delivers BlobCreated events for blob triggers with
`source="EventGrid"`: `POST /runtime/webhooks/blobs?functionName=Host.Functions.{name}`.

As in the real host, the request runs no function: it answers Event Grid's validation handshake, and turns each
BlobCreated event for a blob the function's path matches into a BlobTriggerMessage on the host's blob queue. No key
is asked for (the real host wants the `blobs_extension` system key; Core Tools does not check keys either).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devhost.app_loader import FunctionInfo
from devhost.blob_binding import BlobPath, BlobTriggerMessage, quoted_etag
from devhost.event_grid import BLOB_CREATED, BlobCreatedData, EventGridEvent

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/runtime/webhooks/blobs"


def blob_location(url: str) -> tuple[str, str]:
    """(container, blob name) of a blob URL, path-style (`/account/container/...`) for Azurite's IP or localhost."""
    parts = urlsplit(url)
    segments = parts.path.lstrip("/").split("/")
    host = parts.hostname or ""
    try:
        path_style = host == "localhost" or bool(ipaddress.ip_address(host))
    except ValueError:
        path_style = False
    if path_style:
        segments = segments[1:]
    return segments[0], unquote("/".join(segments[1:]))


class BlobsWebhook:
    """ASGI app for WEBHOOK_PATH; `functions` are the Event Grid blob functions by full name."""

    def __init__(
        self, functions: dict[str, FunctionInfo], enqueue: Callable[[BlobTriggerMessage], None]
    ) -> None:
        self._functions = functions
        self._paths = {name: BlobPath.parse(f.trigger["path"]) for name, f in functions.items()}
        self._enqueue = enqueue

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        response = await self._answer(request)
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(status_code=405)
        function_id = request.query_params.get("functionName", "")
        if function_id not in self._functions:
            return JSONResponse(
                {"error": f"no Event Grid blob trigger function {function_id!r}"}, status_code=404
            )
        kind = request.headers.get("aeg-event-type", "")
        try:
            body = await request.json()
            events = [EventGridEvent.model_validate(e) for e in (body if isinstance(body, list) else [body])]
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"error": f"not Event Grid events: {exc}"}, status_code=400)
        if kind == "SubscriptionValidation":
            log.info("webhook: handshake with Event Grid for function %s", function_id)
            return JSONResponse({"validationResponse": events[0].data.get("validationCode")})
        if kind == "Notification":
            messages = [m for m in (self._message(function_id, e) for e in events) if m is not None]
            await run_in_threadpool(lambda: [self._enqueue(m) for m in messages])
            return Response(status_code=202)
        return Response(status_code=202 if kind == "Unsubscribe" else 400)

    def _message(self, function_id: str, event: EventGridEvent) -> BlobTriggerMessage | None:
        """The queue message for one event, or None for an event the trigger does not declare."""
        if event.event_type != BLOB_CREATED:
            log.info("webhook: %s ignores a %s event", function_id, event.event_type)
            return None
        data = BlobCreatedData.model_validate(event.data)
        container, name = blob_location(data.url)
        path = self._paths[function_id]
        if container != path.container or not path.matches(name):
            log.info("webhook: %s/%s is outside %s's path", container, name, function_id)
            return None
        return BlobTriggerMessage(
            function_id=function_id,
            blob_type=data.blob_type,
            container_name=container,
            blob_name=name,
            etag=quoted_etag(data.e_tag),
        )
