"""The parity rules (training_job/exports/parity.py) on model outputs made here: what agrees, what does not, and a
deliberately broken runner that fails the check."""

from __future__ import annotations

import numpy as np

from pipeline.contract.exports import ExportPrecision
from training_job.exports.parity import check_parity, classifier_parity, detector_parity, iou

FP32, INT8 = ExportPrecision.FP32, ExportPrecision.INT8


def probabilities(rows: int = 20, tags: int = 3, seed: int = 0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(0, 3, (rows, tags))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def detections(images: int = 4, slots: int = 6) -> list[np.ndarray]:
    """Detector outputs: two boxes per image with falling scores, zero padding after them."""
    boxes = np.zeros((images, slots, 4), np.float32)
    scores = np.zeros((images, slots), np.float32)
    classes = np.zeros((images, slots), np.int64)
    for n in range(images):
        boxes[n, 0] = [0.1, 0.1, 0.3, 0.3]
        boxes[n, 1] = [0.5, 0.5, 0.2, 0.2]
        scores[n, :2] = [0.9, 0.6]
        classes[n, :2] = [0, 1]
    return [boxes, scores, classes]


def test_identical_classifier_outputs_agree_exactly() -> None:
    report = classifier_parity(probabilities(), probabilities(), FP32)
    assert report.passed and report.agreement == 1.0 and report.max_difference == 0.0 and report.images == 20


def test_fp32_refuses_a_probability_off_by_more_than_1e_4() -> None:
    changed = probabilities()
    changed[3, 0] += 2e-4
    report = classifier_parity(probabilities(), changed, FP32)
    assert not report.passed and report.agreement == 0.95
    assert abs(report.max_difference - 2e-4) < 1e-6
    nudged = probabilities()
    nudged[3, 0] += 5e-5
    assert classifier_parity(probabilities(), nudged, FP32).passed


def test_reduced_precision_needs_99_percent_top1_agreement_and_reports_the_largest_difference() -> None:
    reference = probabilities(rows=200)
    noisy = reference * 0.99  # every figure moves, no top-1 changes
    report = classifier_parity(reference, noisy, INT8)
    assert report.passed and report.max_difference > 0
    flipped = reference.copy()
    flipped[:3] = flipped[:3, ::-1]  # three of 200 disagree (unless the row was symmetric)
    report = classifier_parity(reference, flipped, INT8)
    assert not report.passed and report.agreement <= 0.99


def test_detector_boxes_match_whatever_order_near_ties_come_in() -> None:
    reference = detections()
    swapped = [output.copy() for output in reference]
    for output in swapped:
        output[:, [0, 1]] = output[:, [1, 0]]
    assert detector_parity(reference, swapped, FP32).passed


def test_detector_fp32_refuses_a_moved_box_a_changed_score_or_an_extra_box() -> None:
    reference = detections()
    moved = [output.copy() for output in reference]
    moved[0][2, 0, 0] += 2e-3
    assert detector_parity(reference, moved, FP32).agreement == 0.75
    rescored = [output.copy() for output in reference]
    rescored[1][1, 1] -= 3e-4
    assert not detector_parity(reference, rescored, FP32).passed
    extra = [output.copy() for output in reference]
    extra[0][0, 2] = [0.7, 0.7, 0.1, 0.1]
    extra[1][0, 2] = 0.2
    assert not detector_parity(reference, extra, FP32).passed
    faint = [output.copy() for output in reference]
    faint[1][0, 2] = 0.005  # below the scores that matter
    assert detector_parity(reference, faint, FP32).passed


def _with_box(outputs: list[np.ndarray], corners: list[float], score: float, tag: int) -> list[np.ndarray]:
    """A copy of detector outputs with one more box in every image (the third slot)."""
    changed = [output.copy() for output in outputs]
    changed[0][:, 2], changed[1][:, 2], changed[2][:, 2] = corners, score, tag
    return changed


def test_detector_fp32_allows_a_box_that_suppression_may_drop_to_differ() -> None:
    """Another runtime's float drift can reorder near-tied boxes and so change what suppression keeps; a box
    only one output keeps agrees when a better box of its tag that both keep overlaps it by more than the NMS
    overlap, and only then."""
    reference = detections()
    near_the_first = [0.12, 0.1, 0.3, 0.3]  # IoU 0.88 with the first box (tag 0, score 0.9)
    assert detector_parity(reference, _with_box(reference, near_the_first, 0.5, 0), FP32).passed
    assert detector_parity(_with_box(reference, near_the_first, 0.5, 0), reference, FP32).passed
    assert not detector_parity(
        reference, _with_box(reference, near_the_first, 0.5, 1), FP32
    ).passed  # other tag
    assert not detector_parity(
        reference, _with_box(reference, near_the_first, 0.95, 0), FP32
    ).passed  # better
    apart = [0.25, 0.1, 0.3, 0.3]  # IoU 1/3 with the first box
    assert not detector_parity(reference, _with_box(reference, apart, 0.5, 0), FP32).passed
    assert detector_parity(reference, _with_box(reference, apart, 0.5, 0), FP32, nms_iou=0.3).passed
    moved = _with_box(reference, near_the_first, 0.9, 0)
    moved[1][:, 0] = 0.0  # the first box itself moved: no box that both keep explains it
    assert not detector_parity(reference, moved, FP32).passed


def test_detector_reduced_precision_compares_the_top_box() -> None:
    reference = detections(images=100)
    shifted = [output.copy() for output in reference]
    shifted[0][:, 0] += 0.02  # still overlaps well
    shifted[1][:, 0] -= 0.05
    report = detector_parity(reference, shifted, INT8)
    assert report.passed and abs(report.max_difference - 0.05) < 1e-6
    wrong = [output.copy() for output in shifted]
    wrong[2][:2, 0] = 1  # two of 100 top boxes carry the other tag
    assert not detector_parity(reference, wrong, INT8).passed


def test_detector_reduced_precision_finds_the_top_box_whichever_comes_first() -> None:
    reference = detections(images=100)
    reference[1][:, :2] = [0.80, 0.79]  # two objects, nearly as confident
    reordered = [output.copy() for output in reference]
    reordered[1][:, :2] = [0.78, 0.81]  # the other one now leads: both are still found
    assert detector_parity(reference, reordered, INT8).passed
    lost = [output.copy() for output in reference]
    lost[1][:2, 0] = 0.001  # two images lose their top box
    assert not detector_parity(reference, lost, INT8).passed


def test_iou() -> None:
    assert iou(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])) == 1.0
    assert iou(np.array([0, 0, 1, 1]), np.array([0.5, 0, 1, 1])) == 1 / 3
    assert iou(np.array([0, 0, 0.1, 0.1]), np.array([0.5, 0.5, 0.1, 0.1])) == 0.0


def test_a_broken_runner_fails_the_check() -> None:
    weights = np.random.default_rng(2).normal(size=(12, 3)).astype(np.float32)
    inputs = np.random.default_rng(3).uniform(0, 255, (30, 3, 2, 2)).astype(np.float32)

    def model(batch: np.ndarray) -> list[np.ndarray]:
        logits = batch.reshape(len(batch), -1) @ weights / 255
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return [exp / exp.sum(axis=1, keepdims=True)]

    def broken(batch: np.ndarray) -> list[np.ndarray]:
        return [model(batch)[0][:, ::-1]]  # the tags in the wrong order

    assert check_parity(model, model, inputs, FP32, detector=False).passed
    assert check_parity(model, model, inputs, INT8, detector=False).passed
    assert not check_parity(model, broken, inputs, FP32, detector=False).passed
    assert not check_parity(model, broken, inputs, INT8, detector=False).passed


def test_fp32_compares_a_classifiers_unknown_score_too() -> None:
    inputs = np.random.default_rng(4).uniform(0, 255, (10, 3, 2, 2)).astype(np.float32)
    rows = probabilities(rows=10)

    def model(batch: np.ndarray) -> list[np.ndarray]:
        return [rows[: len(batch)], batch.mean(axis=(1, 2, 3)) / 255]

    def moved(batch: np.ndarray) -> list[np.ndarray]:
        return [model(batch)[0], model(batch)[1] + 1e-3]

    def dropped(batch: np.ndarray) -> list[np.ndarray]:
        return model(batch)[:1]

    assert check_parity(model, model, inputs, FP32, detector=False).passed
    assert not check_parity(model, moved, inputs, FP32, detector=False).passed
    assert not check_parity(model, dropped, inputs, FP32, detector=False).passed
    assert check_parity(model, moved, inputs, INT8, detector=False).passed  # reduced precision: top-1 only


def test_reduced_precision_reports_how_many_unknown_verdicts_it_keeps() -> None:
    """Reported beside the top-1 rule, not required by it: a score near the threshold may cross it."""
    inputs = np.zeros((4, 3, 2, 2), dtype=np.float32)
    rows = probabilities(rows=4)
    scores = np.array([0.1, 0.45, 0.55, 0.9], dtype=np.float32)

    def model(batch: np.ndarray) -> list[np.ndarray]:
        return [rows[: len(batch)], scores[: len(batch)]]

    def nudged(batch: np.ndarray) -> list[np.ndarray]:
        return [rows[: len(batch)], scores[: len(batch)] + 0.1]  # 0.45 crosses 0.5

    report = check_parity(model, nudged, inputs, INT8, detector=False, unknown_thresholds=(0.5, 0.5))
    assert report.passed and report.unknown_agreement == 0.75
    own_threshold = check_parity(model, nudged, inputs, INT8, detector=False, unknown_thresholds=(0.5, 0.6))
    assert own_threshold.unknown_agreement == 1.0  # each scored against its own model's threshold
    assert "unknown verdict kept on 75.0%" in report.describe()
    assert report.figures()["unknown_agreement"] == 0.75
    without_threshold = check_parity(model, nudged, inputs, INT8, detector=False)
    assert (
        without_threshold.unknown_agreement is None and "unknown_agreement" not in without_threshold.figures()
    )
    assert (
        check_parity(
            model, nudged, inputs, FP32, detector=False, unknown_thresholds=(0.5, 0.5)
        ).unknown_agreement
        is None
    )
