"""Temperature scaling, expected calibration error, the unknown score and its threshold, and AUROC: the pure
functions behind a classifier's calibrated probabilities and its "none of the tags"."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.vision.metrics import auroc
from training_job.calibration import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    logits_of,
    scaled,
)
from training_job.unknown import bank_rows, fit_unknown, knn_scores, normalised, out_of_fold_scores


def overconfident(n: int = 2000, labels: int = 3, temperature: float = 2.5, seed: int = 0):
    """Labels drawn from softmax(z), reported as softmax(z * temperature): a model `temperature` times too sure."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, labels))
    p = scaled(z, 1.0, multilabel=False)
    truth = np.eye(labels)[[rng.choice(labels, p=row) for row in p]]
    return z * temperature, truth


def test_temperature_recovers_the_overconfidence_and_lowers_ece() -> None:
    logits, truth = overconfident()
    temperature = fit_temperature(logits, truth, multilabel=False)
    assert temperature == pytest.approx(2.5, rel=0.1)
    calibration = calibrate(scaled(logits, 1.0, False), truth, multilabel=False)
    assert calibration.temperature == pytest.approx(temperature, rel=1e-3)
    assert calibration.ece_after < calibration.ece_before / 3
    # one temperature for every tag: every image's ranking of its tags, so top-1, stays as it was
    assert (calibration.oof.argmax(axis=1) == logits.argmax(axis=1)).all()


def test_multilabel_temperature_per_tag_sigmoid() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (3000, 4))
    truth = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(np.float32)
    overconfident = scaled(z * 3, 1.0, multilabel=True)
    moderate = np.abs(z * 3) < 12  # beyond, probabilities are clipped 1e-7 from 0 and 1
    np.testing.assert_allclose(logits_of(overconfident, True)[moderate], (z * 3)[moderate], atol=1e-3)
    calibration = calibrate(overconfident, truth, multilabel=True)
    assert calibration.temperature == pytest.approx(3, rel=0.1)
    assert calibration.ece_after < calibration.ece_before
    order = np.argsort(overconfident, axis=1)  # each image's tags keep their order (ties may stay ties)
    assert (np.diff(np.take_along_axis(calibration.oof, order, axis=1), axis=1) >= 0).all()


def test_softmax_log_probabilities_scale_like_logits() -> None:
    logits, _ = overconfident(n=50)
    probabilities = scaled(logits, 1.0, False)
    np.testing.assert_allclose(
        scaled(logits_of(probabilities, False), 1.7, False), scaled(logits, 1.7, False), atol=1e-6
    )


def test_expected_calibration_error() -> None:
    # multiclass: confident 0.9 and right 9 times in 10 is calibrated; always right at 0.6 is 0.4 off
    truth = np.eye(2)[[0] * 9 + [1]]
    assert expected_calibration_error(np.tile([0.9, 0.1], (10, 1)), truth, False) == pytest.approx(0.0)
    assert expected_calibration_error(
        np.tile([0.6, 0.4], (10, 1)), np.eye(2)[[0] * 10], False
    ) == pytest.approx(0.4)
    # multilabel: each tag decision counts; p = 0.2 for an absent tag is 0.8 confident and right
    assert expected_calibration_error(np.array([[0.2, 0.9]]), np.array([[0, 1]]), True) == pytest.approx(0.15)
    assert expected_calibration_error(np.zeros((0, 2)), np.zeros((0, 2)), False) == 0.0


def test_knn_score_is_one_minus_the_kth_cosine_similarity() -> None:
    bank = normalised(np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32))
    query = np.array([[2, 0], [0, -3]], dtype=np.float32)  # length does not matter, direction does
    np.testing.assert_allclose(knn_scores(query, bank, 1), [0, 1], atol=1e-6)
    np.testing.assert_allclose(knn_scores(query, bank, 2), [1 - np.sqrt(0.5), 1 + np.sqrt(0.5)], atol=1e-6)
    np.testing.assert_allclose(knn_scores(query, bank, 9), knn_scores(query, bank, 3))  # k capped at the bank


def test_out_of_fold_scores_never_use_the_image_itself() -> None:
    features = np.random.default_rng(2).normal(size=(20, 8)).astype(np.float32)
    bank = normalised(features)
    folds = np.arange(20) % 4
    scores = out_of_fold_scores(bank, folds, k=1)
    assert (scores > 1e-3).all()  # with itself in the bank each score would be 0
    held = folds == 0
    np.testing.assert_allclose(scores[held], knn_scores(features[held], bank[~held], 1), atol=1e-6)


def test_threshold_leaves_about_five_percent_of_known_images_above() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(2, 32)) * 4
    features = np.concatenate([c + rng.normal(size=(200, 32)) for c in centres]).astype(np.float32)
    unknown = fit_unknown(features, np.arange(400) % 5)
    assert unknown.known_above == pytest.approx(0.05, abs=0.01)
    assert unknown.k == 5 and unknown.bank.shape == (400, 32)
    new_known = (centres[0] + rng.normal(size=(100, 32))).astype(np.float32)
    far = rng.normal(size=(100, 32)).astype(np.float32) * 4
    assert (unknown.scores(new_known) > unknown.threshold).mean() < 0.15
    assert (unknown.scores(far) > unknown.threshold).mean() > 0.9


def test_bank_keeps_every_image_up_to_the_cap_then_spreads_evenly() -> None:
    assert list(bank_rows(5, cap=8)) == [0, 1, 2, 3, 4]
    rows = bank_rows(10_000, cap=100)
    assert len(rows) == 100 and rows[0] == 0 and rows[-1] == 9_999


def test_auroc() -> None:
    assert auroc(np.array([1.0, 2, 3]), np.array([4.0, 5])) == 1.0
    assert auroc(np.array([3.0, 4]), np.array([1.0, 2])) == 0.0
    assert auroc(np.array([1.0, 2]), np.array([1.0, 2])) == 0.5  # ties count half
    assert auroc(np.array([1.0, 2, 3]), np.array([2.0, 5])) == pytest.approx(0.75)
    assert np.isnan(auroc(np.array([]), np.array([1.0])))
