"""Custom Vision metrics on hand-checkable cases."""

from __future__ import annotations

import pytest

from pipeline.vision.metrics import ScoredImage, average_precision, classification_performance


def image(fold: int, truth: str, a: float) -> ScoredImage:
    return ScoredImage(fold, frozenset({truth}), {"a": a, "b": 1.0 - a})


IMAGES = [
    image(0, "a", 0.9),
    image(0, "a", 0.4),  # a missed at 0.5
    image(0, "b", 0.2),
    image(1, "a", 0.8),
    image(1, "b", 0.6),  # b mistaken for a at 0.5
    image(1, "b", 0.1),
]


def test_precision_and_recall_at_a_threshold() -> None:
    performance = classification_performance(IMAGES, ["a", "b"], threshold=0.5)
    tags = {t.tag_id: t for t in performance.per_tag}
    # a: predicted for 0.9, 0.8, 0.6 -> 2 right of 3; found 2 of its 3.
    assert tags["a"].precision.value == pytest.approx(2 / 3)
    assert tags["a"].recall.value == pytest.approx(2 / 3)
    # b (1 - a): predicted for 0.6 (a=0.4), 0.8 (a=0.2), 0.9 (a=0.1) -> 2 right of 3; found 2 of 3.
    assert tags["b"].precision.value == pytest.approx(2 / 3)
    # overall pools the counts: 4 right of 6 predictions, 4 found of 6.
    assert performance.precision.value == pytest.approx(4 / 6)
    assert performance.recall.value == pytest.approx(4 / 6)


def test_standard_deviation_is_across_folds() -> None:
    performance = classification_performance(IMAGES, ["a"], threshold=0.5)
    a = performance.per_tag[0]
    # fold 0: a predicted once, right (precision 1); fold 1: predicted twice, right once (0.5).
    assert a.precision.std_deviation == pytest.approx(0.25)
    # fold 0: found 1 of 2 (0.5); fold 1: found 1 of 1 (1.0).
    assert a.recall.std_deviation == pytest.approx(0.25)


def test_average_precision_ranks_by_probability() -> None:
    # a ranked: 0.9 (a), 0.8 (a), 0.6 (b), 0.4 (a), 0.2, 0.1 -> precisions at hits: 1, 1, 3/4.
    assert average_precision(IMAGES, "a") == pytest.approx((1 + 1 + 3 / 4) / 3)
    perfect = [image(0, "a", 0.9), image(0, "b", 0.3)]
    assert average_precision(perfect, "a") == pytest.approx(1.0)
    assert average_precision(perfect, "missing") == 0.0


def test_threshold_moves_precision_and_recall_not_ap() -> None:
    low = classification_performance(IMAGES, ["a", "b"], threshold=0.05)
    high = classification_performance(IMAGES, ["a", "b"], threshold=0.95)
    assert low.recall.value == 1.0
    assert high.recall.value < low.recall.value
    assert high.precision.value == 0.0  # nothing reaches 0.95: no predictions count as precision 0
    assert low.average_precision == high.average_precision
