"""Hard photos, few shots: Regular against Advanced training on small, blurry images with 5 and 10 per class.

    .venv/bin/python -m bench.fewshot [--budget 60] [--side 64] [--shots 5 10] [--seeds 3] [--full-size]

hymenoptera's train/ and val/ photos are shrunk with Pillow to `--side` pixels on their shortest side, saved as
JPEG (quality 90) and taken through the same decoding and stored copy as uploads (which upscales them back to the
service's minimum side), so training and val see what the service would. For each seed, `--shots` images per
class are drawn from train/; Regular and Advanced (with `--budget` seconds, the same for every training) are
trained on them and scored on the whole shrunk val/ (153 images) with the exported ONNX model as serving runs
it. The table gives each mean over the seeds: val accuracy, val log loss, the train call's seconds, and on how
many seeds Advanced kept each of its recipes (the semantic probe or the fine-tuned model; either is kept only where
it wins on the cross-validated folds, else Advanced keeps Regular's).
`--full-size` instead runs both on the full-size train/ (244 images) against val/, as bench/classifier_accuracy
does, to check that what helps small photos does not hurt full-size ones. The datasets are ../shared/datasets (or
$SEER_DATASETS); the benchmark is skipped when they are absent.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.classifier_accuracy import (
    HYMENOPTERA,
    load_folder,
    onnx_probabilities,
    stored_upload,
    timed_training,
)
from bench.common import DATASETS, machine
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.vocabulary import TrainingType
from training_job.samples import Sample

TAGS = ["ants", "bees"]


@dataclass(frozen=True)
class Outcome:
    accuracy: float
    log_loss: float
    seconds: float
    kept: str


def shrunk_upload(side: int, path: Path) -> Image.Image | None:
    """The stored image of `path` uploaded after shrinking it to `side` pixels on its shortest side."""
    with Image.open(path) as original:
        image = original.convert("RGB")
    scale = side / min(image.size)
    if scale < 1:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return stored_upload(buffer.getvalue())


def draw(samples: Sequence[Sample], shots: int, seed: int) -> list[Sample]:
    """`shots` samples of each tag, drawn by `seed`."""
    rng = random.Random(seed)
    return [
        sample
        for index in range(len(TAGS))
        for sample in rng.sample([s for s in samples if s.labels == {index}], shots)
    ]


def evaluate(
    train: list[Sample], labels: list[ModelLabel], val: list[Sample], training_type: str, budget: float
) -> Outcome:
    result, seconds = timed_training(train, labels, training_type=training_type, budget_seconds=budget)
    probabilities = onnx_probabilities(result, [s.image for s in val])
    truth = np.array([next(iter(s.labels)) for s in val])
    accuracy = float(np.mean(probabilities.argmax(axis=1) == truth))
    log_loss = float(-np.log(np.clip(probabilities[np.arange(len(val)), truth], 1e-7, 1)).mean())
    return Outcome(accuracy, log_loss, seconds, result.recipe)


def mean_row(case: str, outcomes: dict[str, list[Outcome]]) -> str:
    """One table row: per training type, the means over seeds, and which recipe Advanced kept how often."""
    cells = [case]
    for training_type in (TrainingType.REGULAR, TrainingType.ADVANCED):
        runs = outcomes[training_type]
        cells += [
            f"{np.mean([o.accuracy for o in runs]):.1%}",
            f"{np.mean([o.log_loss for o in runs]):.3f}",
            f"{np.mean([o.seconds for o in runs]):.1f}",
        ]
    kept = Counter(o.kept for o in outcomes[TrainingType.ADVANCED])
    return (
        "| " + " | ".join([*cells, ", ".join(f"{recipe} {n}" for recipe, n in sorted(kept.items()))]) + " |"
    )


def fewshot(side: int, shots: Sequence[int], seeds: int, budget: float) -> list[str]:
    train, labels, _ = load_folder(HYMENOPTERA / "train", TAGS, lambda path: shrunk_upload(side, path))
    val, _, _ = load_folder(HYMENOPTERA / "val", TAGS, lambda path: shrunk_upload(side, path))
    print(f"  {side} px: train {len(train)} images, val {len(val)}; stored size e.g. {train[0].image.size}")
    rows = []
    for count in shots:
        outcomes: dict[str, list[Outcome]] = {t: [] for t in (TrainingType.REGULAR, TrainingType.ADVANCED)}
        for seed in range(seeds):
            drawn = draw(train, count, seed)
            for training_type, runs in outcomes.items():
                runs.append(evaluate(drawn, labels, val, training_type, budget))
                print(f"  {count} shots, seed {seed}, {training_type}: {runs[-1]}", flush=True)
        rows.append(mean_row(f"{side} px, {count} per class ({seeds} seeds)", outcomes))
    return rows


def full_size(budget: float) -> list[str]:
    train, labels, _ = load_folder(HYMENOPTERA / "train", TAGS)
    val, _, _ = load_folder(HYMENOPTERA / "val", TAGS)
    outcomes = {
        t: [evaluate(train, labels, val, t, budget)] for t in (TrainingType.REGULAR, TrainingType.ADVANCED)
    }
    for training_type, [outcome] in outcomes.items():
        print(f"  full size, {training_type}: {outcome}", flush=True)
    return [mean_row(f"full size, {len(train)} images", outcomes)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per training (Advanced's budget)")
    parser.add_argument("--side", type=int, default=64, help="shortest side the photos are shrunk to")
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10], help="images per class")
    parser.add_argument("--seeds", type=int, default=3, help="draws of the training images, averaged")
    parser.add_argument("--full-size", action="store_true", help="full-size train/ and val/ instead")
    args = parser.parse_args()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    if not HYMENOPTERA.is_dir():
        print(f"SKIPPED: {HYMENOPTERA} not found (set SEER_DATASETS; datasets live under {DATASETS})")
        return
    started = time.perf_counter()
    rows = (
        full_size(args.budget) if args.full_size else fewshot(args.side, args.shots, args.seeds, args.budget)
    )
    print(
        f"load average after: {os.getloadavg()[0]:.2f}; budget {args.budget:.0f} s per training; "
        f"wall time {time.perf_counter() - started:.0f} s\n"
    )
    print(
        "| case | Regular val acc | log loss | train s | Advanced val acc | log loss | train s | Advanced kept |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
