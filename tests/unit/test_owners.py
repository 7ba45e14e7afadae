"""A claim's owner is provably dead only when it is a process on this host that no longer runs."""

from __future__ import annotations

import subprocess
import sys
import time

from pipeline.core.owners import provably_dead, this_process


def _owner(pid: int) -> str:
    return f"{this_process().rpartition(':')[0]}:{pid}"


def test_a_running_process_is_alive():
    assert not provably_dead(this_process())
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        assert not provably_dead(_owner(child.pid))
        child.kill()
        child.wait()
    assert provably_dead(_owner(child.pid))


def test_a_killed_child_not_yet_reaped_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    child.kill()
    deadline = time.monotonic() + 5
    while not provably_dead(_owner(child.pid)):  # a zombie until waited for
        assert time.monotonic() < deadline, "a killed child was never seen as dead"
        time.sleep(0.01)
    child.wait()


def test_other_hosts_and_unknown_owners_are_never_called_dead():
    assert not provably_dead("elsewhere:1")
    assert not provably_dead(None)
    assert not provably_dead("no pid here")
