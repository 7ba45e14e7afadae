"""Telling a project's owner how training ended: the queue notification Custom Vision sends, and the e-mail to
the address TrainProject was given. Neither ever fails training: what cannot be delivered is logged."""

from __future__ import annotations

import logging

from pipeline.contract.notifications import TrainingContent, TrainingNotification
from pipeline.core.settings import Settings
from pipeline.store import StorageAccount
from pipeline.store.notification_queue import post_notification
from pipeline.store.records import IterationRecord, ProjectRecord
from training_job.mail import send_mail, training_mail

log = logging.getLogger(__name__)


def notify_training(
    account: StorageAccount, settings: Settings, project: ProjectRecord, iteration: IterationRecord
) -> None:
    """Post to the project's notification queue if it names one (the outbound policy may refuse it), and mail
    the iteration's notification address if it has one and SMTP is configured."""
    if project.notification_queue_uri:
        try:
            notification = TrainingNotification(
                content=TrainingContent(
                    project_id=project.id, iteration_id=iteration.id, training_status=iteration.status
                )
            )
            post_notification(account, settings, project.notification_queue_uri, notification.encode())
        except Exception:
            log.exception("could not post the training notification for project %s", project.id)
    if iteration.notification_email_address and settings.mail_configured:
        try:
            send_mail(settings, training_mail(settings.smtp_from_address, project, iteration))
        except Exception:
            log.exception("could not mail the training notification for iteration %s", iteration.id)
