"""WorkPool: a bounded number of calls at once on threads outside the default limiter; 503 past the wait."""

from __future__ import annotations

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


def test_a_freed_turn_goes_to_the_next_caller() -> None:
    pool = WorkPool("tests", size=1, wait_seconds=5)

    async def main() -> list[int]:
        results: list[int] = []

        async def call(n: int) -> None:
            results.append(await pool.run(lambda: n))

        async with anyio.create_task_group() as group:
            for n in range(4):
                group.start_soon(call, n)
        return results

    assert sorted(anyio.run(main)) == [0, 1, 2, 3]


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
