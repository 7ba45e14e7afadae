"""Loopback servers for tests, each in daemon threads: an ASGI app under uvicorn, or a bare HTTP handler (image
hosts, queues and redirectors that misbehave on purpose)."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator

import uvicorn

from devhost.ports import free_port


@contextlib.contextmanager
def served(app) -> Iterator[str]:
    """Yields the base URL while uvicorn serves `app`; stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean (no access log)."""

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def handler_served(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Yields `http://127.0.0.1:{port}` while a threaded server runs `handler` on a free port; a request still
    in progress at the end does not hold up the shutdown."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
