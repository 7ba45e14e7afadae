"""The local host answers its app's own sends at once, as the Functions host does: a queue listener that has backed
off and a job launcher whose polls are a minute apart still take a message `StorageAccount.enqueue` sent within a
second, a standby execution is nudged through its standard input, and an execution's end starts the next round."""

from __future__ import annotations

import os
import shlex
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from azure.storage.queue import QueueMessage

from devhost.jobs import JobLauncher, JobSpec
from devhost.queue_listener import QueueListener
from devhost.worker import PollingWorker
from pipeline.store import StorageAccount
from tests.waiting import seconds_until

A_MINUTE = 60.0  # the longest wait of every worker here (a queue listener's waits grow to it from 0.2 s)

# A standby execution that never polls: it notes its start, waits for a line on standard input, then takes the
# message and notes it.
NUDGED_STANDBY = """
import os, pathlib, select, sys, time
from azure.storage.queue import QueueClient
notes = pathlib.Path(sys.argv[2])
def note(line):
    with notes.open("a") as file:
        file.write(line + "\\n")
note(f"started {os.getpid()}")
if select.select([sys.stdin], [], [], 120)[0] and sys.stdin.readline():
    queue = QueueClient.from_connection_string(os.environ["AzureWebJobsStorage"], sys.argv[1])
    message = queue.receive_message()
    queue.delete_message(message)
    note(f"took {os.getpid()} {message.content}")
"""

# An execution started for a visible message: it takes it and notes it.
TAKER = """
import os, pathlib, sys
from azure.storage.queue import QueueClient
queue = QueueClient.from_connection_string(os.environ["AzureWebJobsStorage"], sys.argv[1])
message = queue.receive_message()
queue.delete_message(message)
pathlib.Path(sys.argv[2]).write_text(message.content)
"""


def _queue_name(account: StorageAccount) -> str:
    name = f"wake-{uuid.uuid4().hex[:12]}"
    account.queue(name)
    return name


@contextmanager
def _running(worker: PollingWorker) -> Iterator[None]:
    worker.start()
    try:
        yield
    finally:
        worker.request_stop()
        worker.join()


def _launcher(
    account: StorageAccount, connection: str, queue: str, script: str, notes: Path, *, standby: bool
) -> JobLauncher:
    command = shlex.join([sys.executable, "-c", script, queue, str(notes)])
    return JobLauncher(
        JobSpec.parse(f"{queue}={command}", standby=standby),
        account,
        env={**os.environ, "AzureWebJobsStorage": connection},
        poll_interval=A_MINUTE,
    )


class Recorder(QueueListener):
    def __init__(self, account: StorageAccount, queue: str, longest_wait: float = A_MINUTE) -> None:
        super().__init__(
            "recorder",
            account,
            queue,
            max_dequeue_count=5,
            visibility_timeout=0,
            batch_size=4,
            poll_interval=longest_wait,
        )
        self.waits: list[float] = []
        self.taken: list[str] = []

    @property
    def rounds(self) -> int:
        return len(self.waits)

    def poll(self) -> float:
        delay = super().poll()
        self.waits.append(delay)
        return delay

    def process(self, message: QueueMessage) -> None:
        self.taken.append(message.content)


def test_a_queue_listener_takes_a_message_its_process_sent_without_waiting_for_its_poll(
    account: StorageAccount,
) -> None:
    queue = _queue_name(account)
    recorder = Recorder(account, queue)
    with _running(recorder):
        seconds_until(lambda: recorder.rounds == 4)  # backed off: the next receive is 1.6 s away
        account.enqueue(queue, "blob arrived")
        assert seconds_until(lambda: recorder.taken == ["blob arrived"]) < 1


def test_a_job_launcher_starts_an_execution_for_a_message_its_process_sent(
    account: StorageAccount, storage_connection_string: str, tmp_path: Path
) -> None:
    queue = _queue_name(account)
    marker = tmp_path / "taken"
    launcher = _launcher(account, storage_connection_string, queue, TAKER, marker, standby=False)
    with _running(launcher):
        time.sleep(0.3)  # its first round: the queue is empty
        account.enqueue(queue, "export 9")
        seconds_until(marker.exists)
    assert marker.read_text() == "export 9"


def test_a_standby_execution_is_nudged_to_take_the_message_and_the_next_starts_when_it_ends(
    account: StorageAccount, storage_connection_string: str, tmp_path: Path
) -> None:
    queue = _queue_name(account)
    notes = tmp_path / "notes"
    launcher = _launcher(account, storage_connection_string, queue, NUDGED_STANDBY, notes, standby=True)
    with _running(launcher):
        seconds_until(lambda: notes.exists() and "started" in notes.read_text(), timeout=20)
        account.enqueue(queue, "train project 8")
        seconds_until(lambda: "took" in notes.read_text())
        seconds_until(lambda: notes.read_text().count("started") == 2, timeout=20)
    first, took, second = (line.split() for line in notes.read_text().splitlines())
    assert took[1:] == [first[1], "train", "project", "8"]
    assert second[1] != first[1]


def test_an_empty_queue_is_asked_ever_less_often_up_to_the_longest_wait_and_at_once_after_a_send(
    account: StorageAccount,
) -> None:
    """The Functions host's back-off: 0.2 s after an empty receive, doubled after each next one up to
    maxPollingInterval; a message found, or sent by this process, starts it over."""
    queue = _queue_name(account)
    recorder = Recorder(account, queue, longest_wait=1.0)
    with _running(recorder):
        seconds_until(lambda: recorder.rounds == 5)
        account.enqueue(queue, "blob arrived")
        seconds_until(lambda: recorder.rounds == 8)
    assert recorder.taken == ["blob arrived"]
    assert recorder.waits[:8] == [0.2, 0.4, 0.8, 1.0, 1.0, 0.0, 0.2, 0.4]


def test_a_command_that_ends_at_once_is_restarted_about_once_a_second_not_in_a_tight_loop(
    account: StorageAccount, storage_connection_string: str, tmp_path: Path
) -> None:
    """An execution's end wakes the launcher, but no sooner than a second after its start: a standby command that
    fails at once (a bad install) is not restarted as fast as the machine can start processes."""
    queue = _queue_name(account)
    notes = tmp_path / "starts"
    failing = (
        "import pathlib, sys\nwith pathlib.Path(sys.argv[2]).open('a') as f: f.write('start\\n')\nsys.exit(1)"
    )
    launcher = _launcher(account, storage_connection_string, queue, failing, notes, standby=True)
    with _running(launcher):
        time.sleep(3.5)
    starts = notes.read_text().count("start")
    assert 3 <= starts <= 5, starts
