"""The service's ASGI app driven in this process, with no HTTP: the middle step between the in-process floor and the
HTTP figures of bench/predict.py, so that the gap between them can be placed.

The app is the one the local host serves (`create_app`), on the bench service's storage and keys; each call is one
ASGI request for the nostore classify route with the request image as its body, answered through the whole
middleware stack, routing, the image work pool and the JSON response. The calls run on an event loop of their own
thread (uvloop, as uvicorn uses), `clients` at a time for the given seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import uvloop

from bench.common import PREDICTION_KEY, TRAINING_KEY, Service
from pipeline.api.app import create_app
from pipeline.core.settings import Settings
from pipeline.store import StorageAccount

Message = MutableMapping[str, Any]


@dataclass(frozen=True)
class AppLoad:
    requests: int
    seconds: float
    cpu: float  # seconds of this process's CPU, every thread
    loop_cpu: float  # seconds of CPU of the event loop's thread

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request(self) -> float:
        return self.cpu / max(self.requests, 1)

    @property
    def loop_cpu_per_request(self) -> float:
        return self.loop_cpu / max(self.requests, 1)


class InProcessApp:
    """The service's app on the bench service's storage, called as the ASGI server would call it, from an event
    loop on a thread of its own (which inherits the creating thread's cores), so that the loop thread's CPU is the
    app's alone. Close it to stop the loop."""

    def __init__(self, service: Service) -> None:
        settings = Settings(
            storage_connection_string=service.connection_string,
            training_key=TRAINING_KEY,
            prediction_key=PREDICTION_KEY,
        )
        self.app = create_app(settings, StorageAccount(service.connection_string))
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-app-loop")
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    def load(self, path: str, body: bytes, clients: int, seconds: float) -> AppLoad:
        """`clients` calls at a time for `seconds` (after a few to warm up); raises on any answer but 200."""
        return asyncio.run_coroutine_threadsafe(self._load(path, body, clients, seconds), self.loop).result()

    async def _load(self, path: str, body: bytes, clients: int, seconds: float) -> AppLoad:
        for _ in range(10):
            await self._checked(path, body)
        deadline = time.perf_counter() + seconds
        counts = [0]

        async def client() -> None:
            while time.perf_counter() < deadline:
                await self._checked(path, body)
                counts[0] += 1

        started, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
        await asyncio.gather(*(client() for _ in range(clients)))
        return AppLoad(
            counts[0],
            time.perf_counter() - started,
            time.process_time() - cpu,
            time.thread_time() - loop_cpu,
        )

    async def _checked(self, path: str, body: bytes) -> None:
        status = await self._call(path, body)
        if status != 200:
            raise RuntimeError(f"the app answered {status} to {path}")

    async def _call(self, path: str, body: bytes) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"prediction-key", PREDICTION_KEY.encode()),
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        received = asyncio.Event()
        statuses: list[int] = []

        async def receive() -> Message:
            if received.is_set():  # the body was read: the next message would be a disconnect
                await asyncio.Event().wait()
            received.set()
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await self.app(scope, receive, send)
        return statuses[0]
