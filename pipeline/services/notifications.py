"""Custom Vision training notifications, posted to the queue a project's settings name."""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlparse

from azure.storage.queue import QueueClient
from pydantic import BaseModel, ConfigDict, Field

from pipeline.store import StorageAccount
from pipeline.store.records import IterationRecord, ProjectRecord

log = logging.getLogger(__name__)


class TrainingContent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    project_id: str = Field(alias="projectId")
    iteration_id: str = Field(alias="iterationId")
    training_status: str = Field(alias="trainingStatus")


class TrainingNotification(BaseModel):
    """`{"version":"1.0","type":"Training","Content":{projectId, iterationId, trainingStatus}}` as Custom Vision."""

    model_config = ConfigDict(populate_by_name=True)

    version: str = "1.0"
    type: str = "Training"
    content: TrainingContent = Field(alias="Content")


def _queue_client(account: StorageAccount, queue_uri: str) -> QueueClient:
    """A SAS URI carries its own credential; a bare URI on Seer's own account uses Seer's key."""
    parsed = urlparse(queue_uri)
    if parsed.query:
        return QueueClient.from_queue_url(queue_uri)
    own = urlparse(account.queues.url)
    if parsed.netloc == own.netloc:
        return QueueClient.from_queue_url(queue_uri, credential=account.queues.credential)
    return QueueClient.from_queue_url(queue_uri)


def notify_training(account: StorageAccount, project: ProjectRecord, iteration: IterationRecord) -> None:
    """Post the training status; a notification that cannot be delivered is logged, never fails training."""
    if not project.notification_queue_uri:
        return
    notification = TrainingNotification(
        content=TrainingContent(
            project_id=project.id, iteration_id=iteration.id, training_status=iteration.status
        )
    )
    body = base64.b64encode(notification.model_dump_json(by_alias=True).encode()).decode()
    try:
        _queue_client(account, project.notification_queue_uri).send_message(body)
    except Exception:
        log.exception("could not post the training notification for project %s", project.id)
