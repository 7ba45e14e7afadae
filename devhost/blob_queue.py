"""The blob extension's internal queue, which Event Grid deliveries feed: `azure-webjobs-blobtrigger-{hostId}` in the
host's storage, one BlobTriggerMessage per blob to run a function on."""

from __future__ import annotations

import binascii
import logging
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage
from pydantic import ValidationError

from devhost.app_loader import FunctionInfo
from devhost.blob_binding import POISON_QUEUE, BlobTriggerMessage, TriggerBlob
from devhost.queue_listener import DEFAULT_MESSAGE_LEASE_SECONDS, PoisonMessage, QueueListener
from pipeline.store import StorageAccount

log = logging.getLogger(__name__)

MAX_BATCH_SIZE = 32  # the queue service's most messages per receive


def blob_trigger_queue_name(host_id: str) -> str:
    return f"azure-webjobs-blobtrigger-{host_id}"


@dataclass(frozen=True)
class BlobRegistration:
    """An Event Grid blob function and the account its trigger's connection names (where its blobs are)."""

    function: FunctionInfo
    account: StorageAccount


class SharedBlobQueueDispatcher(QueueListener):
    """Runs each queued message's function on the blob as it is now: the Event Grid source checks no ETag and writes
    no receipts (each BlobCreated event is one invocation). A blob that is gone, or a function that no longer
    exists, completes the message. A failure makes the message visible again at once; the
    `poisonBlobThreshold`-th moves it to `webjobs-blobtrigger-poison` in the blob's account. At most
    `maxDegreeOfParallelism` messages run at once.
    """

    def __init__(
        self,
        host_account: StorageAccount,
        host_id: str,
        registrations: dict[str, BlobRegistration],
        *,
        poison_blob_threshold: int,
        parallelism: int,
        poll_interval: float,
        message_lease: float = DEFAULT_MESSAGE_LEASE_SECONDS,
    ) -> None:
        super().__init__(
            "blob-queue",
            host_account,
            blob_trigger_queue_name(host_id),
            max_dequeue_count=poison_blob_threshold,
            visibility_timeout=0.0,
            batch_size=min(MAX_BATCH_SIZE, parallelism),
            poll_interval=poll_interval,
            message_lease=message_lease,
        )
        self._registrations = registrations

    def enqueue(self, message: BlobTriggerMessage) -> None:
        self._account.enqueue(self._queue_name, message.encode())

    def process(self, message: QueueMessage) -> None:
        payload = _decode(message)
        registration = self._registrations.get(payload.function_id)
        if registration is None:
            log.warning("%s: no function %s for blob %s", self.name, payload.function_id, payload.blob_name)
            return
        try:
            blob = TriggerBlob.read(registration.account, payload.container_name, payload.blob_name)
        except ResourceNotFoundError:
            log.info("%s: blob %s/%s is gone", self.name, payload.container_name, payload.blob_name)
            return
        blob.invoke(registration.function)

    def poison_queue(self, message: QueueMessage) -> QueueClient:
        """`webjobs-blobtrigger-poison` in the account of the function's blobs, else in the host's."""
        try:
            registration = self._registrations.get(_decode(message).function_id)
        except PoisonMessage:
            registration = None
        return (registration.account if registration else self._account).queue(POISON_QUEUE)


def _decode(message: QueueMessage) -> BlobTriggerMessage:
    try:
        return BlobTriggerMessage.decode(message.content)
    except (binascii.Error, ValidationError, ValueError) as exc:
        raise PoisonMessage(f"not a blob trigger message: {exc}") from exc
