"""Notification queues as a user sets them up: a queue in their own account and a SAS URI that may add to it."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

from azure.storage.queue import QueueClient, QueueSasPermissions, generate_queue_sas

from pipeline.store import StorageAccount


def sas_queue(account: StorageAccount) -> tuple[QueueClient, str]:
    """A fresh queue in `account` and its add-only SAS URI."""
    queue = account.queue(f"notify-{uuid.uuid4().hex[:12]}")
    sas = generate_queue_sas(
        account.queues.account_name,
        queue.queue_name,
        account.queues.credential.account_key,
        permission=QueueSasPermissions(add=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return queue, f"{queue.url}?{sas}"


def received(queue: QueueClient) -> list[dict]:
    """The notifications waiting on `queue`, decoded."""
    return [json.loads(base64.b64decode(m.content)) for m in queue.peek_messages(max_messages=32)]
