"""One process-wide budget of bytes for decoding images, so that parallel requests cannot together decode more than
the process can hold.

Every decode first estimates what it will hold (`pipeline.vision.reduced_decode.decode_cost`) and takes that much
from the budget for as long as it runs. Waiters are served first come, first served: a large image at the head of the
queue is not overtaken by a stream of small ones, so it cannot starve. A waiter that is not served within the wait
bound gives up with `ServiceUnavailable` (503 with Retry-After): the process is busy, not broken, and an unbounded
wait would only move the pile-up into the thread pool.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.core.errors import ServiceUnavailable
from pipeline.core.memory import release_free_memory
from pipeline.core.settings import Settings

# Releasing at least this much hands freed heap pages back to the OS (a large decode leaves tens of MB behind).
TRIM_AFTER_BYTES = 64 * 1024 * 1024


class DecodeBudget:
    """A counting budget of bytes with a FIFO queue of waiters."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @property
    def used(self) -> int:
        return self._used

    def acquire(self, amount: int, timeout: float) -> None:
        """Take `amount` bytes, waiting at most `timeout` seconds for them and for the waiters ahead."""
        if amount > self.capacity:
            raise ValueError(f"{amount} bytes can never fit a budget of {self.capacity} bytes")
        deadline = time.monotonic() + timeout
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or self._used + amount > self.capacity:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ServiceUnavailable(
                            "Too many large images are being decoded right now; try again shortly."
                        )
                    self._changed.wait(remaining)
                self._used += amount
            finally:
                self._queue.remove(ticket)
                self._changed.notify_all()  # the next in line may fit now (or may be first now)

    def release(self, amount: int) -> None:
        with self._changed:
            self._used -= amount
            self._changed.notify_all()
        if amount >= TRIM_AFTER_BYTES:
            release_free_memory()

    @contextmanager
    def hold(self, amount: int, timeout: float) -> Iterator[None]:
        """`amount` bytes for the duration of the block."""
        self.acquire(amount, timeout)
        try:
            yield
        finally:
            self.release(amount)


_budgets: dict[int, DecodeBudget] = {}
_budgets_lock = threading.Lock()


def decode_budget(settings: Settings) -> DecodeBudget:
    """The process's budget for `decode_memory_budget_bytes` (one per configured size: one in a deployment)."""
    capacity = settings.decode_memory_budget_bytes
    with _budgets_lock:
        if capacity not in _budgets:
            _budgets[capacity] = DecodeBudget(capacity)
        return _budgets[capacity]
