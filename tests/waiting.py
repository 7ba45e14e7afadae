"""Waiting in tests for something another thread or process does, and how long it took."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def seconds_until(condition: Callable[[], Any], timeout: float = 5.0) -> float:
    """The seconds until `condition()` is true, checked every 10 ms; fails the test past `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout}s"
        time.sleep(0.01)
    return time.monotonic() - started
