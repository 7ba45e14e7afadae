"""Active learning on real photos (issue 14): does labelling Seer's choice first beat labelling at random?

    .venv/bin/python -m bench.active_learning [--seeds 3] [--rounds 4] [--per-round 20]

Start: 10 labelled images per class of hymenoptera/train, drawn by the seed; the rest of train/ is the untagged
pool. Each round trains a Regular classifier with the training core (as the training job does), then labels 20 more
images (10 per class's worth), three ways: Seer's "label these first" order (pipeline.vision.active_learning over
the trained model's features, exactly as QuerySuggestedImages' labelFirst order ranks stored suggestions), the
classic alternative it was measured against (most uncertain first by the margin between the two tags, with the
same diversity), and 20 drawn at random from the pool. Accuracy on hymenoptera/val (153) after each round, mean
of the seeds. Target: Seer's choice above random on average in every round after the first. The datasets are
../shared/datasets (or $SEER_DATASETS); the benchmark is skipped when they are absent.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
import onnxruntime as ort

from bench.classifier_accuracy import hymenoptera_splits, onnx_probabilities
from bench.common import machine
from pipeline.contract.onnx_model import CLASSIFIER_OUTPUT, FEATURES, INPUT, ModelLabel
from pipeline.vision.active_learning import label_first_order, normalised
from pipeline.vision.embedding import exposing_features
from pipeline.vision.preprocessing import preprocess_batch
from training_job.samples import Sample
from training_job.train import TrainingResult, train_classifier

START_PER_CLASS = 10
BACKBONE = "efficientnet-lite2"  # the General domain's (pipeline.core.domains)
Chooser = Callable[[TrainingResult, list[Sample], int, np.random.Generator], list[int]]


def probabilities_and_features(
    result: TrainingResult, pool: Sequence[Sample]
) -> tuple[np.ndarray, np.ndarray]:
    """What SuggestTagsAndRegions computes and stores for each untagged image."""
    session = ort.InferenceSession(exposing_features(result.onnx_model), providers=["CPUExecutionProvider"])
    parts = [
        session.run(
            [CLASSIFIER_OUTPUT, FEATURES],
            {INPUT: preprocess_batch([s.image for s in pool[i : i + 16]], result.image_size)},
        )
        for i in range(0, len(pool), 16)
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def seer_choice(result: TrainingResult, pool: list[Sample], count: int, _: np.random.Generator) -> list[int]:
    probabilities, features = probabilities_and_features(result, pool)
    return label_first_order(normalised(features), 1 - probabilities.max(axis=1), count)


def uncertain_choice(
    result: TrainingResult, pool: list[Sample], count: int, _: np.random.Generator
) -> list[int]:
    """Smallest margin between the two most probable tags first, each next one also far (cosine) from those
    chosen before it."""
    probabilities, features = probabilities_and_features(result, pool)
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    uncertainty = 1.0 - (top_two[:, 1] - top_two[:, 0])
    vectors = normalised(features)
    distance, order = np.ones(len(pool)), []
    for _ in range(min(count, len(pool))):
        scores = uncertainty * distance
        scores[order] = -np.inf
        order.append(int(np.argmax(scores)))
        distance = np.minimum(distance, np.clip(1.0 - vectors @ vectors[order[-1]], 0.0, 2.0))
    return order


def random_choice(_: TrainingResult, pool: list[Sample], count: int, rng: np.random.Generator) -> list[int]:
    return [int(i) for i in rng.choice(len(pool), size=min(count, len(pool)), replace=False)]


def run_strategy(
    choose: Chooser,
    labelled: list[Sample],
    pool: list[Sample],
    val: list[Sample],
    labels: list[ModelLabel],
    args: argparse.Namespace,
    seed: int,
) -> list[float]:
    """Val accuracy after training on the start set and after each round of `choose`."""
    rng = np.random.default_rng(seed + 1000)
    labelled, pool = list(labelled), list(pool)
    truth = np.array([next(iter(s.labels)) for s in val])
    accuracies = []
    for round_number in range(args.rounds + 1):
        result = train_classifier(
            labelled, labels, multilabel=False, backbone=args.backbone, training_type="Regular"
        )
        predicted = onnx_probabilities(result, [s.image for s in val]).argmax(axis=1)
        accuracies.append(float(np.mean(predicted == truth)))
        if round_number == args.rounds:
            break
        picked = set(choose(result, pool, args.per_round, rng))
        labelled += [s for i, s in enumerate(pool) if i in picked]
        pool = [s for i, s in enumerate(pool) if i not in picked]
    return accuracies


def start_set(train: list[Sample], seed: int) -> tuple[list[Sample], list[Sample]]:
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    for tag in sorted({next(iter(s.labels)) for s in train}):
        of_tag = [i for i, s in enumerate(train) if tag in s.labels]
        chosen.update(int(i) for i in rng.choice(of_tag, size=START_PER_CLASS, replace=False))
    return [s for i, s in enumerate(train) if i in chosen], [
        s for i, s in enumerate(train) if i not in chosen
    ]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-round", type=int, default=20, help="images labelled per round (10 per class)")
    parser.add_argument("--backbone", default=BACKBONE)
    return parser


def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}; backbone {args.backbone}")
    splits = hymenoptera_splits()
    if splits is None:
        return
    started = time.perf_counter()
    train, labels, val = splits
    strategies = {"seer": seer_choice, "uncertain": uncertain_choice, "random": random_choice}
    results: dict[str, list[list[float]]] = {name: [] for name in strategies}
    for seed in range(args.seeds):
        labelled, pool = start_set(train, seed)
        for name, choose in strategies.items():
            results[name].append(run_strategy(choose, labelled, pool, val, labels, args, seed))
            print(f"  seed {seed} {name:9}: " + " ".join(f"{a:.1%}" for a in results[name][-1]), flush=True)
    means = {name: np.mean(runs, axis=0) for name, runs in results.items()}
    seer, chance = means["seer"], means["random"]
    print(f"\nval accuracy, mean of {args.seeds} seeds ({time.perf_counter() - started:.0f} s in all):")
    rounds = range(len(seer))
    print("  labelled    " + " ".join(f"{START_PER_CLASS * 2 + r * args.per_round:>7}" for r in rounds))
    for name, mean in means.items():
        print(f"  {name:11} " + " ".join(f"{a:7.1%}" for a in mean))
    print("  seer-random " + " ".join(f"{(s - c) * 100:+7.1f}" for s, c in zip(seer, chance, strict=True)))
    beats = all(s > c for s, c in zip(seer[2:], chance[2:], strict=True))
    print(f"target (Seer above random in every round after the first): {'met' if beats else 'MISSED'}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
