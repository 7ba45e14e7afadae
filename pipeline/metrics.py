"""Custom Vision's classification metrics, computed from out-of-fold predictions.

A tag is predicted for an image when its probability reaches the threshold. Per tag: precision = TP / (TP + FP),
recall = TP / (TP + FN), average precision = the mean, over the tag's images, of the precision among all images
ranked at or above that image by the tag's probability (threshold-free). Overall precision and recall pool the
counts of every tag; overall average precision is the mean over tags. Standard deviations are across the
cross-validation folds: the spread a user should expect from a different held-out set. Precision with no
predictions, and recall with nothing to find, count as 0 like Custom Vision's portal shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScoredImage:
    """One image: the tag ids it truly has and the probability the held-out model gave each tag."""

    fold: int
    truth: frozenset[str]
    probabilities: dict[str, float]


@dataclass(frozen=True)
class Metric:
    value: float
    std_deviation: float


@dataclass(frozen=True)
class TagMetrics:
    tag_id: str
    precision: Metric
    recall: Metric
    average_precision: float


@dataclass(frozen=True)
class Performance:
    per_tag: list[TagMetrics]
    precision: Metric
    recall: Metric
    average_precision: float


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _counts(images: Sequence[ScoredImage], tag_id: str, threshold: float) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one tag."""
    tp = fp = fn = 0
    for image in images:
        predicted = image.probabilities.get(tag_id, 0.0) >= threshold
        actual = tag_id in image.truth
        tp += predicted and actual
        fp += predicted and not actual
        fn += actual and not predicted
    return tp, fp, fn


def average_precision(images: Sequence[ScoredImage], tag_id: str) -> float:
    """Area under the tag's precision-recall curve (the ranking form, as used for Custom Vision's AP)."""
    scores = np.array([image.probabilities.get(tag_id, 0.0) for image in images])
    relevant = np.array([tag_id in image.truth for image in images])
    if not relevant.any():
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order]
    precision_at_rank = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at_rank[hits].mean())


def _per_fold(images: Sequence[ScoredImage], measure) -> float:
    """Population standard deviation of `measure(fold images)` across folds (0 with a single fold)."""
    folds = sorted({image.fold for image in images})
    values = [measure([i for i in images if i.fold == fold]) for fold in folds]
    return float(np.std(values)) if len(values) > 1 else 0.0


def _precision(tag_ids: Sequence[str], threshold: float):
    def measure(images: Sequence[ScoredImage]) -> float:
        counts = [_counts(images, t, threshold) for t in tag_ids]
        return _ratio(sum(c[0] for c in counts), sum(c[0] + c[1] for c in counts))

    return measure


def _recall(tag_ids: Sequence[str], threshold: float):
    def measure(images: Sequence[ScoredImage]) -> float:
        counts = [_counts(images, t, threshold) for t in tag_ids]
        return _ratio(sum(c[0] for c in counts), sum(c[0] + c[2] for c in counts))

    return measure


def _metric(images: Sequence[ScoredImage], measure) -> Metric:
    return Metric(value=measure(images), std_deviation=_per_fold(images, measure))


def classification_performance(
    images: Sequence[ScoredImage], tag_ids: Sequence[str], threshold: float = 0.5
) -> Performance:
    """Per-tag and overall precision, recall and average precision at `threshold`."""
    per_tag = [
        TagMetrics(
            tag_id=tag_id,
            precision=_metric(images, _precision([tag_id], threshold)),
            recall=_metric(images, _recall([tag_id], threshold)),
            average_precision=average_precision(images, tag_id),
        )
        for tag_id in tag_ids
    ]
    return Performance(
        per_tag=per_tag,
        precision=_metric(images, _precision(tag_ids, threshold)),
        recall=_metric(images, _recall(tag_ids, threshold)),
        average_precision=float(np.mean([t.average_precision for t in per_tag])) if per_tag else 0.0,
    )
