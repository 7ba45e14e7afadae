"""Keeps a queue message invisible while its job works, so a long training run is not handed to a second job,
yet a killed job's message comes back after one visibility timeout and is retried (dequeue count + 1)."""

from __future__ import annotations

import logging
import threading

from azure.storage.queue import QueueClient, QueueMessage

log = logging.getLogger(__name__)


class MessageLease:
    def __init__(self, queue: QueueClient, message: QueueMessage, visibility_timeout: int) -> None:
        self.queue = queue
        self.message = message
        self.visibility_timeout = visibility_timeout
        self._pop_receipt = message.pop_receipt
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_stopped, name="message-lease", daemon=True)

    def __enter__(self) -> MessageLease:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _renew_until_stopped(self) -> None:
        interval = max(1.0, self.visibility_timeout / 3)
        while not self._stop.wait(interval):
            try:
                with self._lock:
                    updated = self.queue.update_message(
                        self.message.id, self._pop_receipt, visibility_timeout=self.visibility_timeout
                    )
                    self._pop_receipt = updated.pop_receipt
            except Exception:
                log.exception("could not extend the message's visibility; another job may pick it up")

    def complete(self) -> None:
        """Delete the message: the work is done (or has been recorded as failed for good)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            self.queue.delete_message(self.message.id, self._pop_receipt)
