"""Give freed heap memory back to the operating system.

Pillow allocates a large image in 16 MiB blocks. After the first such block is freed, glibc raises its mmap
threshold, so later blocks come from the heap (one arena per thread), and freeing them leaves the pages mapped: a
burst of large decodes would keep its peak RSS for the life of the process. `malloc_trim(0)` returns the free pages
of every arena. Where the C library has no `malloc_trim` (musl, macOS, Windows) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        log.info("malloc_trim is not available; freed memory stays with the process")
        return None


def give_back_freed_memory() -> None:
    """Return the heap's free pages to the OS (glibc), or do nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
