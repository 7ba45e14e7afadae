"""The thread every dispatcher runs in: poll, wait (until woken), repeat; errors are logged and backed off, never
fatal."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


class PollingWorker(ABC):
    """A daemon thread calling `poll()` until stopped, so one broken dispatcher cannot take the host down."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stopping = threading.Event()
        self._woken = threading.Event()  # ends the current wait: stopping, or new work announced
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @abstractmethod
    def poll(self) -> float:
        """Do one round of work; return the seconds to wait before the next round."""

    def close(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Release what the worker holds once its loop has ended (executors, child processes)."""

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Start the next round now (or right after the current one) instead of after its wait."""
        self._woken.set()

    def request_stop(self) -> None:
        """Ask the loop to end after the current round; `join()` waits for it."""
        self._stopping.set()
        self._woken.set()

    def join(self, timeout: float = 30.0) -> None:
        if self._thread.ident is None:  # never started: nothing to wait for
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "%s: still busy after %.0fs; leaving it to finish in the background", self.name, timeout
            )

    def _run(self) -> None:
        failures = 0
        try:
            while not self._stopping.is_set():
                self._woken.clear()  # before the round: a wake during it makes the next round start at once
                try:
                    delay = self.poll()
                    failures = 0
                except Exception:
                    failures += 1
                    delay = min(MAX_BACKOFF_SECONDS, 2.0**failures)
                    log.exception(
                        "%s: round failed (%d in a row); retrying in %.0fs", self.name, failures, delay
                    )
                if not self._stopping.is_set():  # a stop asked during the round is not waited out
                    self._woken.wait(delay)
        finally:
            self.close()
