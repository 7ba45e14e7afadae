"""The host's admin API for running a non-HTTP function on demand, as the Functions host serves it:
`POST /admin/functions/{name}` with the master key in the `x-functions-key` header (or `?code=`) and the JSON body
`{"input": "<trigger input>"}`. The request is answered 202 Accepted at once and the function runs in the
background; 401 without the right key (checked first, so function names do not leak), 404 for a name that is not
one of the app's non-HTTP functions, 400 for a body that is not such an object.

A timer trigger is given a TimerRequest that is not past due (the input is ignored); a queue trigger a message whose
body is the input; a blob trigger the blob the input names, `{container}/{blob name}`, read when the function runs
(one that is missing fails that run, logged, as on the real host). Core Tools does not check the key; this host does, and with no master key configured it refuses
every admin request: there is no development default to guess.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devhost.app_loader import FunctionInfo
from devhost.invocation import convert_payload, invoke

log = logging.getLogger(__name__)

ADMIN_FUNCTIONS_PATH = "/admin/functions/"
MASTER_KEY_SETTING = "SEER_MASTER_KEY"
# The reason the real host logs for an invocation through this API.
REASON = "This function was programmatically called via the host APIs."
RUNNABLE = {"timerTrigger", "queueTrigger", "blobTrigger"}
# Reads the blob `{container}/{name}` for a blob trigger function, as its trigger would pass it.
BlobReader = Callable[[FunctionInfo, str], Any]


def master_key_from_settings() -> str | None:
    """The master key from the app settings (environment), or None when none is configured."""
    return os.environ.get(MASTER_KEY_SETTING) or None


def describe_master_key(master_key: str | None) -> str:
    """A start-up line that says where the master key comes from (never the key itself)."""
    if master_key:
        return f"master key: from {MASTER_KEY_SETTING}; POST /admin/functions/{{name}} runs a function"
    return f"master key: none configured ({MASTER_KEY_SETTING}); every /admin request will be refused"


def trigger_value(function: FunctionInfo, text: str, read_blob: BlobReader | None) -> Any:
    """What the worker would pass the function for `text` as its trigger input (blob functions are offered only
    with a `read_blob`)."""
    if function.trigger_type == "timerTrigger":
        return TimerRequest(past_due=False, schedule={"AdjustForDST": True})
    if function.trigger_type == "blobTrigger":
        assert read_blob is not None
        return read_blob(function, text)
    body = text.encode("utf-8")
    return convert_payload(function, body, QueueMessage(body=body))


class AdminFunctions:
    """ASGI app for ADMIN_FUNCTIONS_PATH. Runs each invocation on its own thread of a small pool; `close()` waits
    for those in flight."""

    def __init__(
        self,
        functions: list[FunctionInfo],
        master_key: str | None,
        read_blob: BlobReader | None = None,
        parallelism: int = 4,
    ) -> None:
        """`read_blob` serves blob trigger functions (without it they are not offered)."""
        # The real host matches function names case-insensitively.
        runnable = RUNNABLE if read_blob else RUNNABLE - {"blobTrigger"}
        self._functions = {f.name.lower(): f for f in functions if f.trigger_type in runnable}
        self._read_blob = read_blob
        self._master_key = master_key
        self._pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="admin")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = await self._answer(Request(scope, receive))
        await response(scope, receive, send)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _authorised(self, request: Request) -> bool:
        given = request.headers.get("x-functions-key") or request.query_params.get("code") or ""
        return bool(self._master_key) and hmac.compare_digest(given.encode(), self._master_key.encode())

    async def _answer(self, request: Request) -> Response:
        if not self._authorised(request):
            return Response(status_code=401)
        if request.method != "POST":
            return Response(status_code=405)
        name = request.url.path[len(ADMIN_FUNCTIONS_PATH) :]
        function = self._functions.get(name.lower())
        if function is None:
            return Response(status_code=404)
        try:
            body = await request.json()
        except ValueError:
            body = None
        text = body.get("input", "") if isinstance(body, dict) else None
        if not isinstance(text, str | int | float | bool):
            return JSONResponse({"error": 'the body must be {"input": "<string>"}'}, status_code=400)
        log.info("admin: running %s on demand", function.name)
        self._pool.submit(self._run, function, text if isinstance(text, str) else json.dumps(text))
        return Response(status_code=202)

    def _run(self, function: FunctionInfo, text: str) -> None:
        # As on the real host, nobody waits for the outcome: a failure is logged.
        try:
            value = trigger_value(function, text, self._read_blob)
        except Exception:
            log.exception("admin: %s could not read its trigger input %r", function.name, text)
            return
        with contextlib.suppress(Exception):  # invoke logs it
            invoke(function, value, reason=REASON)
