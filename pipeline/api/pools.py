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
  It hands work over with asyncio's own executor and semaphore rather than anyio's `to_thread` and semaphore, whose
  cancel scopes and checkpoints cost the event loop twice as much per call: about 0.1 ms of the loop's CPU per
  prediction, 0.2 ms of the process's (issue 16, item 5: bench/app_in_process.py's load, General (compact), 6
  alternated rounds on 2 cores).
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

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
    """At most `size` calls of one kind at once, each on a worker thread outside the default limiter, in the
    caller's context (contextvars). Turns are handed out in arrival order by one semaphore per event loop (asyncio's
    are bound to the loop that first waits on them; the service serves on one loop, tests start several), and a turn
    is held until its thread is done, also when the waiting request is cancelled."""

    def __init__(self, what: str, size: int, wait_seconds: float) -> None:
        self.what = what
        self.size = size
        self.wait_seconds = wait_seconds
        self._threads = ThreadPoolExecutor(size, thread_name_prefix=what)
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def run(self, func: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop) or self._turns.setdefault(loop, asyncio.Semaphore(self.size))
        await self._take(turns)
        work = self._threads.submit(contextvars.copy_context().run, func, *args)
        try:
            return await asyncio.wrap_future(work)
        finally:
            if work.done():
                turns.release()
            else:  # cancelled while the thread runs on: the turn comes back when it ends
                work.add_done_callback(lambda _: loop.call_soon_threadsafe(turns.release))

    async def _take(self, turns: asyncio.Semaphore) -> None:
        if not turns.locked():
            await turns.acquire()  # free: taken at once, without a timer
            return
        try:
            async with asyncio.timeout(self.wait_seconds):
                await turns.acquire()
        except TimeoutError:
            raise ServiceUnavailable(f"Too many {self.what} are in progress; try again shortly.") from None
