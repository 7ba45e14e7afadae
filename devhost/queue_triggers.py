"""Queue triggers with the real host's semantics: leases, dequeue counts, `<queue>-poison`, base64 bodies."""

from __future__ import annotations

import base64
import binascii
import logging
import math
from concurrent.futures import ThreadPoolExecutor

from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.storage.queue import QueueMessage

from devhost.app_loader import FunctionInfo
from devhost.invocation import convert_payload, invoke
from devhost.worker import PollingWorker
from pipeline.store import StorageAccount

log = logging.getLogger(__name__)

DEFAULT_MESSAGE_LEASE_SECONDS = 600.0  # the real host's: a message stays invisible while a function runs


class QueueTriggerDispatcher(PollingWorker):
    """Receives up to `batch_size` messages, runs them concurrently, deletes each on success.

    On failure the message is released to reappear after `visibility_timeout` (host.json's retry delay); a
    message that fails on its `max_dequeue_count`-th dequeue, or arrives already past it, or is not valid
    base64, is copied unchanged to `<queue>-poison` and deleted.
    """

    def __init__(
        self,
        function: FunctionInfo,
        account: StorageAccount,
        *,
        max_dequeue_count: int,
        visibility_timeout: float,
        batch_size: int,
        message_encoding: str,
        poll_interval: float,
        message_lease: float = DEFAULT_MESSAGE_LEASE_SECONDS,
    ) -> None:
        super().__init__(f"queue:{function.name}")
        self._function = function
        self._account = account
        self._queue_name = function.trigger["queueName"]
        self._max_dequeue_count = max_dequeue_count
        self._visibility_timeout = math.ceil(visibility_timeout)
        self._batch_size = batch_size
        self._message_encoding = message_encoding
        self._poll_interval = poll_interval
        self._message_lease = math.ceil(message_lease)
        self._executor = ThreadPoolExecutor(max_workers=batch_size, thread_name_prefix=self.name)

    def poll(self) -> float:
        queue = self._account.queue(self._queue_name)
        messages = list(
            queue.receive_messages(
                messages_per_page=self._batch_size,
                max_messages=self._batch_size,
                visibility_timeout=self._message_lease,
            )
        )
        if not messages:
            return self._poll_interval
        list(self._executor.map(self._handle, messages))
        return 0.0

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _handle(self, message: QueueMessage) -> None:
        """One message; storage errors are logged here so the rest of the batch still completes."""
        try:
            self._process(message)
        except Exception:
            log.exception(
                "%s: could not settle message %s; it reappears after its lease", self.name, message.id
            )

    def _process(self, message: QueueMessage) -> None:
        queue = self._account.queue(self._queue_name)
        if message.dequeue_count > self._max_dequeue_count:
            log.error(
                "%s: message %s was dequeued %d times already", self.name, message.id, message.dequeue_count
            )
            self._poison(message)
            return
        try:
            body = self._decode(message.content)
        except binascii.Error:
            log.error("%s: message %s is not valid base64", self.name, message.id)
            self._poison(message)
            return
        binding_object = FunctionsQueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        try:
            invoke(
                self._function,
                convert_payload(self._function, body, binding_object),
                reason=f"New queue message detected on '{self._queue_name}'.",
            )
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

    def _decode(self, content: str) -> bytes:
        if self._message_encoding == "none":
            return content.encode("utf-8")
        return base64.b64decode("".join(content.split()), validate=True)

    def _poison(self, message: QueueMessage) -> None:
        """Copy the raw content (still encoded, as the real host does) to the poison queue, then delete."""
        poison_queue = f"{self._queue_name}-poison"
        log.warning("%s: moving message %s to queue '%s'", self.name, message.id, poison_queue)
        self._account.queue(poison_queue).send_message(message.content)
        self._account.queue(self._queue_name).delete_message(message.id, message.pop_receipt)
