"""Iteration performance: metrics recomputed at any threshold (and, for detectors, any overlap threshold) from
the stored cross-validation results, and the per-image results joined with the images as they are now (images
deleted since training drop out)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.contract.evaluation import EvaluatedImage, EvaluatedLabel, EvaluationRecord
from pipeline.core.errors import bad_request, not_trained
from pipeline.core.vocabulary import DomainType, Order, parse_choice
from pipeline.services.iterations import completed_iteration
from pipeline.services.prediction import by_probability, predicted
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.iterations import IterationStore
from pipeline.store.records import ImageRecord, IterationRecord, PredictedTag
from pipeline.vision.metrics import (
    DetectedImage,
    Performance,
    ScoredImage,
    classification_performance,
    detection_performance,
)


@dataclass(frozen=True)
class IterationMetrics:
    """The metrics, and the names of the tags they are about (as they were when the iteration trained)."""

    performance: Performance
    tag_names: dict[str, str]


@dataclass(frozen=True)
class ImageResult:
    image: ImageRecord
    predictions: list[PredictedTag]


def _threshold(value: float, name: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise bad_request("BadRequestInvalid", f"{name} must be between 0 and 1, not {value}.")
    return value


def _load_evaluation(
    account: StorageAccount, project_id: str, iteration_id: str
) -> tuple[IterationRecord, EvaluationRecord]:
    """The trained iteration (its project checked on the way) and its stored cross-validation results."""
    iteration = completed_iteration(account, project_id, iteration_id)
    if not iteration.evaluation_blob:
        raise not_trained(f"Iteration {iteration.name} has no evaluation.")
    return iteration, EvaluationRecord.loads(IterationStore(account).read_artefact(iteration.evaluation_blob))


def iteration_performance(
    account: StorageAccount, project_id: str, iteration_id: str, threshold: float, overlap_threshold: float
) -> IterationMetrics:
    _threshold(threshold, "threshold")
    _threshold(overlap_threshold, "overlapThreshold")
    _, evaluation = _load_evaluation(account, project_id, iteration_id)
    return IterationMetrics(
        _performance(evaluation, threshold, overlap_threshold),
        {label.tag_id: label.name for label in evaluation.labels},
    )


def _performance(evaluation: EvaluationRecord, threshold: float, overlap_threshold: float) -> Performance:
    """Classifiers are scored per image, detectors per box (matched at `overlap_threshold`)."""
    tag_ids = [label.tag_id for label in evaluation.labels]
    if evaluation.domain_type == DomainType.OBJECT_DETECTION:
        detected = [DetectedImage(i.fold, i.regions, i.detections) for i in evaluation.images]
        return detection_performance(detected, tag_ids, threshold, overlap_threshold)
    scored = [ScoredImage(i.fold, frozenset(i.truth), i.probabilities) for i in evaluation.images]
    return classification_performance(scored, tag_ids, threshold)


def _predictions(labels: dict[str, EvaluatedLabel], image: EvaluatedImage) -> list[PredictedTag]:
    scored = [(tag_id, probability, None) for tag_id, probability in image.probabilities.items()]
    boxes = [(box.tag_id, box.probability, box) for box in image.detections]
    return by_probability(
        [
            predicted(tag_id, labels[tag_id].name, probability, box, labels[tag_id].type)
            for tag_id, probability, box in scored + boxes
            if tag_id in labels
        ]
    )


def _selected(
    account: StorageAccount, project_id: str, iteration_id: str, tag_ids: list[str]
) -> tuple[EvaluationRecord, list[tuple[EvaluatedImage, ImageRecord]]]:
    """The evaluated images with any of `tag_ids` (all when empty) that still exist, with their records."""
    iteration, evaluation = _load_evaluation(account, project_id, iteration_id)
    wanted = set(tag_ids)
    candidates = [image for image in evaluation.images if not wanted or wanted & set(image.truth)]
    found = ImageStore(account).get_many(iteration.project_id, [image.image_id for image in candidates])
    records = {record.id: record for record in found}
    return evaluation, [(image, records[image.image_id]) for image in candidates if image.image_id in records]


def image_performances(
    account: StorageAccount,
    project_id: str,
    iteration_id: str,
    tag_ids: list[str],
    order_by: str,
    take: int,
    skip: int,
) -> list[ImageResult]:
    """One page of the training images' out-of-fold predictions, sorted by the images' creation time."""
    order = parse_choice(Order, order_by, "orderBy", code="BadRequestInvalid")
    evaluation, chosen = _selected(account, project_id, iteration_id, tag_ids)
    chosen.sort(key=lambda pair: pair[1].created, reverse=order == Order.NEWEST)
    labels = {label.tag_id: label for label in evaluation.labels}
    return [ImageResult(record, _predictions(labels, image)) for image, record in chosen[skip : skip + take]]


def image_performance_count(
    account: StorageAccount, project_id: str, iteration_id: str, tag_ids: list[str]
) -> int:
    return len(_selected(account, project_id, iteration_id, tag_ids)[1])
