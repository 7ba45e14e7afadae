"""The in-process word that a queue has a new message, and the host worker that it wakes."""

from __future__ import annotations

import threading
import time

import pytest
from azure.storage.queue import QueueClient

from devhost.worker import PollingWorker
from pipeline.store.queue_watch import QueueWatch
from tests.waiting import seconds_until

ACCOUNT_URL = "http://127.0.0.1:10001/devstoreaccount1"


def _client(queue: str, credential: str = "a2V5") -> QueueClient:
    return QueueClient(
        ACCOUNT_URL, queue, credential={"account_name": "devstoreaccount1", "account_key": credential}
    )


def test_a_send_reaches_the_listeners_of_that_queue_through_any_client_until_they_stop() -> None:
    watch = QueueWatch()
    heard: list[str] = []
    stop = watch.subscribe(_client("training"), lambda: heard.append("training"))
    watch.subscribe(_client("exports"), lambda: heard.append("exports"))
    watch.announce(_client("training", credential="b3RoZXI="))  # another client, another key: the same queue
    assert heard == ["training"]
    stop()
    watch.announce(_client("training"))
    assert heard == ["training"]


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog: pytest.LogCaptureFixture) -> None:
    watch = QueueWatch()
    heard: list[str] = []

    def broken() -> None:
        raise RuntimeError("listener bug")

    watch.subscribe(_client("training"), broken)
    watch.subscribe(_client("training"), lambda: heard.append("second"))
    watch.announce(_client("training"))
    assert heard == ["second"]
    assert "listener bug" in caplog.text


class Rounds(PollingWorker):
    """Counts its rounds; each waits `round_seconds` and asks for `interval` before the next."""

    def __init__(self, interval: float, round_seconds: float = 0.0) -> None:
        super().__init__("rounds")
        self.rounds = 0
        self.interval = interval
        self.round_seconds = round_seconds
        self.in_round = threading.Event()

    def poll(self) -> float:
        self.in_round.set()
        time.sleep(self.round_seconds)
        self.rounds += 1
        return self.interval


def test_a_woken_worker_starts_its_next_round_at_once_instead_of_after_its_interval() -> None:
    worker = Rounds(interval=60)
    worker.start()
    try:
        seconds_until(lambda: worker.rounds == 1)
        worker.wake()
        assert seconds_until(lambda: worker.rounds == 2) < 1
        time.sleep(0.3)
        assert worker.rounds == 2  # one wake, one round
    finally:
        worker.request_stop()
        worker.join()


def test_a_wake_during_a_round_is_kept_for_the_next_and_a_stop_during_one_is_not_waited_out() -> None:
    worker = Rounds(interval=60, round_seconds=0.3)
    worker.start()
    try:
        worker.in_round.wait(5)
        worker.wake()  # while the first round runs
        assert seconds_until(lambda: worker.rounds == 2) < 1.5
        worker.in_round.clear()
        worker.wake()
        worker.in_round.wait(5)
    finally:
        worker.request_stop()  # during the third round
    started = time.monotonic()
    worker.join(5)
    assert time.monotonic() - started < 1.5
    assert worker.rounds == 3
