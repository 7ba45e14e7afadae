"""Scheduled retraining: projects that gained enough newly labelled images since their last completed
iteration are trained again (Regular), so models keep up with the data without anyone pressing Train."""

from __future__ import annotations

import logging

from pipeline.core.errors import CustomVisionError
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import IterationStatus
from pipeline.services.training import request_training
from pipeline.store import StorageAccount
from pipeline.store.image_index import LABELLED
from pipeline.store.images import ImageStore
from pipeline.store.iterations import IterationStore
from pipeline.store.projects import ProjectStore
from pipeline.store.records import IterationRecord

log = logging.getLogger(__name__)


def new_labelled_images(account: StorageAccount, project_id: str) -> int | None:
    """Images labelled since the last completed iteration was asked for (the project's labelled tally against
    the iteration's mark: two counter reads, whatever the project's size); None if the project never trained or
    is training."""
    iterations = IterationStore(account).list(project_id)
    if any(i.status == IterationStatus.TRAINING for i in iterations):
        return None
    completed = [i for i in iterations if i.status == IterationStatus.COMPLETED]
    if not completed:
        return None
    last = completed[-1]
    labelled = ImageStore(account).index(project_id).total(LABELLED)
    mark = last.labelled_mark if last.labelled_mark is not None else _legacy_mark(account, last, labelled)
    return labelled - mark


def _legacy_mark(account: StorageAccount, iteration: IterationRecord, labelled: int) -> int:
    """The mark of an iteration recorded before marks were kept: the tally less the tagged images created since
    it, counted once by a scan and then stored on the iteration."""
    since = sum(
        1
        for i in ImageStore(account).iter(iteration.project_id)
        if i.tag_ids and i.created > iteration.created
    )
    mark = labelled - since
    IterationStore(account).update(
        iteration.project_id, iteration.id, lambda i: i.model_copy(update={"labelled_mark": mark})
    )
    return mark


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
            iteration = request_training(account, settings, project.id, scheduled=True)
        except CustomVisionError as error:
            log.info("project %s not retrained: %s %s", project.id, error.code, error.message)
            continue
        log.info("project %s gained %d labelled images: queued %s", project.id, added, iteration.name)
        queued.append(project.id)
    return queued
