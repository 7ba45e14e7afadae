"""A KEDA-like job launcher: start a command while a queue has visible messages, as an Azure Container Apps
Job with an azure-queue scale rule does. The job dequeues its own message; the launcher only counts them.

A standby job also keeps one execution started while the queue is empty; its command waits for a message
(`python -m training_job --wait SECONDS`). A request then meets a process whose interpreter, imports and device
are ready instead of paying for them after it arrives (seconds for torch). Container Apps Jobs cannot hold a
replica warm, so this is the local host's option only. Its standard input is a pipe from the launcher, which
writes a line there when the host's app has just sent the queue a message (pipeline.store.queue_watch): the
execution then asks the queue at once, and otherwise only every few seconds (training_job.queue_job.receive).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from devhost.worker import PollingWorker
from pipeline.store import StorageAccount

log = logging.getLogger(__name__)

PEEK_LIMIT = 32  # the most messages one peek returns; KEDA's scaler peeks too, to count only visible ones
RELAUNCH_PAUSE_SECONDS = 1.0  # an execution's end starts the next round no sooner than this after its start


@dataclass(frozen=True)
class JobSpec:
    """One job: the queue that triggers it, the command line, and how many executions may run at once."""

    queue: str
    command: tuple[str, ...]
    parallelism: int = 1
    standby: bool = False  # keep one execution started while the queue is empty (the command waits for work)

    @classmethod
    def parse(cls, text: str, parallelism: int = 1, *, standby: bool = False) -> JobSpec:
        """`QUEUE=COMMAND`, the command split like a shell would (no shell runs it)."""
        queue, separator, command = text.partition("=")
        words = tuple(shlex.split(command))
        if not separator or not queue.strip() or not words:
            raise ValueError(f"expected QUEUE=COMMAND, got {text!r}")
        if parallelism < 1:
            raise ValueError("job parallelism must be at least 1")
        return cls(queue=queue.strip(), command=words, parallelism=parallelism, standby=standby)


class JobLauncher(PollingWorker):
    """Starts one execution per visible message, up to `parallelism` running (a standby job: and one whenever
    none is running); reaps and logs exit codes. A standby execution counts toward `parallelism`. A round runs
    every `poll_interval`, and at once when the app sends the queue a message or an execution ends (but no sooner
    than `RELAUNCH_PAUSE_SECONDS` after it started)."""

    def __init__(
        self,
        spec: JobSpec,
        account: StorageAccount,
        *,
        env: Mapping[str, str],
        poll_interval: float,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(f"job:{spec.queue}")
        self._spec = spec
        self._account = account
        self._env = dict(env)
        self._poll_interval = poll_interval
        self._stop_timeout = stop_timeout
        self._running: list[subprocess.Popen[bytes]] = []
        self._sent = threading.Event()  # the app sent the queue a message since the last round
        self._unwatch: Callable[[], None] = lambda: None

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self) -> None:
        self._unwatch = self._account.on_enqueue(self._spec.queue, self._message_sent)
        super().start()

    def poll(self) -> float:
        self._reap()
        if self._sent.is_set():
            self._sent.clear()
            self._nudge()
        if self._spec.standby and not self._running:
            self._launch("standby")
        free = self._spec.parallelism - len(self._running)
        if free > 0:
            queue = self._account.queue(self._spec.queue)
            visible = queue.peek_messages(max_messages=min(free, PEEK_LIMIT))
            for _ in visible:
                self._launch("a visible message")
        return self._poll_interval

    def close(self) -> None:
        """Stop running executions (SIGTERM, then SIGKILL after `stop_timeout`) so none outlives the host."""
        self._unwatch()
        self._reap()  # those that ended on their own are logged with their exit code
        for process in self._running:
            process.terminate()
        for process in self._running:
            try:
                process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            _close_input(process)
            log.info("%s: stopped execution pid %d", self.name, process.pid)
        self._running.clear()

    def _message_sent(self) -> None:
        self._sent.set()
        self.wake()

    def _wake_after(self, process: subprocess.Popen[bytes], started: float) -> None:
        process.wait()
        # A command that fails at once (before taking its message) is not restarted in a tight loop.
        time.sleep(max(0.0, started + RELAUNCH_PAUSE_SECONDS - time.monotonic()))
        self.wake()

    def _nudge(self) -> None:
        """Tell the executions that wait for a message (a standby) to ask the queue now."""
        for process in self._running:
            if process.stdin is not None:
                with contextlib.suppress(OSError):  # it ended meanwhile, or has not read its earlier nudges
                    os.write(process.stdin.fileno(), b"\n")

    def _launch(self, reason: str) -> None:
        stdin = subprocess.PIPE if self._spec.standby else None
        started = time.monotonic()
        process = subprocess.Popen(self._spec.command, env=self._env, stdin=stdin)
        if process.stdin is not None:
            os.set_blocking(process.stdin.fileno(), False)  # a nudge never blocks the launcher
        self._running.append(process)
        # Its end starts the next round, to reap it and start the next execution without waiting for the poll.
        threading.Thread(
            target=self._wake_after, args=(process, started), name=f"{self.name}:{process.pid}", daemon=True
        ).start()
        log.info(
            "%s: started execution pid %d for %s: %s",
            self.name,
            process.pid,
            reason,
            shlex.join(self._spec.command),
        )

    def _reap(self) -> None:
        for process in list(self._running):
            code = process.poll()
            if code is None:
                continue
            self._running.remove(process)
            _close_input(process)
            level = logging.INFO if code == 0 else logging.WARNING
            log.log(level, "%s: execution pid %d exited with code %d", self.name, process.pid, code)


def _close_input(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
