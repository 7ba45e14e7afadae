"""Asking for training: Custom Vision's validation rules, the Iteration row, and the message on the `training`
queue that a training job (training_job/, its own container) picks up."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Mapping

from pipeline.contract.training import TrainingMessage, chosen_tags
from pipeline.core.augmentation import DEFAULT_METHODS, augmentation_methods, enabled_methods
from pipeline.core.domains import domain_of
from pipeline.core.email_address import email_address
from pipeline.core.errors import CustomVisionError, bad_request, project_not_found
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import (
    ClassificationType,
    DomainType,
    IterationStatus,
    TagType,
    TrainingType,
    new_id,
    parse_choice,
)
from pipeline.services.base_model import base_iteration
from pipeline.services.iterations import remove_iteration
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.image_index import LABELLED, MULTI, REVISION, ImageIndex, tag_view
from pipeline.store.images import ImageStore
from pipeline.store.iterations import IterationStore
from pipeline.store.projects import ProjectStore
from pipeline.store.records import IterationRecord, ProjectRecord, TagRecord
from pipeline.store.tags import TagStore

# The spec spells these MultiClass and MultiLabel, unlike the classification types themselves.
_CLASSIFICATION_VALIDATION_FAILED = {
    ClassificationType.MULTICLASS: "BadRequestMultiClassClassificationTrainingValidationFailed",
    ClassificationType.MULTILABEL: "BadRequestMultiLabelClassificationTrainingValidationFailed",
}


def fingerprint(project: ProjectRecord, revision: int, tags: list[TagRecord]) -> str:
    """A digest of everything that changes what training would produce: the project's model settings, the chosen
    tags and the images' revision (a tally of image writes); equal digests mean nothing changed."""
    digest = hashlib.sha256()
    digest.update(json.dumps([project.domain_id, project.classification_type, revision]).encode())
    digest.update(json.dumps(sorted((t.id, t.type) for t in tags)).encode())
    methods = augmentation_methods(project.augmentation_methods)
    if methods != DEFAULT_METHODS:
        digest.update(json.dumps(sorted(enabled_methods(methods))).encode())
    return digest.hexdigest()


def _validate_detection_set(settings: Settings, counts: Mapping[str, int], tags: list[TagRecord]) -> None:
    """A detector learns from regions: each Regular tag needs enough images; Negative tags have no place in a
    detector's training set."""
    negative = [t.name for t in tags if t.type == TagType.NEGATIVE and counts.get(t.id, 0)]
    if negative:
        raise bad_request(
            "BadRequestDetectionTrainingNotAllowNegativeTag",
            f"Object detection cannot train on Negative tags: {', '.join(negative)}.",
        )
    code = "BadRequestDetectionTrainingValidationFailed"
    regular = [t for t in tags if t.type != TagType.NEGATIVE]
    if not regular:
        raise bad_request(code, "Training needs at least one tag with regions.")
    minimum = settings.min_images_per_tag_detection
    short = [f"{t.name} ({counts.get(t.id, 0)})" for t in regular if counts.get(t.id, 0) < minimum]
    if short:
        raise bad_request(
            code, f"Each tag needs regions on at least {minimum} images; too few: {', '.join(short)}."
        )


def _images_with_several(store: ImageStore, index: ImageIndex, tag_ids: set[str]) -> int:
    """Images carrying more than one of `tag_ids`, read from the index's view of images with several tags
    (empty in a project used as Multiclass, so this costs a counter read there)."""
    if not index.total(MULTI):
        return 0
    several = 0
    ids = index.ids(MULTI)
    while page := list(itertools.islice(ids, 100)):
        several += sum(
            1 for image in store.get_many(index.project_id, page) if len(image.tag_ids & tag_ids) > 1
        )
    return several


def _validate_training_set(
    settings: Settings,
    project: ProjectRecord,
    counts: Mapping[str, int],
    tags: list[TagRecord],
    several: Callable[[], int],
) -> None:
    """Custom Vision's rules, from the images per chosen tag (`several`: how many images carry two of them)."""
    if domain_of(project.domain_id).type == DomainType.OBJECT_DETECTION:
        _validate_detection_set(settings, counts, tags)
        return
    regular = [t for t in tags if t.type == TagType.REGULAR]
    code = _CLASSIFICATION_VALIDATION_FAILED.get(
        project.classification_type, "BadRequestClassificationTrainingValidationFailed"
    )
    if len(tags) < 2:
        raise bad_request(code, "Training needs at least two tags (a Negative tag counts) with images.")
    if not regular:
        raise bad_request(code, "Training needs at least one Regular tag.")
    minimum = settings.min_images_per_tag_classification
    short = [f"{t.name} ({counts.get(t.id, 0)})" for t in tags if counts.get(t.id, 0) < minimum]
    if short:
        raise bad_request(code, f"Each tag needs at least {minimum} images; too few: {', '.join(short)}.")
    if project.classification_type == ClassificationType.MULTICLASS:
        multi = several()
        if multi:
            raise bad_request(
                code,
                f"{multi} images have more than one tag; a Multiclass project allows one tag per image. The "
                "portal's images page lists them under “Two tags or more” (GetImages with multipleTags=true).",
            )


def _parse_training_type(
    training_type: str | None, budget_hours: int | None, settings: Settings
) -> tuple[TrainingType, int]:
    chosen = parse_choice(
        TrainingType, training_type, "trainingType", default=TrainingType.REGULAR, code="BadRequestInvalid"
    )
    if chosen == TrainingType.REGULAR:
        return chosen, 0
    budget = budget_hours or 1
    if not 1 <= budget <= settings.max_advanced_budget_hours:
        raise bad_request(
            "BadRequestReservedBudgetInHoursNotEnoughForAdvancedTraining",
            f"reservedBudgetInHours must be between 1 and {settings.max_advanced_budget_hours} for Advanced training.",
        )
    return chosen, budget


def _next_name(existing: list[IterationRecord]) -> str:
    numbers = [int(m.group(1)) for i in existing if (m := re.fullmatch(r"Iteration (\d+)", i.name))]
    return f"Iteration {max(numbers, default=len(existing)) + 1}"


def _make_room(
    account: StorageAccount, existing: list[IterationRecord], limit: int, keep: str | None = None
) -> None:
    """Keep at most `limit` iterations: drop the oldest unpublished finished ones (and their exports) but `keep`
    (the base the new iteration starts from), refuse if none can go."""
    removable = [
        i for i in existing if not i.publish_name and i.status != IterationStatus.TRAINING and i.id != keep
    ]
    excess = len(existing) + 1 - limit
    if excess > len(removable):
        raise bad_request(
            "BadRequestExceedIterationPerProjectLimit",
            f"A project keeps at most {limit} iterations; unpublish or delete one first.",
        )
    for iteration in removable[: max(0, excess)]:
        remove_iteration(account, iteration)


def _claim_training(account: StorageAccount, iteration: IterationRecord) -> None:
    """Make `iteration` the project's one training iteration, atomically (an ETag-guarded write of the project
    row), unless another iteration that is still training holds the claim. The iteration row exists before it
    claims, so whoever loses a race sees the winner's row and refuses: parallel requests train once."""
    iterations = IterationStore(account)

    def claim(project: ProjectRecord) -> ProjectRecord:
        if project.deleting:
            raise project_not_found(project.id)
        holder = project.training_iteration_id
        if holder and holder != iteration.id:
            other = iterations.get(project.id, holder)
            if other is not None and other.status == IterationStatus.TRAINING:
                raise bad_request("BadRequestTrainingAlreadyInProgress", "This project is already training.")
        return project.model_copy(update={"training_iteration_id": iteration.id})

    if ProjectStore(account).update(iteration.project_id, claim) is None:
        raise project_not_found(iteration.project_id)


def request_training(
    account: StorageAccount,
    settings: Settings,
    project_id: str,
    training_type: str | None = None,
    reserved_budget_in_hours: int | None = None,
    force_train: bool = False,
    selected_tag_ids: list[str] | None = None,
    notification_email_address: str | None = None,
    scheduled: bool = False,
    base_model: tuple[str, str] | None = None,
) -> IterationRecord:
    """`scheduled`: asked for by the retraining timer (services.retrain), not by a user. `base_model` is
    customBaseModelInfo's (project id, iteration id): the trained iteration to start from."""
    project = get_project(account, project_id)
    email = email_address(notification_email_address)
    kind, budget = _parse_training_type(training_type, reserved_budget_in_hours, settings)
    base = base_iteration(account, project, *base_model) if base_model else None
    iterations = IterationStore(account)
    existing = iterations.list(project.id)
    if any(i.status == IterationStatus.TRAINING for i in existing):
        raise bad_request("BadRequestTrainingAlreadyInProgress", "This project is already training.")
    all_tags = TagStore(account).list(project.id)
    unknown = set(selected_tag_ids or []) - {t.id for t in all_tags}
    if unknown:
        raise bad_request("BadRequestInvalidIds", f"Unknown tag ids in selectedTags: {sorted(unknown)}.")
    tags = chosen_tags(all_tags, selected_tag_ids or [])
    store = ImageStore(account)
    index = store.index(project.id)
    totals = index.totals()
    counts = {t.id: totals.get(tag_view(t.id), 0) for t in tags}
    chosen_ids = {t.id for t in tags}
    _validate_training_set(
        settings, project, counts, tags, lambda: _images_with_several(store, index, chosen_ids)
    )
    digest = fingerprint(project, totals.get(REVISION, 0), tags)
    completed = [i for i in existing if i.status == IterationStatus.COMPLETED]
    if completed and completed[-1].training_set_fingerprint == digest and not force_train:
        raise bad_request(
            "BadRequestTrainingNotNeeded",
            "Nothing changed since the last iteration; use forceTrain to train anyway.",
        )
    iteration = iterations.create(
        IterationRecord(
            id=new_id(),
            project_id=project.id,
            name=_next_name(existing),
            domain_id=project.domain_id,
            classification_type=project.classification_type,
            training_type=kind,
            reserved_budget_in_hours=budget,
            selected_tag_ids=[t.id for t in tags] if selected_tag_ids else [],
            training_set_fingerprint=digest,
            tag_image_counts=counts,
            labelled_mark=totals.get(LABELLED, 0),
            notification_email_address=email,
            augmentation_methods=project.augmentation_methods,
            scheduled=scheduled,
            base_project_id=base.project_id if base else None,
            base_iteration_id=base.id if base else None,
        )
    )
    try:
        _claim_training(account, iteration)
        _make_room(account, existing, settings.max_iterations_per_project, base.id if base else None)
    except CustomVisionError:
        iterations.delete(iteration)
        raise
    message = TrainingMessage(project_id=project.id, iteration_id=iteration.id)
    account.enqueue(settings.training_queue, message.encode())
    return iteration
