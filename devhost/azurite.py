"""Azurite (npm `azurite`) as a child process: the one launcher for the local host, the tests and the benchmarks.

The local host runs it on the default ports `UseDevelopmentStorage=true` points at, with data kept under a
directory; tests and benchmarks run a throwaway in-memory one on free ports (`running_azurite`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

from devhost.ports import LOOPBACK, free_port, listening
from pipeline.core.settings import dev_storage_connection_string

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / "node_modules" / ".bin" / "azurite"
OPTIONS = ("--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent")


@dataclass(frozen=True)
class Ports:
    blob: int
    queue: int
    table: int

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())


DEVELOPMENT_PORTS = Ports(blob=10000, queue=10001, table=10002)  # what UseDevelopmentStorage=true points at


class Azurite:
    """One Azurite on `ports`: data under `location`, or in memory when it is None, with any `extra_options`
    (tests add `--oauth basic` and a certificate). If all three ports already listen, that emulator is used
    instead of starting another."""

    def __init__(
        self,
        ports: Ports = DEVELOPMENT_PORTS,
        location: Path | None = None,
        *,
        quiet: bool = False,
        binary: Path = BINARY,
        extra_options: Sequence[str] = (),
    ) -> None:
        self.ports = ports
        self.location = location
        self.quiet = quiet
        self.binary = binary
        self.extra_options = tuple(extra_options)
        self._process: subprocess.Popen[bytes] | None = None
        self._scratch: Path | None = None

    @property
    def connection_string(self) -> str:
        return dev_storage_connection_string(LOOPBACK, **asdict(self.ports))

    @property
    def pid(self) -> int | None:
        """The emulator's process id while this launcher runs it (fault tests stop and continue it)."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def _command(self) -> list[str]:
        storage = ["--location", str(self.location)] if self.location else ["--inMemoryPersistence"]
        command = [str(self.binary), *storage, *OPTIONS, *self.extra_options]
        for service, port in asdict(self.ports).items():
            command += [f"--{service}Host", LOOPBACK, f"--{service}Port", str(port)]
        return command

    def start(self, timeout: float = 30.0) -> None:
        """Start it and wait until every service listens."""
        busy = [service for service, port in asdict(self.ports).items() if listening(port)]
        if len(busy) == len(asdict(self.ports)):
            log.warning("storage: ports %s already listen; using that emulator", astuple(self.ports))
            return
        if busy:
            raise RuntimeError(
                f"storage: ports of {busy} are taken but not all three; stop that process first"
            )
        if not self.binary.exists():
            raise RuntimeError(f"{self.binary} is missing: run `npm ci` in {ROOT}")
        if self.location:
            self.location.mkdir(parents=True, exist_ok=True)
            workdir = self.location
        else:  # Azurite writes its debug and extent files under its working directory even in memory
            workdir = self._scratch = Path(tempfile.mkdtemp(prefix="seer-azurite-"))
        output = subprocess.DEVNULL if self.quiet else None
        # Its own session: Ctrl-C reaches only its owner, which stops its own users before the storage.
        process = self._process = subprocess.Popen(
            self._command(), cwd=workdir, stdout=output, stderr=output, start_new_session=True
        )
        log.info("storage: started Azurite (pid %d, data in %s)", process.pid, self.location or "memory")
        try:
            self._wait_until_listening(process, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_listening(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for port in astuple(self.ports):
            while not listening(port):
                if process.poll() is not None:
                    raise RuntimeError(f"Azurite exited early with code {process.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Azurite did not listen on port {port} within {timeout:.0f}s")
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process this launcher started (an emulator it found running is left alone)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            log.info("storage: Azurite stopped")
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


@contextlib.contextmanager
def running_azurite(location: Path | None = None) -> Iterator[str]:
    """A fresh, silent Azurite on free ports for the block (in memory unless `location`); yields its
    connection string."""
    azurite = Azurite(Ports.free(), location, quiet=True)
    azurite.start()
    try:
        yield azurite.connection_string
    finally:
        azurite.stop()
