"""Incremental training (issue 14): retraining from a base iteration against retraining from scratch, on real
photos, calling the training core directly.

    .venv/bin/python -m bench.incremental [--advanced-budget SECONDS] [--skip-advanced] [--skip-detector]

hymenoptera train/ (244 images, as bench/classifier_accuracy.py loads them) less 10 images per class trains the
base; the 20 images come back and the full set trains twice: warm (from the base's state: its features of the
224 images it had, its heads, for Advanced its fine-tuned blocks) and from scratch. Each row gives the train
call's seconds, its features phase, what it reused, the kept mode's cross-validated mAP and log loss, and
accuracy on val/ (153 images, never trained on) with the exported ONNX model: a warm-started fine-tuning's
out-of-fold score flatters it (its start saw the images the folds hold out), val does not. Regular and Advanced,
efficientnet-lite2 (the General domain).

raccoon (bench/detect.py's split: 160 training images, 40 held out) less 20 trains a compact (efficientnet-lite0)
detector; all 160 then train warm (heads from the base's, half the epochs) and from scratch; mAP at 0.5 overlap
out of fold and on the 40 held-out images (the torch model, as exported). Skipped when the datasets are absent.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.classifier_accuracy import BACKBONE, hymenoptera_splits, onnx_probabilities, stored_image
from bench.common import DATASETS, machine
from bench.detect import boxes, split
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.boxes import Box
from pipeline.vision.metrics import DetectedImage, detection_performance
from pipeline.vision.preprocessing import preprocess_full
from training_job.detect import DetectionResult, train_detector
from training_job.detection_cache import DetectionSample
from training_job.detection_heads import detected_boxes
from training_job.samples import Sample
from training_job.train import TrainingResult, train_classifier
from training_job.warm_start import ClassifierState, DetectorState

HELD_BACK = 10  # images per class added after the base was trained
RACCOON = DATASETS / "raccoon"
DETECTOR_HELD_BACK = 20


@dataclass(frozen=True)
class Row:
    case: str
    images: int
    seconds: float
    features_seconds: float
    reused: str
    mode: str
    cv_map: float
    cv_log_loss: float
    held_out: str  # classifiers: val accuracy; detectors: held-out mAP


def held_back(samples: list[Sample], classes: int) -> tuple[list[Sample], list[Sample]]:
    """The base's samples and the HELD_BACK per class (the last of each class, in file order) left out of it."""
    late = {id(s) for label in range(classes) for s in [s for s in samples if label in s.labels][-HELD_BACK:]}
    return [s for s in samples if id(s) not in late], [s for s in samples if id(s) in late]


def run(
    case: str,
    samples: list[Sample],
    labels: list[ModelLabel],
    val: list[Sample],
    training_type: str,
    budget: float | None,
    base: ClassifierState | None = None,
) -> tuple[Row, TrainingResult]:
    started = time.perf_counter()
    result = train_classifier(
        samples,
        labels,
        multilabel=False,
        backbone=BACKBONE,
        training_type=training_type,
        budget_seconds=budget,
        base=base,
    )
    seconds = time.perf_counter() - started
    predicted = onnx_probabilities(result, [s.image for s in val]).argmax(axis=1)
    truth = np.array([next(iter(s.labels)) for s in val])
    warm = result.warm_start
    reused = (
        f"{warm.reused_features} features, head" + (", fine-tuned blocks" if warm.backbone else "")
        if warm
        else "-"
    )
    print(f"  {case}: {result.timings}; scores {result.scores}")
    row = Row(
        case,
        len(samples),
        seconds,
        result.timings.get("features", 0.0),
        reused,
        result.mode,
        result.cv_score,
        result.cv_log_loss,
        f"val accuracy {np.mean(predicted == truth):.1%}",
    )
    return row, result


def compare(
    training_type: str, labels: list[ModelLabel], train: list[Sample], val: list[Sample], budget: float | None
) -> list[Row]:
    """Base on train less the held-back images; then all of train warm from the base, and from scratch."""
    first, _ = held_back(train, len(labels))
    base_row, base = run(f"{training_type} base", first, labels, val, training_type, budget)
    warm_row, _ = run(f"{training_type} warm", train, labels, val, training_type, budget, base.state)
    scratch_row, _ = run(f"{training_type} scratch", train, labels, val, training_type, budget)
    return [base_row, warm_row, scratch_row]


def detector_samples(files: list[Path]) -> list[DetectionSample]:
    """Stored copies (as uploads make them) and their raccoon boxes."""
    samples = []
    for file in files:
        image = stored_image(file)
        if image is not None:
            regions = tuple(Box("raccoon", b.left, b.top, b.width, b.height) for b in boxes(RACCOON, file))
            samples.append(DetectionSample(file.name, image, regions))
    return samples


def run_detector(
    case: str,
    samples: list[DetectionSample],
    held_out: list[DetectionSample],
    base: DetectorState | None = None,
) -> tuple[Row, DetectionResult]:
    labels = [ModelLabel("raccoon", "raccoon")]
    started = time.perf_counter()
    result = train_detector(samples, labels, backbone="efficientnet-lite0", base=base)
    seconds = time.perf_counter() - started
    images = []
    for sample in held_out:
        pixels = torch.from_numpy(preprocess_full(sample.image, result.image_size)[None])
        with torch.inference_mode():
            found = [t.numpy()[0] for t in result.model(pixels)]
        images.append(DetectedImage(0, list(sample.regions), detected_boxes(labels, *found)))
    held_map = detection_performance(images, ["raccoon"], threshold=0.5, overlap=0.5).average_precision
    print(f"  {case}: {result.timings}")
    reused = "head" if result.warm_start and result.warm_start.head else "-"
    row = Row(
        case,
        len(samples),
        seconds,
        result.timings.get("features", 0.0),
        reused,
        "-",
        result.cv_score,
        float("nan"),
        f"held-out mAP {held_map:.3f}",
    )
    return row, result


def compare_detectors() -> list[Row]:
    train_files, held_files = split(RACCOON)
    train, held_out = detector_samples(train_files), detector_samples(held_files)
    base_row, base = run_detector("detector base", train[:-DETECTOR_HELD_BACK], held_out)
    warm_row, _ = run_detector("detector warm", train, held_out, base.state)
    scratch_row, _ = run_detector("detector scratch", train, held_out)
    return [base_row, warm_row, scratch_row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--advanced-budget", type=float, default=None, help="seconds per Advanced run")
    parser.add_argument("--skip-advanced", action="store_true")
    parser.add_argument("--skip-detector", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    splits = hymenoptera_splits()
    if splits is None:
        return
    started = time.perf_counter()
    train, labels, val = splits
    print(f"  {len(train)} training images ({HELD_BACK} per class held back from the base), {len(val)} val")
    rows = compare("Regular", labels, train, val, None)
    if not args.skip_advanced:
        rows += compare("Advanced", labels, train, val, args.advanced_budget)
    if not args.skip_detector and RACCOON.is_dir():
        rows += compare_detectors()
    print(f"load average after: {os.getloadavg()[0]:.2f}; backbone {BACKBONE}\n")
    print(
        "| case | images | train call (s) | features (s) | reused | kept | CV mAP | CV log loss | held out |"
    )
    print("|---|---:|---:|---:|---|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.case} | {row.images} | {row.seconds:.1f} | {row.features_seconds:.1f} | {row.reused} "
            f"| {row.mode} | {row.cv_map:.4f} | {row.cv_log_loss:.4f} | {row.held_out} |"
        )
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
