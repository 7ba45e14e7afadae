"""The host's queue listener, shared by queue triggers and the blob extension's internal queue: leases, dequeue
counts, release on failure, poison on the last try."""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from azure.storage.queue import QueueClient, QueueMessage

from devhost.worker import PollingWorker
from pipeline.store import StorageAccount

log = logging.getLogger(__name__)

DEFAULT_MESSAGE_LEASE_SECONDS = 600.0  # the real host's: a message stays invisible while a function runs
FIRST_EMPTY_WAIT_SECONDS = 0.2  # the real host's wait after an empty receive, doubled after each next one


class PoisonMessage(ValueError):
    """A message no retry can help (undecodable): it goes to the poison queue at once."""


class QueueListener(PollingWorker):
    """Receives up to `batch_size` messages under a lease, processes them concurrently, deletes each on success.

    On failure a message is released to reappear after `visibility_timeout`; one that fails on its
    `max_dequeue_count`-th dequeue, arrives already past it, or raises PoisonMessage is copied unchanged to the
    poison queue and deleted.

    Polling backs off as the Functions host's does: after messages it asks again at once, after an empty receive
    in `FIRST_EMPTY_WAIT_SECONDS`, doubled after each next one up to `poll_interval` (host.json's
    `queues.maxPollingInterval`). A message this process sends (`StorageAccount.enqueue`) is asked for at once.
    """

    def __init__(
        self,
        name: str,
        account: StorageAccount,
        queue_name: str,
        *,
        max_dequeue_count: int,
        visibility_timeout: float,
        batch_size: int,
        poll_interval: float,
        message_lease: float = DEFAULT_MESSAGE_LEASE_SECONDS,
    ) -> None:
        super().__init__(name)
        self._account = account
        self._queue_name = queue_name
        self._max_dequeue_count = max_dequeue_count
        self._visibility_timeout = math.ceil(visibility_timeout)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._empty_wait = 0.0  # the wait after the last empty receive; 0 after messages or a wake
        self._message_lease = math.ceil(message_lease)
        self._executor = ThreadPoolExecutor(max_workers=batch_size, thread_name_prefix=name)
        self._unwatch: Callable[[], None] = lambda: None

    @abstractmethod
    def process(self, message: QueueMessage) -> None:
        """Run the function for one message; an exception means it failed this time."""

    def poison_queue(self, message: QueueMessage) -> QueueClient:
        """Where a message goes after its last try: `<queue>-poison` beside the queue."""
        return self._account.queue(f"{self._queue_name}-poison")

    def start(self) -> None:
        """Listen for this process's own sends too, as the Functions host does (pipeline.store.queue_watch)."""
        self._unwatch = self._account.on_enqueue(self._queue_name, self.wake)
        super().start()

    def wake(self) -> None:
        self._empty_wait = 0.0
        super().wake()

    def poll(self) -> float:
        messages = list(
            self._account.queue(self._queue_name).receive_messages(
                messages_per_page=self._batch_size,
                max_messages=self._batch_size,
                visibility_timeout=self._message_lease,
            )
        )
        if not messages:
            self._empty_wait = min(self._poll_interval, 2 * self._empty_wait or FIRST_EMPTY_WAIT_SECONDS)
            return self._empty_wait
        self._empty_wait = 0.0
        list(self._executor.map(self._handle, messages))
        return 0.0

    def close(self) -> None:
        self._unwatch()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _handle(self, message: QueueMessage) -> None:
        """One message; storage errors are logged here so the rest of the batch still completes."""
        try:
            self._settle(message)
        except Exception:
            log.exception(
                "%s: could not settle message %s; it reappears after its lease", self.name, message.id
            )

    def _settle(self, message: QueueMessage) -> None:
        queue = self._account.queue(self._queue_name)
        if message.dequeue_count > self._max_dequeue_count:
            log.error(
                "%s: message %s was dequeued %d times already", self.name, message.id, message.dequeue_count
            )
            self._poison(message)
            return
        try:
            self.process(message)
        except PoisonMessage as exc:
            log.error("%s: message %s cannot be processed: %s", self.name, message.id, exc)
            self._poison(message)
            return
        except Exception:
            if message.dequeue_count >= self._max_dequeue_count:
                self._poison(message)
            else:
                log.warning(
                    "%s: message %s failed (dequeue %d of %d); visible again in %ds",
                    self.name,
                    message.id,
                    message.dequeue_count,
                    self._max_dequeue_count,
                    self._visibility_timeout,
                )
                queue.update_message(
                    message.id, pop_receipt=message.pop_receipt, visibility_timeout=self._visibility_timeout
                )
            return
        queue.delete_message(message.id, message.pop_receipt)

    def _poison(self, message: QueueMessage) -> None:
        """Copy the raw content (still encoded, as the real host does) to the poison queue, then delete."""
        poison = self.poison_queue(message)
        log.warning("%s: moving message %s to queue '%s'", self.name, message.id, poison.queue_name)
        poison.send_message(message.content)
        self._account.queue(self._queue_name).delete_message(message.id, message.pop_receipt)
