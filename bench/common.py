"""What the benchmarks share: the machine description, the real-photo datasets, and the whole service started
the way the README's run command starts it (local Functions host + training job) on a fresh Azurite."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx

from devhost.azurite import running_azurite
from devhost.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("SEER_DATASETS", ROOT.parent / "shared" / "datasets"))
TRAINING_KEY = "bench-training-key"
PREDICTION_KEY = "bench-prediction-key"
TRAINING = "/customvision/v3.3/training"


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def _listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        return True
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def serving(
    command: list[str],
    env: dict[str, str],
    port: int,
    log_dir: Path,
    name: str,
    cores: frozenset[int] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` (on `cores` when given; the processes it starts inherit them) until it listens on `port`;
    stop it afterwards. Its output is appended to `log_dir/name.log`, so the services a benchmark starts one after
    the other all leave theirs."""
    log_path = log_dir / f"{name}.log"
    pin = None if cores is None else functools.partial(os.sched_setaffinity, 0, cores)
    with log_path.open("ab") as output:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, preexec_fn=pin
        )
        try:
            deadline = time.monotonic() + 60
            while not _listening(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{name} did not start (exit {process.poll()}):\n{tail}")
                time.sleep(0.1)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def log_folder(keep: Path | None) -> contextlib.AbstractContextManager[str | Path]:
    """Where the services' output goes: `keep`, left in place after the run (the training job logs its stage
    times there), when given; else a temporary folder."""
    if keep is None:
        return tempfile.TemporaryDirectory(prefix="seer-bench-")
    keep.mkdir(parents=True, exist_ok=True)
    return contextlib.nullcontext(keep)


@dataclass(frozen=True)
class Service:
    url: str
    connection_string: str
    pid: int  # the local host's process (scripts/run.sh execs it); training jobs are its children

    def client(self, timeout: float = 120.0) -> httpx.Client:
        headers = {"Training-Key": TRAINING_KEY, "Prediction-Key": PREDICTION_KEY}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


@contextlib.contextmanager
def seer_service(log_dir: Path, host_cores: frozenset[int] | None = None) -> Iterator[Service]:
    """Azurite on free ports, then `scripts/run.sh` (setup, local host, training job) pointed at it, the host and
    the jobs it starts on `host_cores` when given."""
    with running_azurite() as connection_string:
        port = free_port()
        env = {
            **os.environ,
            "AzureWebJobsStorage": connection_string,
            "SEER_TRAINING_KEY": TRAINING_KEY,
            "SEER_PREDICTION_KEY": PREDICTION_KEY,
            "SEER_PORT": str(port),
            "SEER_ALLOW_PRIVATE_URLS": "true",
        }
        command = ["bash", str(ROOT / "scripts" / "run.sh"), "--log-level", "WARNING"]
        with serving(command, env, port, log_dir, "service", host_cores) as process:
            yield Service(f"http://127.0.0.1:{port}", connection_string, process.pid)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory now (VmRSS) or at its peak (VmHWM), 0 once it has gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _stat_fields(pid: int | str) -> list[str]:
    """A process's /proc/PID/stat fields after its command name (which may hold spaces and parentheses: the fields
    after its last ")" are fixed): [0] is the state, [1] the parent, [11] and [12] the user and system ticks."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (from /proc/*/stat, which every kernel has)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(_stat_fields(proc.name)[1]) == pid:
                    found.append(int(proc.name))
    return found


def descendants(pid: int) -> list[int]:
    """`pid`'s live children, their children, and so on."""
    found, todo = [], children(pid)
    while todo:
        found.append(todo.pop())
        todo.extend(children(found[-1]))
    return found


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user and system, all its threads), 0 once it has gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = _stat_fields(pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def tree_cpu_seconds(pid: int) -> float:
    """The CPU time so far of `pid` and its live descendants."""
    return sum(map(cpu_seconds, [pid, *descendants(pid)]))


def wait_until_settled(pid: int, busy_share: float = 0.1, timeout: float = 60.0) -> None:
    """Return once the local host `pid` has its standby training execution (`training_job --wait`, which
    scripts/run.sh asks for) started, and the host and its descendants use less than `busy_share` of one core over
    half a second. After a training run the host starts the next standby execution, which imports torch for a few
    seconds of CPU; without the wait a benchmark would charge that to whatever it measures next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [pid, *descendants(pid)]
        before = sum(map(cpu_seconds, pids))
        time.sleep(0.5)
        standby = any(b"--wait" in cmdline(child) for child in pids[1:])
        if standby and sum(map(cpu_seconds, pids)) - before < 0.5 * busy_share:
            return
    raise RuntimeError(f"the service (pid {pid}) had not settled after {timeout:.0f} s")


def cmdline(pid: int) -> bytes:
    """A process's NUL-separated command line, empty once it has gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class MemorySampler:
    """While open, calls `sample()` every `interval` seconds on a background thread (and once more on closing);
    subclasses keep the peaks they care about."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return


class PeakMemory(MemorySampler):
    """The peak resident memory (VmHWM) of processes whose command line contains `marker`."""

    def __init__(self, marker: str, interval: float = 0.1) -> None:
        super().__init__(interval)
        self.marker = marker.encode()
        self.peak_mib = 0.0

    def sample(self) -> None:
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and self.marker in cmdline(int(proc.name)):
                self.peak_mib = max(self.peak_mib, rss_mib(int(proc.name), "VmHWM"))


def ok(response: httpx.Response) -> dict:
    """The JSON body of a successful response; anything else stops the benchmark with the API's error."""
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
    return response.json()
