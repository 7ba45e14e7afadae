"""Scheduled retraining: projects that gained enough newly labelled images since their last completed
iteration are trained again (Regular), so models keep up with the data without anyone pressing Train."""

from __future__ import annotations

import logging

from pipeline.core.errors import CustomVisionError
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import IterationStatus
from pipeline.services.training import request_training
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.iterations import IterationStore
from pipeline.store.projects import ProjectStore

log = logging.getLogger(__name__)


def new_labelled_images(account: StorageAccount, project_id: str) -> int | None:
    """Tagged images added since the last completed iteration; None if the project never trained or is training."""
    iterations = IterationStore(account).list(project_id)
    if any(i.status == IterationStatus.TRAINING for i in iterations):
        return None
    completed = [i for i in iterations if i.status == IterationStatus.COMPLETED]
    if not completed:
        return None
    since = completed[-1].created
    return sum(1 for image in ImageStore(account).iter(project_id) if image.tag_ids and image.created > since)


def retrain_due_projects(account: StorageAccount, settings: Settings) -> list[str]:
    """Queue training for every project over the threshold; return their ids. 0 disables scheduled retraining."""
    if settings.retrain_min_new_images <= 0:
        return []
    queued = []
    for project in ProjectStore(account).list():
        added = new_labelled_images(account, project.id)
        if added is None or added < settings.retrain_min_new_images:
            continue
        try:
            iteration = request_training(account, settings, project.id)
        except CustomVisionError as error:
            log.info("project %s not retrained: %s %s", project.id, error.code, error.message)
            continue
        log.info("project %s gained %d labelled images: queued %s", project.id, added, iteration.name)
        queued.append(project.id)
    return queued
