"""Who holds a claim: this process's identity, and whether a recorded holder is provably gone.

A claim records `host:pid`. On the same host, a pid that no longer exists (or is a zombie) cannot still be
writing, so its claims can be taken over at once instead of after a grace period. Anything else (another host, a
pid that exists, possibly reused) is treated as alive: the caller falls back to its grace period.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_HOST = socket.gethostname()


def this_process() -> str:
    """The identity a claim records (computed per call: a forked child is a new owner)."""
    return f"{_HOST}:{os.getpid()}"


def _zombie(pid: int) -> bool:
    """Killed but not yet reaped by its parent: gone for every purpose but the pid table (Linux only)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def provably_dead(owner: str | None) -> bool:
    """True only when `owner` names a process on this host that no longer runs."""
    host, _, pid_text = (owner or "").rpartition(":")
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by someone else
    return _zombie(pid)
