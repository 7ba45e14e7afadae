"""Serve the app's ASGI app with uvicorn in a thread, under host.json's routePrefix as the real host does, beside
the host's own `/runtime/webhooks/...` endpoints."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

Scope = dict[str, Any]


class RoutePrefix:
    """ASGI wrapper answering 404 outside `/{routePrefix}`: the real host routes only `/{prefix}/{*route}`
    to an AsgiFunctionApp and passes the full path on, so the app itself sees the prefix.
    """

    def __init__(self, app: Any, prefix: str) -> None:
        self.app = app
        self.prefix = "/" + prefix.strip("/")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                await _not_found(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _not_found(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class HostRoutes:
    """ASGI router: the host's own endpoints (they ignore routePrefix) by exact path, or by prefix for a key that
    ends with '/'; everything else to the app."""

    def __init__(self, app: Any, runtime: dict[str, Any]) -> None:
        self.app = app
        self.runtime = runtime

    def endpoint(self, path: str) -> Any | None:
        if path in self.runtime:
            return self.runtime[path]
        return next((e for p, e in self.runtime.items() if p.endswith("/") and path.startswith(p)), None)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        endpoint = self.endpoint(scope.get("path", "")) if scope["type"] == "http" else None
        await (endpoint or self.app)(scope, receive, send)


class HttpServer:
    """uvicorn in a daemon thread of this process (signals stay with the main thread). `asgi_app` may be None
    for an app without HTTP functions: only `runtime` endpoints are served then."""

    def __init__(
        self,
        asgi_app: Any | None,
        *,
        host: str,
        port: int,
        route_prefix: str,
        runtime: dict[str, Any] | None = None,
    ) -> None:
        app = asgi_app or _not_found
        if asgi_app is not None and route_prefix.strip("/"):
            app = RoutePrefix(asgi_app, route_prefix)
        app = HostRoutes(app, runtime or {})
        self.url = f"http://{host}:{port}"
        # Where this process reaches itself: a wildcard bind address is not a destination.
        self.local_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None))
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start on {self.url} (see the log above)")
            time.sleep(0.05)
        log.info("HTTP: serving on %s", self.url)

    def request_stop(self) -> None:
        self._server.should_exit = True

    def join(self, timeout: float = 30.0) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)
