"""Posting to the queue a project's settings name for its notifications, which is always the user's queue.

The URI is used as the user gave it: a SAS URI carries its own credential, and nothing is ever signed with Seer's
key. A URI on Seer's own storage account is refused outright, and every address goes through the outbound policy
(`pipeline.core.outbound`), so a training-key holder can neither write into Seer's internal queues nor make Seer
post into a private network. The message is sent as the Queue service's Put Message, through the policy's client
(checked peer, timeout)."""

from __future__ import annotations

from xml.sax.saxutils import escape

import httpx

from pipeline.core.outbound import check_url, outbound_client
from pipeline.core.settings import Settings
from pipeline.store.account import StorageAccount

# A Queue service version every Azure Storage account and Azurite accept for Put Message.
_QUEUE_API_VERSION = "2021-12-02"


class NotificationFailed(Exception):
    """The queue did not take the message (its answer is in the message)."""


def _own_endpoints(account: StorageAccount) -> list[str]:
    return [account.queues.url, account.blobs.url, account.tables.url]


def check_notification_queue(account: StorageAccount, settings: Settings, queue_uri: str) -> None:
    """Raise OutboundRefused if Seer must not post to `queue_uri` (checked when a project names it and again
    when a notification is sent, since what a hostname resolves to can change in between)."""
    check_url(queue_uri, settings, _own_endpoints(account))


def post_notification(account: StorageAccount, settings: Settings, queue_uri: str, text: str) -> None:
    """Add `text` as a message to the queue at `queue_uri`; raises OutboundRefused, NotificationFailed or an
    httpx error (a timeout after `settings.notification_timeout_seconds`)."""
    check_notification_queue(account, settings, queue_uri)
    queue = httpx.URL(queue_uri)
    messages = queue.copy_with(path=queue.path.rstrip("/") + "/messages")
    body = f"<QueueMessage><MessageText>{escape(text)}</MessageText></QueueMessage>"
    headers = {"x-ms-version": _QUEUE_API_VERSION, "Content-Type": "application/xml"}
    with outbound_client(settings, settings.notification_timeout_seconds) as client:
        response = client.post(messages, content=body.encode(), headers=headers)
    if response.status_code != 201:
        raise NotificationFailed(f"the queue answered HTTP {response.status_code}: {response.text[:200]}")
