"""Custom Vision's classification and object detection metrics, computed from out-of-fold predictions.

A tag is predicted for an image when its probability reaches the threshold. Per tag: precision = TP / (TP + FP),
recall = TP / (TP + FN), average precision = the mean, over the tag's images, of the precision among all images
ranked at or above that image by the tag's probability (threshold-free). Overall precision and recall pool the
counts of every tag; overall average precision is the mean over tags. Standard deviations are across the
cross-validation folds: the spread a user should expect from a different held-out set. Precision with no
predictions, and recall with nothing to find, count as 0 like Custom Vision's portal shows them.

Detection counts boxes instead of images: a detected box at or above the probability threshold is a true positive
when it overlaps a not yet matched true box of its tag by at least the overlap threshold (IoU; boxes taken by
falling probability, each matched to the free true box it overlaps most), else a false positive; true boxes left
unmatched are false negatives. A tag's average precision is the area under its interpolated precision-recall
curve over every detected box (PASCAL VOC's all-point AP, the usual mAP@0.5 at the default overlap).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.boxes import Box


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


def ranked_average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """The mean, over the relevant items, of the precision among the items ranked at or above each one by
    score (0 when none is relevant): the ranking form of the area under the precision-recall curve."""
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order].astype(bool)
    if not hits.any():
        return 0.0
    precision_at_rank = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at_rank[hits].mean())


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of a score meant to be higher for `positives`: the chance that a random positive
    scores above a random negative, ties counting half (Mann-Whitney U over both counts)."""
    if not len(negatives) or not len(positives):
        return float("nan")
    values = np.concatenate([negatives, positives])
    ranks = values.argsort(kind="stable").argsort() + 1.0
    _, tie, count = np.unique(values, return_inverse=True, return_counts=True)
    ranks = (np.bincount(tie, weights=ranks) / count)[tie]  # tied values share their mean rank
    u = ranks[len(negatives) :].sum() - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(negatives) * len(positives)))


def average_precision(images: Sequence[ScoredImage], tag_id: str) -> float:
    """Area under the tag's precision-recall curve (the ranking form, as used for Custom Vision's AP)."""
    scores = np.array([image.probabilities.get(tag_id, 0.0) for image in images])
    relevant = np.array([tag_id in image.truth for image in images], dtype=bool)
    return ranked_average_precision(scores, relevant)


def _per_fold(images: Sequence[Any], measure: Callable[[Sequence[Any]], float]) -> float:
    """Population standard deviation of `measure(fold images)` across folds (0 with a single fold)."""
    folds = sorted({image.fold for image in images})
    values = [measure([i for i in images if i.fold == fold]) for fold in folds]
    return float(np.std(values)) if len(values) > 1 else 0.0


Counts = Callable[[Sequence[Any], str], tuple[int, int, int]]  # (images, tag id) -> (TP, FP, FN)


def _precision(tag_ids: Sequence[str], counts: Counts) -> Callable[[Sequence[Any]], float]:
    def measure(images: Sequence[Any]) -> float:
        totals = [counts(images, t) for t in tag_ids]
        return _ratio(sum(c[0] for c in totals), sum(c[0] + c[1] for c in totals))

    return measure


def _recall(tag_ids: Sequence[str], counts: Counts) -> Callable[[Sequence[Any]], float]:
    def measure(images: Sequence[Any]) -> float:
        totals = [counts(images, t) for t in tag_ids]
        return _ratio(sum(c[0] for c in totals), sum(c[0] + c[2] for c in totals))

    return measure


def _metric(images: Sequence[Any], measure: Callable[[Sequence[Any]], float]) -> Metric:
    return Metric(value=measure(images), std_deviation=_per_fold(images, measure))


def _performance(
    images: Sequence[Any], tag_ids: Sequence[str], counts: Counts, ap: Callable[[str], float]
) -> Performance:
    per_tag = [
        TagMetrics(
            tag_id=tag_id,
            precision=_metric(images, _precision([tag_id], counts)),
            recall=_metric(images, _recall([tag_id], counts)),
            average_precision=ap(tag_id),
        )
        for tag_id in tag_ids
    ]
    return Performance(
        per_tag=per_tag,
        precision=_metric(images, _precision(tag_ids, counts)),
        recall=_metric(images, _recall(tag_ids, counts)),
        average_precision=float(np.mean([t.average_precision for t in per_tag])) if per_tag else 0.0,
    )


def classification_performance(
    images: Sequence[ScoredImage], tag_ids: Sequence[str], threshold: float = 0.5
) -> Performance:
    """Per-tag and overall precision, recall and average precision at `threshold`."""
    return _performance(
        images,
        tag_ids,
        lambda chosen, tag_id: _counts(chosen, tag_id, threshold),
        lambda tag_id: average_precision(images, tag_id),
    )


@dataclass(frozen=True)
class DetectedImage:
    """One image: its true boxes and the boxes the held-out model detected."""

    fold: int
    truth: Sequence[Box]
    detections: Sequence[Box]


def match_boxes(
    image: DetectedImage, tag_id: str, threshold: float, overlap: float
) -> list[tuple[Box, bool]]:
    """The image's detections of `tag_id` at or above `threshold`, by falling probability, each with whether it
    matched a true box (greedily, the free true box it overlaps most, if by at least `overlap`)."""
    truth = [box for box in image.truth if box.tag_id == tag_id]
    free = [True] * len(truth)
    matched = []
    detected = sorted(
        (box for box in image.detections if box.tag_id == tag_id and box.probability >= threshold),
        key=lambda box: -box.probability,
    )
    for box in detected:
        overlaps = [box.iou(other) if free[i] else -1.0 for i, other in enumerate(truth)]
        best = int(np.argmax(overlaps)) if overlaps else -1
        hit = best >= 0 and overlaps[best] >= overlap
        if hit:
            free[best] = False
        matched.append((box, hit))
    return matched


def _box_counts(
    images: Sequence[DetectedImage], tag_id: str, threshold: float, overlap: float
) -> tuple[int, int, int]:
    tp = fp = fn = 0
    for image in images:
        matches = match_boxes(image, tag_id, threshold, overlap)
        hits = sum(hit for _, hit in matches)
        tp += hits
        fp += len(matches) - hits
        fn += sum(box.tag_id == tag_id for box in image.truth) - hits
    return tp, fp, fn


def detection_average_precision(images: Sequence[DetectedImage], tag_id: str, overlap: float = 0.5) -> float:
    """All-point interpolated AP of one tag over every detected box (0 when the tag has no true box)."""
    positives = sum(box.tag_id == tag_id for image in images for box in image.truth)
    if not positives:
        return 0.0
    ranked = sorted(
        ((box.probability, hit) for image in images for box, hit in match_boxes(image, tag_id, 0.0, overlap)),
        key=lambda pair: -pair[0],
    )
    hits = np.array([hit for _, hit in ranked], dtype=float)
    if not len(hits):
        return 0.0
    recall = np.concatenate([[0.0], np.cumsum(hits) / positives])
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    envelope = np.concatenate([np.maximum.accumulate(precision[::-1])[::-1], [0.0]])
    return float(np.sum((recall[1:] - recall[:-1]) * envelope[:-1]))


def detection_performance(
    images: Sequence[DetectedImage], tag_ids: Sequence[str], threshold: float = 0.5, overlap: float = 0.5
) -> Performance:
    """Per-tag and overall precision and recall of boxes at `threshold`, AP at `overlap`."""
    return _performance(
        images,
        tag_ids,
        lambda chosen, tag_id: _box_counts(chosen, tag_id, threshold, overlap),
        lambda tag_id: detection_average_precision(images, tag_id, overlap),
    )
