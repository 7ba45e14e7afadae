"""Azurite as a child process on its default ports, for `UseDevelopmentStorage=true`."""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "node_modules" / ".bin" / "azurite"
HOST = "127.0.0.1"
PORTS = {"blob": 10000, "queue": 10001, "table": 10002}  # what UseDevelopmentStorage=true points at


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


class Azurite:
    """Starts Azurite with persistent data under `location`, or reuses one already on the default ports."""

    def __init__(self, location: Path, binary: Path = BINARY) -> None:
        self.location = location
        self.binary = binary
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        busy = [service for service, port in PORTS.items() if _listening(port)]
        if len(busy) == len(PORTS):
            log.warning("storage: ports %s already listen; using that emulator", sorted(PORTS.values()))
            return
        if busy:
            raise RuntimeError(
                f"storage: ports of {busy} are taken but not all three; stop that process first"
            )
        if not self.binary.exists():
            raise RuntimeError(f"{self.binary} is missing: run `npm ci` in {ROOT}")
        self.location.mkdir(parents=True, exist_ok=True)
        command = [str(self.binary), "--location", str(self.location)]
        command += ["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]
        for service, port in PORTS.items():
            command += [f"--{service}Host", HOST, f"--{service}Port", str(port)]
        # Its own session: Ctrl-C reaches only the host, which stops the dispatchers before the storage.
        self._process = subprocess.Popen(command, cwd=self.location, start_new_session=True)
        log.info("storage: started Azurite (pid %d, data in %s)", self._process.pid, self.location)
        deadline = time.monotonic() + timeout
        for port in PORTS.values():
            while not _listening(port):
                if self._process.poll() is not None:
                    raise RuntimeError(f"Azurite exited early with code {self._process.returncode}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"Azurite did not listen on port {port} within {timeout:.0f}s")
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        log.info("storage: Azurite stopped")
