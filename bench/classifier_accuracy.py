"""Classifier training speed and accuracy on real photos, calling the training core directly.

    .venv/bin/python -m bench.classifier_accuracy [--advanced-budget 60] [--skip-advanced]

  (a) Custom Vision quickstart: 10 Hemlock + 10 Japanese Cherry, efficientnet-lite2, Regular; the train call's
      seconds and the exported model's prediction for Test/test_image.jpg. That picture is a hemlock twig, and
      Custom Vision's own quickstart prints "Hemlock: 93.53%, Japanese Cherry: 0.01%" for it.
  (b) hymenoptera: train/ (244 images: train/ants/imageNotFound.gif, a valid GIF of an "image not found"
      placeholder rather than an ant, is left out),
      efficientnet-lite2, Regular; the train call's seconds, the process's peak RSS, and accuracy on val/ (153)
      with the exported ONNX model in ONNX Runtime and pipeline.vision.preprocessing.preprocess, as serving runs it.
  (c) quickstart again, Advanced with a small budget: which mode won on the folds.
Images go through the same decoding and stored copy (resized JPEG) that uploads get, outside the clock. The
datasets are ../shared/datasets (or $SEER_DATASETS); the benchmark is skipped when they are absent.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from bench.common import DATASETS, machine
from pipeline.contract.onnx_model import CLASSIFIER_OUTPUT, INPUT, ModelLabel
from pipeline.core.settings import get_settings
from pipeline.vision.imaging import ImageRejected, decode_image, stored_copies
from pipeline.vision.preprocessing import preprocess_batch
from training_job.samples import Sample
from training_job.train import TrainingResult, train_classifier

QUICKSTART = DATASETS / "customvision-samples" / "classification"
HYMENOPTERA = DATASETS / "hymenoptera"
PLACEHOLDERS = {"imageNotFound.gif"}
BACKBONE = "efficientnet-lite2"


@dataclass(frozen=True)
class Row:
    case: str
    images: int
    seconds: float
    mode: str
    cv_map: float
    outcome: str


def stored_upload(data: bytes) -> Image.Image | None:
    """The image training would read for an upload of `data` (None if the upload would be refused)."""
    settings = get_settings()
    try:
        decoded = decode_image(data, settings, max_bytes=settings.max_training_image_bytes)
    except ImageRejected:
        return None
    resized, _ = stored_copies(decoded.image, settings)
    return Image.open(io.BytesIO(resized)).convert("RGB")


def stored_image(path: Path) -> Image.Image | None:
    """The image training would read for this file uploaded as it is."""
    return stored_upload(path.read_bytes())


def load_folder(
    root: Path, tags: list[str], load: Callable[[Path], Image.Image | None] = stored_image
) -> tuple[list[Sample], list[ModelLabel], list[Path]]:
    """Each tag's folder under `root` as samples (each file read by `load`), and the files left out."""
    labels = [ModelLabel(tag_id=f"tag-{tag}", name=tag) for tag in tags]
    samples, left_out = [], []
    for index, tag in enumerate(tags):
        for path in sorted((root / tag).iterdir()):
            image = None if path.name in PLACEHOLDERS else load(path)
            if image is None:
                left_out.append(path)
            else:
                samples.append(Sample(image_id=f"{tag}/{path.name}", image=image, labels={index}))
    return samples, labels, left_out


def hymenoptera_splits() -> tuple[list[Sample], list[ModelLabel], list[Sample]] | None:
    """hymenoptera's train/ (its placeholder left out), its labels and val/, as uploads store them; None, after
    saying so, when the dataset is absent."""
    if not HYMENOPTERA.is_dir():
        print(f"SKIPPED: {HYMENOPTERA} not found (set SEER_DATASETS)")
        return None
    train, labels, _ = load_folder(HYMENOPTERA / "train", ["ants", "bees"])
    val, _, _ = load_folder(HYMENOPTERA / "val", ["ants", "bees"])
    return train, labels, val


def timed_training(
    samples: list[Sample], labels: list[ModelLabel], **options: object
) -> tuple[TrainingResult, float]:
    started = time.perf_counter()
    result = train_classifier(samples, labels, multilabel=False, backbone=BACKBONE, **options)
    return result, time.perf_counter() - started


def onnx_probabilities(result: TrainingResult, images: list[Image.Image]) -> np.ndarray:
    """What serving computes: the exported model in ONNX Runtime on `preprocess`ed images."""
    session = ort.InferenceSession(result.onnx_model, providers=["CPUExecutionProvider"])
    outputs = [
        session.run([CLASSIFIER_OUTPUT], {INPUT: preprocess_batch(images[i : i + 16], result.image_size)})[0]
        for i in range(0, len(images), 16)
    ]
    return np.concatenate(outputs)


def val_accuracy(result: TrainingResult, val: list[Sample]) -> float:
    """The share of single-tag `val` samples whose most probable tag, by the exported model, is theirs."""
    predicted = onnx_probabilities(result, [s.image for s in val]).argmax(axis=1)
    return float(np.mean(predicted == np.array([next(iter(s.labels)) for s in val])))


def quickstart(training_type: str, budget: float | None) -> Row:
    samples, labels, _ = load_folder(QUICKSTART, ["Hemlock", "Japanese_Cherry"])
    result, seconds = timed_training(samples, labels, training_type=training_type, budget_seconds=budget)
    test = stored_image(QUICKSTART / "Test" / "test_image.jpg")
    assert test is not None
    [probabilities] = onnx_probabilities(result, [test])
    shown = ", ".join(f"{label.name} {p:.2%}" for label, p in zip(labels, probabilities, strict=True))
    print(f"  {training_type}: {result.timings}; scores {result.scores}")
    case = f"quickstart {training_type}" + (f" (budget {budget:.0f} s)" if budget else "")
    return Row(case, len(samples), seconds, result.mode, result.cv_score, f"test_image.jpg: {shown}")


def hymenoptera() -> Row:
    samples, labels, left_out = load_folder(HYMENOPTERA / "train", ["ants", "bees"])
    print(f"  hymenoptera train: {len(samples)} images, left out {[p.name for p in left_out]}")
    result, seconds = timed_training(samples, labels, training_type="Regular", budget_seconds=None)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    val, _, _ = load_folder(HYMENOPTERA / "val", ["ants", "bees"])
    accuracy = val_accuracy(result, val)
    print(f"  Regular: {result.timings}; scores {result.scores}")
    outcome = f"val accuracy {accuracy:.1%} ({len(val)} images); peak RSS {peak_mib:.0f} MiB"
    return Row("hymenoptera Regular", len(samples), seconds, result.mode, result.cv_score, outcome)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--advanced-budget", type=float, default=60.0, help="seconds for case (c)")
    parser.add_argument("--skip-advanced", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    if not QUICKSTART.is_dir() or not HYMENOPTERA.is_dir():
        print(f"SKIPPED: datasets not found under {DATASETS} (set SEER_DATASETS)")
        return
    rows = [quickstart("Regular", None), hymenoptera()]
    if not args.skip_advanced:
        rows.append(quickstart("Advanced", args.advanced_budget))
    print(f"load average after: {os.getloadavg()[0]:.2f}; backbone {BACKBONE}\n")
    print("| case | images | train call (s) | kept | CV mAP | result |")
    print("|---|---:|---:|---|---:|---|")
    for row in rows:
        print(
            f"| {row.case} | {row.images} | {row.seconds:.1f} | {row.mode} | {row.cv_map:.3f} | {row.outcome} |"
        )


if __name__ == "__main__":
    main()
