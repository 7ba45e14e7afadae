"""The queue a project's notifications go to, which may live outside Seer's storage account."""

from __future__ import annotations

from urllib.parse import urlparse

from azure.storage.queue import QueueClient

from pipeline.store.account import StorageAccount


def notification_queue(account: StorageAccount, queue_uri: str) -> QueueClient:
    """A SAS URI carries its own credential; a bare URI on Seer's own account uses Seer's key."""
    parsed = urlparse(queue_uri)
    if parsed.query:
        return QueueClient.from_queue_url(queue_uri)
    own = urlparse(account.queues.url)
    if parsed.netloc == own.netloc:
        return QueueClient.from_queue_url(queue_uri, credential=account.queues.credential)
    return QueueClient.from_queue_url(queue_uri)
