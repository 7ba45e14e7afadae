"""Threads per kind of work, so slow work cannot starve fast work.

Sync routes and `run_in_threadpool` run on anyio's default thread limiter, 40 threads per event loop: 40 requests
waiting on a slow image host, or on storage until its timeout, used to hold every thread, and listing waited
behind them. Two things change that:

- `ThreadBudget` raises the default limiter to `settings.http_threads`. It is ASGI middleware rather than a lifespan
  handler because the limiter belongs to the event loop serving the request, and under the Functions host the
  AsgiMiddleware calls the app on the worker's loop with no lifespan event guaranteed; the middleware applies the
  budget in whichever loop a request arrives on (uvicorn's under the local host and the tests).
- `WorkPool` runs one kind of work on threads of its own, at most `size` at once and not counted against the default
  limiter. A request waits for a turn without holding a thread, and one that waits longer than `wait_seconds` gets
  ServiceUnavailable (503 with Retry-After). The app has two: image URL downloads (slow on the network) and image
  decoding and prediction (CPU: a few at once finish as fast as many, and the rest of the interpreter's time goes
  to listing and other short requests). How much memory decoding may take is `pipeline.vision`'s business.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.core.errors import ServiceUnavailable

T = TypeVar("T")


class ThreadBudget:
    """ASGI middleware: the serving event loop's default thread limiter gets `threads` tokens."""

    def __init__(self, app: ASGIApp, threads: int) -> None:
        self.app = app
        self.threads = threads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = to_thread.current_default_thread_limiter()
        if limiter.total_tokens != self.threads:
            limiter.total_tokens = self.threads
        await self.app(scope, receive, send)


class WorkPool:
    """At most `size` calls of one kind at once, each on a worker thread outside the default limiter."""

    def __init__(self, what: str, size: int, wait_seconds: float) -> None:
        self.what = what
        self.wait_seconds = wait_seconds
        # Turns are handed out in arrival order; the limiter only keeps these threads out of the default count.
        self._turns = anyio.Semaphore(size)
        self._threads = anyio.CapacityLimiter(size)

    async def run(self, func: Callable[..., T], *args: object) -> T:
        try:
            with anyio.fail_after(self.wait_seconds):
                await self._turns.acquire()
        except TimeoutError:
            raise ServiceUnavailable(f"Too many {self.what} are in progress; try again shortly.") from None
        try:
            return await to_thread.run_sync(func, *args, limiter=self._threads)
        finally:
            self._turns.release()
