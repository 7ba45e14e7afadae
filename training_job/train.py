"""Training a classifier the way Custom Vision does, fast on a CPU.

A frozen ImageNet backbone computes pooled features once per image, in ONNX Runtime (several times faster than
eager torch here); a linear head is fitted on the cached features; stratified k-fold cross-validation refits
only the head, so every image gets one out-of-fold prediction cheaply; the final model (backbone + head fitted
on everything) is exported and checked. "Advanced" training also fine-tunes the backbone's last blocks on
augmented views, on the same folds and within the budget, and keeps whichever of the two scores better out of
fold, so it is never worse than "Regular" there."""

from __future__ import annotations

import copy
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import onnx
import torch
from PIL import Image
from torch import nn

from pipeline.vision.preprocessing import preprocess_batch
from training_job.augment import views
from training_job.backbones import get_spec
from training_job.classifier import (
    Classifier,
    FeatureExtractor,
    feature_extractor,
    fit_head,
    loss,
    probabilities,
    torch_threads,
)
from training_job.export import FEATURES, INPUT, export_features, package, session, verify

log = logging.getLogger(__name__)
T = TypeVar("T")

TRAINING_TYPES = ("Regular", "Advanced")
# Augmented views per image beside the serving view. A linear head on frozen features gained nothing from them
# (hymenoptera val: 96.1 % accuracy with 0, 1, 2 or 3, log loss best with 0; out-of-fold on 61 of its training
# images and on the quickstart, within noise) and each one costs a backbone pass; fine-tuning needs them.
REGULAR_AUGMENTED_VIEWS = 0
FINETUNE_AUGMENTED_VIEWS = 3
WEIGHT_DECAY = 1e-2  # head L2: best val log loss on hymenoptera among 1e-3..3e-2 (accuracy within 1 image)
MAX_FOLDS = 5
BATCH = 4  # views per backbone run: fastest here (14 ms a view for lite2) and the least memory
VERIFY_IMAGES = 4
SEED = 0
FINETUNE_BLOCKS = 2  # Advanced: the last blocks (plus the head convolution) that are trained
FINETUNE_EPOCHS = 8
FINETUNE_BATCH = 32
FINETUNE_LR = {"backbone": 1e-4, "head": 1e-3}


class TrainingInputError(ValueError):
    """The samples and labels cannot be trained on (retrying will not help)."""


@dataclass(frozen=True)
class Label:
    tag_id: str
    name: str
    is_negative: bool = False


@dataclass(frozen=True)
class Sample:
    image_id: str
    image: Image.Image
    labels: set[int]  # indexes into the labels list


@dataclass(frozen=True)
class FoldPrediction:
    """One training image scored by the fold model that did not see it."""

    image_id: str
    fold: int
    probabilities: dict[str, float]  # tag id -> probability


@dataclass(frozen=True)
class CvScore:
    """Out-of-fold quality: mean average precision over labels (Custom Vision's headline), then log loss."""

    average_precision: float
    log_loss: float

    def key(self) -> tuple[float, float]:
        return (self.average_precision, -self.log_loss)


@dataclass(frozen=True)
class TrainingResult:
    onnx_model: bytes
    fold_predictions: list[FoldPrediction]
    cv_score: float  # mean average precision of the kept model's out-of-fold predictions
    cv_log_loss: float
    folds: int
    mode: str  # which training was kept: "Regular" or "Advanced"
    scores: dict[str, CvScore]  # every mode that was cross-validated
    backbone: str
    image_size: int
    export_difference: float  # max |onnx - torch| on real training images
    model: Classifier  # the exported model, in torch
    elapsed: float
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Trained:
    """A candidate: its out-of-fold probabilities, and how to build its final model when it is kept."""

    oof: np.ndarray
    score: CvScore
    final: Callable[[], Classifier]


def validate(
    samples: Sequence[Sample], labels: Sequence[Label], multilabel: bool, training_type: str
) -> None:
    if training_type not in TRAINING_TYPES:
        raise TrainingInputError(
            f"Unknown training type {training_type!r}; expected one of {TRAINING_TYPES}."
        )
    if len(samples) < 2:
        raise TrainingInputError("Training needs at least 2 tagged images (cross-validation holds some out).")
    if not labels:
        raise TrainingInputError("Training needs at least one tag.")
    counts = np.zeros(len(labels), dtype=int)
    for sample in samples:
        if not sample.labels or not all(0 <= i < len(labels) for i in sample.labels):
            raise TrainingInputError(f"Image {sample.image_id} has no tag, or a tag index out of range.")
        if not multilabel and len(sample.labels) != 1:
            raise TrainingInputError(
                f"Image {sample.image_id} has {len(sample.labels)} tags; multiclass needs 1."
            )
        counts[list(sample.labels)] += 1
    empty = [labels[i].name for i in np.flatnonzero(counts == 0)]
    if empty:
        raise TrainingInputError(f"Tags without images: {', '.join(empty)}.")


def stratified_folds(
    label_sets: Sequence[set[int]], num_labels: int, seed: int = SEED, max_folds: int = MAX_FOLDS
) -> np.ndarray:
    """A fold per sample, k = min(max_folds, smallest tag count) but at least 2. Samples are grouped by their rarest
    tag and dealt round-robin across the folds, continuing from group to group, so every tag spreads over as
    many folds as it can and fold sizes differ by at most one."""
    counts = np.bincount([i for labels in label_sets for i in labels], minlength=num_labels)
    k = max(2, min(max_folds, int(counts.min())))
    rng = random.Random(seed)
    groups: dict[int, list[int]] = {}
    for index, labels in enumerate(label_sets):
        groups.setdefault(min(labels, key=lambda i: (counts[i], i)), []).append(index)
    folds = np.empty(len(label_sets), dtype=int)
    position = 0
    for rarest in sorted(groups, key=lambda i: (counts[i], i)):
        members = groups[rarest]
        rng.shuffle(members)
        for index in members:
            folds[index] = position % k
            position += 1
    return folds


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the precision-recall curve as a step function (precision at each positive, averaged)."""
    order = np.argsort(-scores, kind="stable")
    hits = positives[order].astype(float)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / max(hits.sum(), 1.0))


def score(oof: np.ndarray, truth: np.ndarray, multilabel: bool) -> CvScore:
    """`truth` is the 0/1 [N, L] matrix of tags."""
    mean_ap = float(np.mean([average_precision(oof[:, j], truth[:, j]) for j in range(truth.shape[1])]))
    p = np.clip(oof, 1e-7, 1 - 1e-7)
    if multilabel:
        log_loss = float(-(truth * np.log(p) + (1 - truth) * np.log(1 - p)).mean())
    else:
        log_loss = float(-np.log(p[truth.astype(bool)]).mean())
    return CvScore(mean_ap, log_loss)


def map_groups(count: int, per_group: int, work: Callable[[range], T]) -> list[T]:
    """`work` applied to successive groups of `per_group` indexes out of `count`, in order. Each CPU core gets
    its own worker thread running single-threaded work: independent streams make better use of shared cores
    than one stream whose threads wait on each other (about 2x faster measured here with the 2 cores busy), and
    only the groups in flight are held in memory."""
    groups = [range(start, min(start + per_group, count)) for start in range(0, count, per_group)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(work, groups))


def map_views(
    samples: Sequence[Sample], size: int, augmented: int, work: Callable[[np.ndarray], T]
) -> list[T]:
    """`work` applied to the preprocessed views (the serving view, then `augmented` random ones, seeded per
    sample) of successive groups of samples ([n * (1 + augmented), 3, S, S] each), in order (`map_groups`)."""

    def run(indexes: range) -> T:
        images = [
            view
            for i in indexes
            for view in views(samples[i].image, size, augmented, random.Random(SEED * 1_000_003 + i))
        ]
        return work(preprocess_batch(images, size))

    return map_groups(len(samples), max(1, BATCH // (1 + augmented)), run)


def compute_features(samples: Sequence[Sample], size: int, features: onnx.ModelProto) -> np.ndarray:
    """[N, V, D] pooled features of every view of every sample, in ONNX Runtime."""
    runner = session(features, threads=1)
    rows = map_views(
        samples, size, REGULAR_AUGMENTED_VIEWS, lambda pixels: runner.run([FEATURES], {INPUT: pixels})[0]
    )
    return np.concatenate(rows).reshape(len(samples), 1 + REGULAR_AUGMENTED_VIEWS, -1)


def head_targets(truth: np.ndarray, multilabel: bool) -> torch.Tensor:
    return torch.from_numpy(truth).float() if multilabel else torch.from_numpy(truth.argmax(1))


def fit_on_views(features: np.ndarray, truth: np.ndarray, multilabel: bool) -> nn.Linear:
    """A head fitted on every view of the given samples ([n, V, D] features, [n, L] truth)."""
    views_per_sample = features.shape[1]
    rows = torch.from_numpy(features.reshape(-1, features.shape[-1]))
    targets = head_targets(np.repeat(truth, views_per_sample, axis=0), multilabel)
    return fit_head(rows, targets, truth.shape[1], multilabel, WEIGHT_DECAY)


def train_regular(
    extractor: FeatureExtractor, features: np.ndarray, truth: np.ndarray, folds: np.ndarray, multilabel: bool
) -> tuple[_Trained, list[nn.Linear]]:
    """Head-only cross-validation on cached features; also returns each fold's head (Advanced starts there)."""
    oof = np.zeros(truth.shape, dtype=np.float32)
    heads = []
    for fold in range(folds.max() + 1):
        train, held = folds != fold, folds == fold
        head = fit_on_views(features[train], truth[train], multilabel)
        oof[held] = probabilities(head(torch.from_numpy(features[held, 0])), multilabel).numpy()
        heads.append(head)

    def final() -> Classifier:
        return Classifier(extractor, fit_on_views(features, truth, multilabel), multilabel)

    return _Trained(oof, score(oof, truth, multilabel), final), heads


class _FineTuner:
    """Advanced training: the frozen part of the backbone runs once per view; the last FINETUNE_BLOCKS blocks,
    the head convolution and the linear head are trained on those cached activations, starting from the
    Regular head of the same fold. BatchNorm statistics stay frozen (eval mode), which suits small data."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        samples: Sequence[Sample],
        size: int,
        multilabel: bool,
        deadline: float,
    ) -> None:
        self.extractor = extractor
        self.multilabel = multilabel
        self.deadline = deadline
        self.split = extractor.backbone.num_blocks - FINETUNE_BLOCKS
        self.activations: torch.Tensor | None = None

        def prefix(pixels: np.ndarray) -> torch.Tensor | None:
            if time.monotonic() > deadline:
                return None
            # no_grad, not inference_mode: these activations are inputs to training
            with torch.no_grad():
                return extractor.backbone.prefix(extractor.normalise(torch.from_numpy(pixels)), self.split)

        with torch_threads(1):
            chunks = map_views(samples, size, FINETUNE_AUGMENTED_VIEWS, prefix)
        if any(chunk is None for chunk in chunks):
            return
        stacked = torch.cat(chunks)
        self.activations = stacked.reshape(len(samples), 1 + FINETUNE_AUGMENTED_VIEWS, *stacked.shape[1:])

    def train(self, rows: np.ndarray, truth: np.ndarray, head: nn.Linear, seconds: float) -> Classifier:
        """Fine-tune a copy of the model on the samples `rows` for at most FINETUNE_EPOCHS or `seconds`."""
        assert self.activations is not None
        model = Classifier(copy.deepcopy(self.extractor), copy.deepcopy(head), self.multilabel)
        model.eval().requires_grad_(False)
        backbone = model.features.backbone
        tuned = backbone.suffix_parameters(self.split)
        for parameter in [*tuned, *model.head.parameters()]:
            parameter.requires_grad_(True)
        optimiser = torch.optim.AdamW(
            [
                {"params": tuned, "lr": FINETUNE_LR["backbone"]},
                {"params": list(model.head.parameters()), "lr": FINETUNE_LR["head"]},
            ],
            weight_decay=1e-4,
        )
        inputs = self.activations[torch.from_numpy(rows)].flatten(0, 1)
        targets = head_targets(np.repeat(truth, 1 + FINETUNE_AUGMENTED_VIEWS, axis=0), self.multilabel)
        generator = torch.Generator().manual_seed(SEED)
        stop = time.monotonic() + seconds
        with torch.enable_grad():
            for _ in range(FINETUNE_EPOCHS):
                for batch in torch.randperm(len(inputs), generator=generator).split(FINETUNE_BATCH):
                    if time.monotonic() > stop:
                        return model.requires_grad_(False)
                    logits = model.head(backbone.suffix(inputs[batch], self.split))
                    optimiser.zero_grad()
                    loss(logits, targets[batch], self.multilabel).backward()
                    optimiser.step()
        return model.requires_grad_(False)

    def predict(self, model: Classifier, rows: np.ndarray) -> np.ndarray:
        assert self.activations is not None
        with torch.inference_mode():
            features = model.features.backbone.suffix(self.activations[torch.from_numpy(rows), 0], self.split)
            return probabilities(model.head(features), self.multilabel).numpy()


def train_advanced(
    tuner: _FineTuner, truth: np.ndarray, folds: np.ndarray, heads: Sequence[nn.Linear], final_head: nn.Linear
) -> _Trained | None:
    """Fine-tuned cross-validation on the Regular folds, the remaining budget shared by the k folds and the
    final model; None when the budget ran out before every fold was scored. The final model trains as long as
    a fold model did (so the folds' score describes it), even where that ends a little past the deadline."""
    if tuner.activations is None:
        return None
    k = len(heads)
    oof = np.zeros(truth.shape, dtype=np.float32)
    seconds = 0.0
    for fold, head in enumerate(heads):
        seconds = (tuner.deadline - time.monotonic()) / (k + 1 - fold)
        if seconds <= 0:
            return None
        train, held = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        oof[held] = tuner.predict(tuner.train(train, truth[train], head, seconds), held)

    def final() -> Classifier:
        everything = np.arange(len(truth))
        return tuner.train(everything, truth, final_head, seconds)

    return _Trained(oof, score(oof, truth, tuner.multilabel), final)


def train_classifier(
    samples: Sequence[Sample],
    labels: Sequence[Label],
    *,
    multilabel: bool,
    backbone: str = "efficientnet-lite2",
    training_type: str = "Regular",
    budget_seconds: float | None = None,
) -> TrainingResult:
    """Train, cross-validate, export and verify. Uses every CPU core (sets torch's thread count)."""
    started = time.monotonic()
    validate(samples, labels, multilabel, training_type)
    try:
        spec = get_spec(backbone)
    except ValueError as error:
        raise TrainingInputError(str(error)) from None
    torch.set_num_threads(os.cpu_count() or 1)
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started - sum(timings.values()), 3)

    size = spec.image_size
    truth = np.zeros((len(samples), len(labels)), dtype=np.float32)
    for row, sample in enumerate(samples):
        truth[row, list(sample.labels)] = 1
    folds = stratified_folds([s.labels for s in samples], len(labels))
    extractor = feature_extractor(backbone)
    features_onnx = export_features(extractor, size)
    lap("export_backbone")
    features = compute_features(samples, size, features_onnx)
    lap("features")
    regular, fold_heads = train_regular(extractor, features, truth, folds, multilabel)
    candidates = {"Regular": regular}
    lap("regular_cv")
    if training_type == "Advanced":
        deadline = time.monotonic() + (budget_seconds if budget_seconds is not None else float("inf"))
        tuner = _FineTuner(extractor, samples, size, multilabel, deadline)
        final_head = fit_on_views(features, truth, multilabel)
        advanced = train_advanced(tuner, truth, folds, fold_heads, final_head)
        if advanced is not None:
            candidates["Advanced"] = advanced
        lap("advanced_cv")
    mode = max(candidates, key=lambda name: candidates[name].score.key())
    kept = candidates[mode]
    model = kept.final()
    if mode != "Regular":
        features_onnx = export_features(model.features, size)
    label_entries = [{"tag_id": label.tag_id, "name": label.name} for label in labels]
    onnx_bytes = package(features_onnx, model, label_entries, size, backbone)
    lap("final_model")
    check = preprocess_batch([s.image for s in samples[:VERIFY_IMAGES]], size)
    difference = verify(onnx_bytes, model, check)
    lap("verify")
    tag_ids = [label.tag_id for label in labels]
    predictions = [
        FoldPrediction(
            sample.image_id, int(folds[row]), dict(zip(tag_ids, map(float, kept.oof[row]), strict=True))
        )
        for row, sample in enumerate(samples)
    ]
    elapsed = time.monotonic() - started
    log.info("trained %s (%s) on %d images in %.1f s: %s", backbone, mode, len(samples), elapsed, timings)
    return TrainingResult(
        onnx_model=onnx_bytes,
        fold_predictions=predictions,
        cv_score=kept.score.average_precision,
        cv_log_loss=kept.score.log_loss,
        folds=int(folds.max() + 1),
        mode=mode,
        scores={name: candidate.score for name, candidate in candidates.items()},
        backbone=backbone,
        image_size=size,
        export_difference=difference,
        model=model,
        elapsed=elapsed,
        timings=timings,
    )
