"""A KEDA-like job launcher: start a command while a queue has visible messages, as an Azure Container Apps
Job with an azure-queue scale rule does. The job dequeues its own message; the launcher only counts them.

A standby job also keeps one execution started while the queue is empty; its command waits for a message
(`python -m training_job --wait SECONDS`). A request then meets a process whose interpreter, imports and device
are ready instead of paying for them after it arrives (seconds for torch). Container Apps Jobs cannot hold a
replica warm, so this is the local host's option only.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from devhost.worker import PollingWorker
from pipeline.store import StorageAccount

log = logging.getLogger(__name__)

PEEK_LIMIT = 32  # the most messages one peek returns; KEDA's scaler peeks too, to count only visible ones


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
    none is running); reaps and logs exit codes. A standby execution counts toward `parallelism`."""

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

    @property
    def running(self) -> int:
        return len(self._running)

    def poll(self) -> float:
        self._reap()
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
        self._reap()  # those that ended on their own are logged with their exit code
        for process in self._running:
            process.terminate()
        for process in self._running:
            try:
                process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.info("%s: stopped execution pid %d", self.name, process.pid)
        self._running.clear()

    def _launch(self, reason: str) -> None:
        process = subprocess.Popen(self._spec.command, env=self._env)
        self._running.append(process)
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
            level = logging.INFO if code == 0 else logging.WARNING
            log.log(level, "%s: execution pid %d exited with code %d", self.name, process.pid, code)
