"""Posting the training notification Custom Vision sends when an iteration finishes."""

from __future__ import annotations

import logging

from pipeline.contract.notifications import TrainingContent, TrainingNotification
from pipeline.store import StorageAccount
from pipeline.store.notification_queue import notification_queue
from pipeline.store.records import IterationRecord, ProjectRecord

log = logging.getLogger(__name__)


def notify_training(account: StorageAccount, project: ProjectRecord, iteration: IterationRecord) -> None:
    """Post the training status to the project's notification queue, if it names one; a notification that
    cannot be delivered is logged, never fails training."""
    if not project.notification_queue_uri:
        return
    try:
        notification = TrainingNotification(
            content=TrainingContent(
                project_id=project.id, iteration_id=iteration.id, training_status=iteration.status
            )
        )
        notification_queue(account, project.notification_queue_uri).send_message(notification.encode())
    except Exception:
        log.exception("could not post the training notification for project %s", project.id)
