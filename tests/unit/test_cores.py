"""usable_cores counts the cores a thread is pinned to, not the machine's."""

from __future__ import annotations

import os
import threading

import pytest

from pipeline.core.cores import usable_cores


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_a_thread_pinned_to_one_core_counts_one() -> None:
    seen: list[int] = []

    def pinned() -> None:  # a thread of its own: the pin does not outlive the test
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        seen.append(usable_cores())

    thread = threading.Thread(target=pinned)
    thread.start()
    thread.join()
    assert seen == [1]
    assert usable_cores() == len(os.sched_getaffinity(0))
