"""Parity: the export, run on the iteration's own training images, must agree with the service before it is
offered for download. Pure functions over model outputs, so each rule is unit-testable.

The reference is the source model in ONNX Runtime (what the service serves). What "agree" means:
- FP32: every classifier probability within 1e-4, and so its unknown score where it has one; for a detector, every box that matters (reference score at least
  MIN_SCORE) is matched by a box of the same tag whose coordinates are within 1e-3 and whose score is within 1e-4,
  and the export has no extra box that matters, but for boxes that suppression may drop (a better box of their tag
  that both keep overlaps them by more than the model's NMS overlap): another runtime's float drift can reorder
  near-tied boxes, and so change which of them suppression keeps.
- FP16 and INT8 (reduced precision changes every figure a little): top-1 agreement on at least 99 % of the images.
  A classifier's top-1 is its most probable tag; a detector's is the reference's top box, which agrees when the
  export finds a box that matters with the same tag overlapping it by IoU >= 0.5 (images where the reference finds
  no box that matters agree when the export finds none either). The largest difference is reported alongside.
  A classifier with an unknown score also reports how many images keep their unknown verdict (the score above the
  model's threshold or not): reported, not required, since a training image scored near the threshold may flip.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pipeline.contract.detection import DETECTION
from pipeline.contract.exports import ExportPrecision
from training_job.exports.platform import Runner

PROBABILITY_TOLERANCE = 1e-4
BOX_TOLERANCE = 1e-3
SCORE_TOLERANCE = 1e-4
IOU_TOLERANCE = 1e-3
MIN_AGREEMENT = 0.99
MIN_SCORE = 0.01  # a detector's boxes below this score do not matter (the service shows none that low)
MIN_IOU = 0.5
BATCH = 8


@dataclass(frozen=True)
class ParityReport:
    """The figures stored on the export row: `images` compared, `agreement` (the share that agreed under the
    precision's rule), `max_difference` (largest probability, score or box coordinate difference on what was
    compared), whether it `passed`, and for a reduced-precision classifier with an unknown score the share of
    images whose unknown verdict it keeps (`unknown_agreement`; None otherwise)."""

    precision: str
    images: int
    agreement: float
    max_difference: float
    passed: bool
    unknown_agreement: float | None = None

    def figures(self) -> dict[str, float | int | str]:
        return {name: value for name, value in asdict(self).items() if value is not None}

    def describe(self) -> str:
        text = (
            f"{self.precision} parity on {self.images} training images: {self.agreement:.1%} agree, largest "
            f"difference {self.max_difference:.3g}"
        )
        if self.unknown_agreement is None:
            return text
        return f"{text}, unknown verdict kept on {self.unknown_agreement:.1%}"


def run_batched(runner: Runner, inputs: np.ndarray) -> list[np.ndarray]:
    """The runner's outputs for every input, a few at a time (the outputs of each batch concatenated)."""
    parts = [runner(inputs[i : i + BATCH]) for i in range(0, len(inputs), BATCH)]
    return [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]


def classifier_parity(
    reference: np.ndarray, candidate: np.ndarray, precision: ExportPrecision
) -> ParityReport:
    """`reference`, `candidate`: [N, tags] probabilities."""
    difference = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    largest = float(difference.max(initial=0.0))
    if precision == ExportPrecision.FP32:
        agreed = difference.max(axis=1, initial=0.0) <= PROBABILITY_TOLERANCE
    else:
        agreed = reference.argmax(axis=1) == candidate.argmax(axis=1)
    return _report(precision, agreed, largest)


def _report(precision: ExportPrecision, agreed: np.ndarray, largest: float) -> ParityReport:
    images = int(agreed.size)
    agreement = float(agreed.mean()) if images else 1.0
    exact = precision == ExportPrecision.FP32
    passed = bool(agreed.all()) if exact else agreement >= MIN_AGREEMENT
    return ParityReport(precision.value, images, agreement, largest, passed and np.isfinite(largest))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two [left, top, width, height] boxes."""
    width = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = width * height
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass(frozen=True, eq=False)
class _Box:
    corners: np.ndarray  # left, top, width, height
    score: float
    tag: int


def _boxes_that_matter(output: Sequence[np.ndarray], floor: float) -> list[_Box]:
    boxes, scores, tags = output
    return [_Box(boxes[i], float(scores[i]), int(tags[i])) for i in np.flatnonzero(scores >= floor)]


def _suppressible(box: _Box, kept_by_both: list[_Box], nms_iou: float) -> bool:
    """Whether suppression may drop `box`: a box of its tag that both outputs keep, scoring at least as high
    (within SCORE_TOLERANCE), overlaps it by more than the model's NMS overlap (within IOU_TOLERANCE)."""
    return any(
        other.tag == box.tag
        and other.score >= box.score - SCORE_TOLERANCE
        and iou(other.corners, box.corners) > nms_iou - IOU_TOLERANCE
        for other in kept_by_both
    )


def _image_boxes_agree(
    reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], nms_iou: float
) -> tuple[bool, float]:
    """FP32 rule on one image: each reference box that matters is matched (greedily, nearest first) by an unused
    candidate box of the same tag within the tolerances, and no candidate box that matters is left over, except
    where the two differ in a suppression decision only: a box that one output keeps and the other does not agrees
    when suppression may drop it (`_suppressible`). Which of two near-tied overlapping boxes goes first, and so
    which survives, can turn on another runtime's float drift of 1e-6, and suppression's later rounds follow it;
    a box the export moved, rescored or invented has no box that both keep to explain it."""
    # A box within SCORE_TOLERANCE of MIN_SCORE may be kept by one and dropped by the model's own score floor.
    expected = _boxes_that_matter(reference, MIN_SCORE + SCORE_TOLERANCE)
    unused = _boxes_that_matter(candidate, MIN_SCORE)
    kept_by_both: list[_Box] = []
    unmatched: list[tuple[_Box, float]] = []  # with its nearest same-tag box's coordinate difference
    largest = 0.0
    agreed = True
    for box in expected:
        same_tag = [other for other in unused if other.tag == box.tag]
        nearest = min(same_tag, key=lambda o: float(np.abs(o.corners - box.corners).max()), default=None)
        box_difference = 1.0 if nearest is None else float(np.abs(nearest.corners - box.corners).max())
        if nearest is None or box_difference > BOX_TOLERANCE:
            unmatched.append((box, box_difference))
            continue
        unused.remove(nearest)
        kept_by_both.append(box)
        score_difference = abs(nearest.score - box.score)
        largest = max(largest, box_difference, score_difference)
        agreed &= score_difference <= SCORE_TOLERANCE
    unmatched += [(box, box.score) for box in unused if box.score >= MIN_SCORE + SCORE_TOLERANCE]
    for box, difference in unmatched:
        if not _suppressible(box, kept_by_both, nms_iou):
            agreed = False
            largest = max(largest, difference)
    return agreed, largest


def _top_boxes_agree(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> tuple[bool, float]:
    """Reduced precision rule on one image: the reference's top box is found again, as a candidate box that
    matters with the same tag and IoU >= 0.5 (the best overlapping one; which of two near-equal boxes comes first
    is not what reduced precision must keep). The difference is the two boxes' score difference."""
    ref_top = int(np.argmax(reference[1]))
    if reference[1][ref_top] < MIN_SCORE:
        return not bool((candidate[1] >= MIN_SCORE).any()), float(candidate[1].max(initial=0.0))
    same = np.flatnonzero((candidate[1] >= MIN_SCORE) & (candidate[2] == reference[2][ref_top]))
    if not same.size:
        return False, float(reference[1][ref_top])
    overlaps = [iou(reference[0][ref_top], candidate[0][j]) for j in same]
    best = int(same[int(np.argmax(overlaps))])
    difference = abs(float(reference[1][ref_top]) - float(candidate[1][best]))
    return max(overlaps) >= MIN_IOU, difference


def detector_parity(
    reference: Sequence[np.ndarray],
    candidate: Sequence[np.ndarray],
    precision: ExportPrecision,
    nms_iou: float = DETECTION.nms_iou,
) -> ParityReport:
    """`reference`, `candidate`: the detector's outputs [N, K, 4] boxes, [N, K] scores, [N, K] tag indexes;
    `nms_iou`: the model's suppression overlap."""
    rule = (
        functools.partial(_image_boxes_agree, nms_iou=nms_iou)
        if precision == ExportPrecision.FP32
        else _top_boxes_agree
    )
    results = [
        rule([output[n] for output in reference], [output[n] for output in candidate])
        for n in range(len(reference[1]))
    ]
    agreed = np.array([ok for ok, _ in results], dtype=bool)
    largest = max((difference for _, difference in results), default=0.0)
    return _report(precision, agreed, largest)


def unknown_verdicts_kept(
    reference: np.ndarray, candidate: np.ndarray, thresholds: tuple[float, float]
) -> float:
    """The share of images whose unknown verdict the candidate's [N] scores keep: each output's scores against its
    own model's threshold (the source's, the export's: ONNX INT8 moves it, see onnx_format)."""
    kept = (reference > thresholds[0]) == (candidate > thresholds[1])
    return float(kept.mean()) if kept.size else 1.0


def check_parity(
    reference: Runner,
    candidate: Runner,
    inputs: np.ndarray,
    precision: ExportPrecision,
    detector: bool,
    unknown_thresholds: tuple[float, float] | None = None,
    nms_iou: float = DETECTION.nms_iou,
) -> ParityReport:
    """Run both on `inputs` (float32 [N, 3, S, S] from pipeline.vision.preprocessing) and compare;
    `unknown_thresholds`: the source's and the export's, for a classifier with an unknown score
    (platform.unknown_thresholds); `nms_iou`: the detector's."""
    expected, actual = run_batched(reference, inputs), run_batched(candidate, inputs)
    if detector:
        return detector_parity(expected, actual, precision, nms_iou)
    if precision == ExportPrecision.FP32 and len(expected) > 1:  # the unknown score too, as one more column
        if len(actual) != len(expected):
            return _report(precision, np.zeros(len(inputs), dtype=bool), float("inf"))
        return classifier_parity(np.column_stack(expected), np.column_stack(actual), precision)
    report = classifier_parity(expected[0], actual[0], precision)
    if unknown_thresholds is None or len(expected) < 2 or len(actual) < 2:
        return report
    kept = unknown_verdicts_kept(expected[1], actual[1], unknown_thresholds)
    return dataclasses.replace(report, unknown_agreement=kept)
