"""A standby job execution (`python -m training_job --wait SECONDS`) waits on the real queue for its message: it
takes one that arrives while it waits, and gives up after the wait when none comes."""

from __future__ import annotations

import threading
import time
import uuid

from pipeline.store import StorageAccount
from training_job.queue_job import JobQueue, receive


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
