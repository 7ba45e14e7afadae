"""How many cores this process may run on. `os.cpu_count()` counts the machine's, but a process pinned to some of
them (taskset, a container's cpuset, bench/predict.py's `--service-cores`) gets only those, and sizing thread pools
and ONNX Runtime's intra-op threads by the machine would put several threads on each allowed core."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores the calling thread may run on (where the OS says; the machine's count elsewhere), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
