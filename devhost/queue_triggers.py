"""Queue triggers with the real host's semantics: leases, dequeue counts, `<queue>-poison`, base64 bodies."""

from __future__ import annotations

import base64
import binascii

from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.storage.queue import QueueMessage

from devhost.app_loader import FunctionInfo
from devhost.invocation import convert_payload, invoke
from devhost.queue_listener import DEFAULT_MESSAGE_LEASE_SECONDS, PoisonMessage, QueueListener
from pipeline.store import StorageAccount


class QueueTriggerDispatcher(QueueListener):
    """One queue-triggered function: host.json's `queues` settings, and a message that is not valid base64 (with
    the default encoding) goes straight to `<queue>-poison`."""

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
        super().__init__(
            f"queue:{function.name}",
            account,
            function.trigger["queueName"],
            max_dequeue_count=max_dequeue_count,
            visibility_timeout=visibility_timeout,
            batch_size=batch_size,
            poll_interval=poll_interval,
            message_lease=message_lease,
        )
        self._function = function
        self._message_encoding = message_encoding

    def process(self, message: QueueMessage) -> None:
        body = self._decode(message.content)
        binding_object = FunctionsQueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        invoke(
            self._function,
            convert_payload(self._function, body, binding_object),
            reason=f"New queue message detected on '{self._queue_name}'.",
        )

    def _decode(self, content: str) -> bytes:
        if self._message_encoding == "none":
            return content.encode("utf-8")
        try:
            return base64.b64decode("".join(content.split()), validate=True)
        except binascii.Error as exc:
            raise PoisonMessage("not valid base64") from exc
