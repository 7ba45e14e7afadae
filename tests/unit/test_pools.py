"""WorkPool: a bounded number of calls at once on threads outside the default limiter; 503 past the wait."""

from __future__ import annotations

import contextvars
import threading

import anyio
import pytest
from anyio import to_thread

from pipeline.api.pools import WorkPool
from pipeline.core.errors import ServiceUnavailable


def test_calls_past_the_size_wait_then_are_turned_away() -> None:
    pool = WorkPool("tests", size=2, wait_seconds=0.2)
    release = threading.Event()
    outcomes: list[str] = []

    async def call() -> None:
        try:
            await pool.run(release.wait, 10)
            outcomes.append("ran")
        except ServiceUnavailable as error:
            outcomes.append(f"{error.status} {error.code}")

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(call)
            with anyio.fail_after(5):
                while not outcomes:  # the third call gives up after 0.2 s while two hold their turns
                    await anyio.sleep(0.01)
            # Those two hold no token of the default limiter: other blocking work still gets all of it.
            assert to_thread.current_default_thread_limiter().borrowed_tokens == 0
            release.set()

    anyio.run(main)
    assert outcomes == ["503 ErrorServerTimeOut", "ran", "ran"]


def _at_once(pool: WorkPool, count: int) -> list[int]:
    """`count` calls started together on a new event loop, each returning its number; the numbers, sorted."""

    async def main() -> list[int]:
        results: list[int] = []

        async def call(n: int) -> None:
            results.append(await pool.run(lambda: n))

        async with anyio.create_task_group() as group:
            for n in range(count):
                group.start_soon(call, n)
        return sorted(results)

    return anyio.run(main)


def test_a_freed_turn_goes_to_the_next_caller() -> None:
    assert _at_once(WorkPool("tests", size=1, wait_seconds=5), 4) == [0, 1, 2, 3]


@pytest.mark.parametrize("size", [1, 3])
def test_errors_give_the_turn_back(size: int) -> None:
    pool = WorkPool("tests", size=size, wait_seconds=0.5)

    def fail() -> None:
        raise ValueError("boom")

    async def main() -> None:
        for _ in range(size + 2):
            with pytest.raises(ValueError):
                await pool.run(fail)

    anyio.run(main)


def test_a_cancelled_call_keeps_its_turn_until_its_thread_ends() -> None:
    pool = WorkPool("tests", size=1, wait_seconds=0.2)
    release = threading.Event()

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(pool.run, release.wait, 10)
            await anyio.sleep(0.05)
            group.cancel_scope.cancel()  # the request goes away; its thread cannot be stopped
        with pytest.raises(ServiceUnavailable):
            await pool.run(lambda: None)
        release.set()
        with anyio.fail_after(5):
            assert await pool.run(lambda: "next") == "next"

    anyio.run(main)


def test_one_pool_serves_several_event_loops_in_turn() -> None:
    """asyncio's semaphores belong to the loop that first waits on them; the pool keeps one per loop."""
    pool = WorkPool("tests", size=1, wait_seconds=5)
    assert _at_once(pool, 2) == [0, 1]
    assert _at_once(pool, 2) == [0, 1]


def test_the_call_runs_in_the_callers_context() -> None:
    pool = WorkPool("tests", size=1, wait_seconds=5)
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")

    async def main() -> str:
        request_id.set("abc")
        return await pool.run(request_id.get)

    assert anyio.run(main) == "abc"
