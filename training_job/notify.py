"""Posting the training notification Custom Vision sends when an iteration finishes."""

from __future__ import annotations

import logging

from pipeline.contract.notifications import TrainingContent, TrainingNotification
from pipeline.core.settings import Settings
from pipeline.store import StorageAccount
from pipeline.store.notification_queue import post_notification
from pipeline.store.records import IterationRecord, ProjectRecord

log = logging.getLogger(__name__)


def notify_training(
    account: StorageAccount, settings: Settings, project: ProjectRecord, iteration: IterationRecord
) -> None:
    """Post the training status to the project's notification queue, if it names one; a notification that
    cannot be delivered (or that the outbound policy refuses) is logged, never fails training."""
    if not project.notification_queue_uri:
        return
    try:
        notification = TrainingNotification(
            content=TrainingContent(
                project_id=project.id, iteration_id=iteration.id, training_status=iteration.status
            )
        )
        post_notification(account, settings, project.notification_queue_uri, notification.encode())
    except Exception:
        log.exception("could not post the training notification for project %s", project.id)
