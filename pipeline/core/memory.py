"""Handing freed memory back to the operating system. glibc keeps what a process frees in its heaps (one arena per
thread that contends, up to eight per core) for later reuse, so after big short-lived work that memory stays
resident and the process only grows. Two such kinds of work: an evicted model (its session's buffers), and a large
image decode (Pillow allocates in 16 MiB blocks; after the first is freed glibc raises its mmap threshold, so later
blocks come from the heap and freeing them leaves the pages mapped). `malloc_trim(0)` returns the free pages of
every arena. It exists only in glibc: elsewhere this does nothing."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Give the process's free heap memory back to the OS (glibc only)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
