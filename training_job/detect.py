"""Training an object detector the way Custom Vision does, fast on a CPU.

The backbone stays frozen: its two feature levels are computed once per view (the whole image, then random
box-aware crops, flips and colour changes), in ONNX Runtime, and cached; only the detection head trains, on the
cached maps, so k-fold cross-validation costs k more head fits, not k more passes over the images. Every training
image gets out-of-fold detections from the fold model that did not see it; the final head is fitted on
everything, exported with the backbone, decoding and NMS as one ONNX model, and checked against torch."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PIL import Image

from pipeline.vision.boxes import Box
from pipeline.vision.metrics import DetectedImage, detection_performance
from pipeline.vision.preprocessing import FULL_PREPROCESSING, describe, preprocess_batch, preprocess_full
from training_job.augment import detection_views
from training_job.backbones import get_spec, load_backbone
from training_job.classifier import torch_threads
from training_job.detector import Detector, Head, Levels, Targets, decode, detection_loss, suppress
from training_job.export import INPUT, export_module, session, verify_detections, with_metadata
from training_job.train import SEED, TRAINING_TYPES, Label, TrainingInputError, map_groups, stratified_folds

log = logging.getLogger(__name__)

OUTPUTS = ("detected_boxes", "detected_scores", "detected_classes")
LEVELS = ("fine", "coarse")
VERIFY_IMAGES = 4


@dataclass(frozen=True)
class DetectorSettings:
    """Every knob of a detector run. Sizes are multiples of 32 (the backbone's coarsest stride)."""

    image_size: int
    augmented_views: int = 7  # random views per image beside the whole image, computed once
    epochs: int = 12  # passes over all views, for each fold model and the final model
    batch: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 96  # head channels
    depth: int = 3  # separable convolutions in the head's tower
    max_folds: int = 3


DEFAULTS = {
    "efficientnet-lite0": DetectorSettings(image_size=320),
    "efficientnet-lite1": DetectorSettings(image_size=352),
    "efficientnet-lite2": DetectorSettings(image_size=384),
}


@dataclass(frozen=True)
class Region:
    label: int  # index into the labels list
    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class DetectionSample:
    image_id: str
    image: Image.Image
    regions: tuple[Region, ...]


@dataclass(frozen=True)
class Detection:
    tag_id: str
    probability: float
    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class FoldDetections:
    """One training image's detections by the fold model that did not see it."""

    image_id: str
    fold: int
    detections: list[Detection]


@dataclass(frozen=True)
class DetectionResult:
    onnx_model: bytes
    fold_predictions: list[FoldDetections]
    cv_score: float  # mean average precision (overlap 0.5) of the out-of-fold detections
    folds: int
    backbone: str
    image_size: int
    export_difference: float  # max |onnx - torch| over matched boxes and scores on real training images
    model: Detector
    elapsed: float
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Cache:
    """The frozen backbone's maps of every view (float16, [V, C, G, G]), the view's targets, its sample."""

    fine: torch.Tensor
    coarse: torch.Tensor
    targets: Targets
    sample: np.ndarray  # [V] sample index of each view
    first: np.ndarray  # [N] the index of each sample's whole-image view


def validate(samples: Sequence[DetectionSample], labels: Sequence[Label], training_type: str) -> None:
    if training_type not in TRAINING_TYPES:
        raise TrainingInputError(
            f"Unknown training type {training_type!r}; expected one of {TRAINING_TYPES}."
        )
    if len(samples) < 2:
        raise TrainingInputError(
            "Training needs at least 2 images with regions (cross-validation holds some out)."
        )
    if not labels:
        raise TrainingInputError("Training needs at least one tag.")
    counts = np.zeros(len(labels), dtype=int)
    for sample in samples:
        if not sample.regions or not all(0 <= r.label < len(labels) for r in sample.regions):
            raise TrainingInputError(f"Image {sample.image_id} has no region, or a tag index out of range.")
        for region in sample.regions:
            counts[region.label] += 1
    empty = [labels[i].name for i in np.flatnonzero(counts == 0)]
    if empty:
        raise TrainingInputError(f"Tags without regions: {', '.join(empty)}.")


def _boxes(sample: DetectionSample) -> np.ndarray:
    return np.array([[r.left, r.top, r.width, r.height] for r in sample.regions], dtype=np.float32)


def build_cache(samples: Sequence[DetectionSample], levels: Levels, settings: DetectorSettings) -> _Cache:
    """Backbone maps and targets of every view of every sample, views computed in parallel (`map_groups`)."""
    size, per_sample = settings.image_size, 1 + settings.augmented_views
    runner = session(export_module(levels, size, LEVELS), threads=1)
    grid = size // 16

    def run(indexes: range) -> tuple[np.ndarray, np.ndarray, list[Targets]]:
        images, targets = [], []
        for i in indexes:
            sample = samples[i]
            tags = torch.tensor([r.label for r in sample.regions])
            rng = random.Random(SEED * 1_000_003 + i)
            for view, boxes, kept in detection_views(
                sample.image, _boxes(sample), size, settings.augmented_views, rng
            ):
                images.append(view)
                targets.append(Targets.assign(torch.from_numpy(boxes), tags[torch.from_numpy(kept)], grid))
        fine, coarse = runner.run(list(LEVELS), {INPUT: preprocess_batch(images, size)})
        return fine.astype(np.float16), coarse.astype(np.float16), targets

    chunks = map_groups(len(samples), max(1, 8 // per_sample), run)
    return _Cache(
        fine=torch.from_numpy(np.concatenate([c[0] for c in chunks])),
        coarse=torch.from_numpy(np.concatenate([c[1] for c in chunks])),
        targets=Targets.stack([t for c in chunks for t in c[2]]),
        sample=np.repeat(np.arange(len(samples)), per_sample),
        first=np.arange(len(samples)) * per_sample,
    )


def new_head(cache: _Cache, num_classes: int, settings: DetectorSettings) -> Head:
    """A freshly initialised head, the same one every time (seeded; call it from one thread)."""
    torch.manual_seed(SEED)
    return Head(cache.fine.shape[1], cache.coarse.shape[1], num_classes, settings.width, settings.depth)


def fit_head(
    head: Head, cache: _Cache, rows: np.ndarray, settings: DetectorSettings, deadline: float
) -> Head:
    """`head` trained on every view of the samples `rows` (AdamW, cosine schedule), stopped at `deadline`."""
    views = torch.from_numpy(np.flatnonzero(np.isin(cache.sample, rows)))
    steps = max(1, math.ceil(settings.epochs * len(views) / settings.batch))
    optimiser = torch.optim.AdamW(
        head.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    warmup = min(50, steps // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)),
    )
    generator = torch.Generator().manual_seed(SEED)
    head.train()
    step = 0
    with torch.enable_grad():
        while step < steps:
            for batch in views[torch.randperm(len(views), generator=generator)].split(settings.batch):
                if step >= steps or time.monotonic() > deadline:
                    return head.eval().requires_grad_(False)
                outputs = head(cache.fine[batch].float(), cache.coarse[batch].float())
                loss = detection_loss(*outputs, cache.targets.take(batch))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                step += 1
    return head.eval().requires_grad_(False)


def detect_cached(cache: _Cache, head: Head, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The head's final detections (as the exported model makes them) on the whole-image views of `rows`."""
    views = torch.from_numpy(cache.first[rows])
    with torch.inference_mode():
        boxes, scores, tags = suppress(*decode(*head(cache.fine[views].float(), cache.coarse[views].float())))
    return boxes.numpy(), scores.numpy(), tags.numpy()


def _detections(
    labels: Sequence[Label], boxes: np.ndarray, scores: np.ndarray, tags: np.ndarray
) -> list[Detection]:
    return [
        Detection(labels[int(t)].tag_id, float(s), *map(float, b))
        for b, s, t in zip(boxes, scores, tags, strict=True)
        if s > 0
    ]


def package(model: Detector, labels: Sequence[Label], size: int, backbone: str) -> bytes:
    """The served model: backbone, head, decoding and NMS as one ONNX graph, with the metadata serving and
    offline users need."""
    exported = export_module(model, size, OUTPUTS)
    entries = {
        "labels": json.dumps([{"tag_id": label.tag_id, "name": label.name} for label in labels]),
        "preprocessing": json.dumps(describe(size, FULL_PREPROCESSING)),
        "classification_type": "null",
        "domain_type": "ObjectDetection",
        "backbone": backbone,
        "outputs": json.dumps(list(OUTPUTS)),
    }
    return with_metadata(exported, entries)


def train_detector(
    samples: Sequence[DetectionSample],
    labels: Sequence[Label],
    *,
    backbone: str = "efficientnet-lite2",
    training_type: str = "Regular",
    budget_seconds: float | None = None,
    settings: DetectorSettings | None = None,
) -> DetectionResult:
    """Train, cross-validate, export and verify. Uses every CPU core (sets torch's thread count). "Advanced"
    trains each head twice as long, within `budget_seconds`."""
    started = time.monotonic()
    validate(samples, labels, training_type)
    try:
        get_spec(backbone)
    except ValueError as error:
        raise TrainingInputError(str(error)) from None
    settings = settings or DEFAULTS[backbone]
    if training_type == "Advanced":
        settings = replace(settings, epochs=settings.epochs * 2)
    deadline = started + budget_seconds if budget_seconds is not None else math.inf
    torch.set_num_threads(os.cpu_count() or 1)
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started - sum(timings.values()), 3)

    size = settings.image_size
    levels = Levels(load_backbone(backbone)).eval()
    cache = build_cache(samples, levels, settings)
    lap("features")
    label_sets = [{r.label for r in s.regions} for s in samples]
    folds = stratified_folds(label_sets, len(labels), max_folds=settings.max_folds)
    k = int(folds.max() + 1)
    # The final head and the k fold heads are independent: one single-threaded fit per core at a time (small
    # convolutions scale badly across threads, the more so on shared cores).
    training_rows = [np.arange(len(samples))] + [np.flatnonzero(folds != fold) for fold in range(k)]
    heads = [new_head(cache, len(labels), settings) for _ in training_rows]
    with torch_threads(1), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        final_head, *fold_heads = pool.map(
            lambda head, rows: fit_head(head, cache, rows, settings, deadline), heads, training_rows
        )
    found: dict[int, list[Detection]] = {}
    for fold, head in enumerate(fold_heads):
        held = np.flatnonzero(folds == fold)
        for row, boxes, scores, tags in zip(held, *detect_cached(cache, head, held), strict=True):
            found[int(row)] = _detections(labels, boxes, scores, tags)
    lap("heads")
    model = Detector(levels, final_head).eval()
    onnx_bytes = package(model, labels, size, backbone)
    lap("final_model")
    check = np.stack([preprocess_full(s.image, size) for s in samples[:VERIFY_IMAGES]])
    with torch_threads(1):
        difference = verify_detections(onnx_bytes, model, check, OUTPUTS)
    lap("verify")
    predictions = [FoldDetections(s.image_id, int(folds[row]), found[row]) for row, s in enumerate(samples)]
    cv_score = detection_performance(
        [evaluated(s, p, labels) for s, p in zip(samples, predictions, strict=True)],
        [lb.tag_id for lb in labels],
    ).average_precision
    elapsed = time.monotonic() - started
    log.info("trained a %s detector on %d images in %.1f s: %s", backbone, len(samples), elapsed, timings)
    return DetectionResult(
        onnx_model=onnx_bytes,
        fold_predictions=predictions,
        cv_score=cv_score,
        folds=k,
        backbone=backbone,
        image_size=size,
        export_difference=difference,
        model=model,
        elapsed=elapsed,
        timings=timings,
    )


def evaluated(sample: DetectionSample, prediction: FoldDetections, labels: Sequence[Label]) -> DetectedImage:
    """A sample and its out-of-fold detections in the metrics' form."""
    return DetectedImage(
        fold=prediction.fold,
        truth=[Box(labels[r.label].tag_id, r.left, r.top, r.width, r.height) for r in sample.regions],
        detections=[
            Box(d.tag_id, d.left, d.top, d.width, d.height, d.probability) for d in prediction.detections
        ],
    )
