"""A standby job execution (`python -m training_job --wait SECONDS`) waits on the real queue for its message: it
takes one that arrives while it waits, and gives up after the wait when none comes. What it prepares only while
idle does not hold up a request already waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

from pipeline.store import StorageAccount
from training_job.queue_job import NUDGED_POLL_SECONDS, JobQueue, Work, receive, run_once


def _queue(account: StorageAccount) -> JobQueue:
    queue = JobQueue(f"wait-{uuid.uuid4().hex[:12]}", visibility_timeout_seconds=30, max_attempts=5)
    account.queue(queue.name)
    return queue


def test_a_waiting_execution_takes_a_message_that_arrives_while_it_waits(account: StorageAccount) -> None:
    queue = _queue(account)
    sender = threading.Timer(0.6, lambda: account.queue(queue.name).send_message("train project 3"))
    started = time.monotonic()
    sender.start()
    message = receive(account, queue, wait_seconds=20)
    waited = time.monotonic() - started
    sender.join()
    assert message is not None and message.content == "train project 3"
    assert 0.6 <= waited < 5, waited


def test_a_waiting_execution_gives_up_after_its_wait_and_one_without_a_wait_does_not_wait(
    account: StorageAccount,
) -> None:
    queue = _queue(account)
    started = time.monotonic()
    assert receive(account, queue) is None
    assert time.monotonic() - started < 1
    started = time.monotonic()
    assert receive(account, queue, wait_seconds=0.7) is None
    assert 0.7 <= time.monotonic() - started < 3


def test_a_nudged_execution_asks_the_queue_at_once_and_otherwise_every_few_seconds(
    account: StorageAccount,
) -> None:
    """A nudge (a line on the pipe, as the local host's launcher writes after its app sends a message) ends the
    wait at once; a message nobody nudges for (another process sent it) is still found by the slower poll."""
    queue = _queue(account)
    read_end, write_end = os.pipe()
    try:

        def send_and_nudge() -> None:
            account.queue(queue.name).send_message("train project 4")
            os.write(write_end, b"\n")

        nudged = _time_to_receive(account, queue, read_end, threading.Timer(0.6, send_and_nudge))
        assert 0.6 <= nudged < 0.6 + NUDGED_POLL_SECONDS / 2, nudged
        sent = threading.Timer(0.6, lambda: account.queue(queue.name).send_message("train project 5"))
        polled = _time_to_receive(account, queue, read_end, sent)
        assert NUDGED_POLL_SECONDS <= polled < NUDGED_POLL_SECONDS + 2, polled
    finally:
        os.close(read_end)
        os.close(write_end)


def test_an_execution_whose_launcher_closed_its_pipe_polls_as_often_as_without_one(
    account: StorageAccount,
) -> None:
    queue = _queue(account)
    read_end, write_end = os.pipe()
    os.close(write_end)
    try:
        sent = threading.Timer(0.6, lambda: account.queue(queue.name).send_message("train project 6"))
        assert _time_to_receive(account, queue, read_end, sent) < 0.6 + NUDGED_POLL_SECONDS / 2
    finally:
        os.close(read_end)


def _time_to_receive(account: StorageAccount, queue: JobQueue, nudges: int, sender: threading.Timer) -> float:
    started = time.monotonic()
    sender.start()
    message = receive(account, queue, wait_seconds=20, nudges=nudges)
    sender.join()
    assert message is not None
    account.queue(queue.name).delete_message(message)
    return time.monotonic() - started


def test_only_a_pipe_on_standard_input_is_taken_for_nudges() -> None:
    """The launcher's pipe nudges; a terminal, /dev/null or a closed standard input leaves the 0.2 s poll."""
    probe = [sys.executable, "-c", "from training_job.queue_job import nudge_pipe; print(nudge_pipe())"]
    seen = [
        subprocess.run(probe, stdin=stdin, capture_output=True, text=True, check=True).stdout.strip()
        for stdin in (subprocess.PIPE, subprocess.DEVNULL)
    ]
    closed = subprocess.run(probe, capture_output=True, text=True, check=True, preexec_fn=lambda: os.close(0))
    assert [*seen, closed.stdout.strip()] == ["0", "None", "None"]


def _recording_work(events: list[str]) -> Work[str, str]:
    return Work(
        noun="test request",
        decode=lambda content: content,
        describe=lambda request: request,
        load=lambda request: request,
        run=lambda request, subject: events.append(f"ran {request}"),
        fail=lambda request, subject, reason, error: events.append(f"failed {request}"),
    )


def test_a_request_already_waiting_is_taken_before_the_idle_preparation(account: StorageAccount) -> None:
    """A standby execution prepares for detection only once it has found no request waiting (training_job.job):
    a classifier request queued while it started does not wait for torchvision."""
    queue = _queue(account)
    account.queue(queue.name).send_message("train project 7")
    events: list[str] = []
    assert (
        run_once(account, queue, _recording_work(events), 20, while_idle=lambda: events.append("prepared"))
        == 0
    )
    assert events == ["ran train project 7"]


def test_with_nothing_waiting_the_idle_preparation_runs_and_then_the_wait(account: StorageAccount) -> None:
    queue = _queue(account)
    events: list[str] = []

    def prepare() -> None:
        events.append("prepared")
        account.queue(queue.name).send_message("train project 8")  # arrives once the execution is idle

    assert run_once(account, queue, _recording_work(events), 20, while_idle=prepare) == 0
    assert events == ["prepared", "ran train project 8"]
