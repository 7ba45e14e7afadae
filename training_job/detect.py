"""Training an object detector the way Custom Vision does, fast on a CPU, read top to bottom: validate the
input; cache the frozen backbone's maps of every view once (`detection_cache`); train only the detection head on
them, so k-fold cross-validation costs k more head fits, not k more passes over the images (`detection_heads`);
every training image gets out-of-fold detections from the fold model that did not see it; the final head is
fitted on everything, exported with the backbone, decoding and NMS as one ONNX model, and checked against
torch. Advanced first fine-tunes the backbone's stride-32 blocks on the cache (`detection_tuning`), predicts on a
stride-8 grid when the objects are small, and picks the suppression overlap on the folds. A run from a base
iteration (`warm_start`) starts every head from the base's, for half the epochs."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from pipeline.contract.detection import DETECTION
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.boxes import Box
from pipeline.core.cores import usable_cores
from pipeline.core.vocabulary import TrainingType
from pipeline.vision.metrics import DetectedImage, Performance, detection_performance
from pipeline.vision.preprocessing import preprocess_full
from training_job.augment import DEFAULT_AUGMENTATION, Methods
from training_job.backbones import get_spec, load_backbone
from training_job.champion import ChampionRecipe
from training_job.common import (
    VERIFY_IMAGES,
    Stopwatch,
    TrainingInputError,
    label_index,
    require_every_label,
    stratified_folds,
    training_type_of,
)
from training_job.detection_cache import (
    DEFAULTS,
    DetectionSample,
    DetectorSettings,
    FeatureCache,
    build_cache,
)
from training_job.detection_heads import FoldHeads, fit_heads, fit_held_out, new_head
from training_job.detection_tuning import tune_coarse_blocks, with_coarse_recomputed
from training_job.detector import Detector, Levels
from training_job.device import CPU, TrainingDevice
from training_job.onnx_export import package_detector, verify_detections
from training_job.warm_start import DetectorState, WarmStartReport

log = logging.getLogger(__name__)

ADVANCED_TUNE_EPOCHS = 4  # Advanced tunes the backbone's stride-32 blocks this long before the heads train
ADVANCED_NMS_IOUS = (0.3, 0.4, 0.5, 0.6)  # Advanced's suppression overlaps, chosen among on the folds
SMALL_OBJECT_CELLS = 2.5  # Advanced predicts on a stride-8 grid when the median box spans fewer cells


@dataclass(frozen=True)
class FoldDetections:
    """One training image's detections by the fold model that did not see it."""

    image_id: str
    fold: int
    detections: list[Box]


@dataclass(frozen=True)
class DetectionResult:
    onnx_model: bytes
    fold_predictions: list[FoldDetections]
    cv_score: float  # mean average precision (overlap 0.5) of the out-of-fold detections
    folds: int
    backbone: str
    image_size: int
    export_difference: float  # max |onnx - torch| over matched boxes and scores on real training images
    device: str  # what trained it: "cpu" or "cuda (<GPU>)" (training_job.device)
    model: Detector
    elapsed: float
    state: DetectorState  # what a later run can start from
    warm_start: WarmStartReport | None = None  # what this run took from its base, if it had one
    timings: dict[str, float] = field(default_factory=dict)
    champion_score: float | None = None  # the published iteration's recipe on the same folds (champion.py)


def validate(
    samples: Sequence[DetectionSample], labels: Sequence[ModelLabel], training_type: str
) -> TrainingType:
    """The training type, once the samples and labels are known to be trainable."""
    kind = training_type_of(training_type)
    if len(samples) < 2:
        raise TrainingInputError(
            "Training needs at least 2 images with regions (cross-validation holds some out)."
        )
    if not labels:
        raise TrainingInputError("Training needs at least one tag.")
    index = label_index(labels)
    counts = np.zeros(len(labels), dtype=int)
    for sample in samples:
        if not sample.regions or not all(r.tag_id in index for r in sample.regions):
            raise TrainingInputError(f"Image {sample.image_id} has no region, or a region of an unknown tag.")
        for region in sample.regions:
            counts[index[region.tag_id]] += 1
    require_every_label(labels, counts, "regions")
    return kind


def advanced_finest_stride(samples: Sequence[DetectionSample], image_size: int) -> int:
    """Advanced's output grid: stride 8 when the median box's shorter side, at the training size, spans fewer than
    `SMALL_OBJECT_CELLS` stride-16 cells, else stride 16. Neighbouring small objects then share no cell, and
    each gets more locations: on mosaics of 6x6 raccoon photos (median side 30 px of 320) the stride-8 grid took
    held-out mAP@0.5 from 0.839 to 0.876 and recall from 0.788 to 0.870; on 4x4 mosaics (median 45 px) it gained
    nothing at 0.5, and its heads train about three times as long, so larger objects keep stride 16. The bound,
    40 px at stride 16, lies between the two."""
    sides = [min(r.width, r.height) * image_size for s in samples for r in s.regions]
    small = float(np.median(sides)) < SMALL_OBJECT_CELLS * DETECTION.stride
    return DETECTION.stride // 2 if small else DETECTION.stride


def evaluated(sample: DetectionSample, prediction: FoldDetections) -> DetectedImage:
    """A sample and its out-of-fold detections in the metrics' form."""
    return DetectedImage(fold=prediction.fold, truth=sample.regions, detections=prediction.detections)


def out_of_fold_performance(
    samples: Sequence[DetectionSample], labels: Sequence[ModelLabel], predictions: Sequence[FoldDetections]
) -> Performance:
    """Precision and recall at the 50 % threshold and mean average precision (overlap 0.5) of out-of-fold
    detections."""
    return detection_performance(
        [evaluated(s, p) for s, p in zip(samples, predictions, strict=True)], [lb.tag_id for lb in labels]
    )


def out_of_fold_score(
    samples: Sequence[DetectionSample], labels: Sequence[ModelLabel], predictions: Sequence[FoldDetections]
) -> float:
    """Mean average precision (overlap 0.5) of out-of-fold detections."""
    return out_of_fold_performance(samples, labels, predictions).average_precision


def fold_detections(
    samples: Sequence[DetectionSample], folds: np.ndarray, found: Sequence[list[Box]]
) -> list[FoldDetections]:
    """Each sample's out-of-fold detections (`found`, in sample order) with its id and fold."""
    return [FoldDetections(s.image_id, int(folds[row]), found[row]) for row, s in enumerate(samples)]


def suppressed_on_folds(
    samples: Sequence[DetectionSample],
    labels: Sequence[ModelLabel],
    fold_heads: FoldHeads,
    candidates: Sequence[float],
) -> tuple[float, list[FoldDetections]]:
    """The suppression overlap among `candidates` whose out-of-fold detections a user would find best, and those
    detections: the highest F1 of precision and recall at Custom Vision's default 50 % threshold, then mean AP
    (the default overlap wins a tie; without candidates, the default). A duplicate box above the threshold is a
    false positive the user sees, while mean AP barely counts a low-scored one, so it cannot choose alone: on
    raccoon's folds overlaps 0.4 and 0.5 gave the same mean AP (0.961) and precision 0.970 against 0.954. The
    fold heads' detections are only suppressed again, which costs no training."""
    ordered = sorted(candidates, key=lambda iou: iou != DETECTION.nms_iou) or [DETECTION.nms_iou]
    found = {iou: fold_detections(samples, fold_heads.folds, fold_heads.held_out(iou)) for iou in ordered}

    def quality(nms_iou: float) -> tuple[float, float]:
        performance = out_of_fold_performance(samples, labels, found[nms_iou])
        precision, recall = performance.precision.value, performance.recall.value
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return f1, performance.average_precision

    best = max(ordered, key=quality)  # the first of equals: the default
    return best, found[best]


def champion_score(
    recipe: ChampionRecipe,
    samples: Sequence[DetectionSample],
    labels: Sequence[ModelLabel],
    folds: np.ndarray,
    cache: FeatureCache,
    backbone: str,
    settings: DetectorSettings,
    augmentation: Methods,
    deadline: float,
) -> float:
    """The champion's out-of-fold score on the challenger's samples and folds: heads on its backbone's cache
    (the challenger's cache and settings when the backbone is the same), each fitted on the fold's samples it
    was trained on."""
    if recipe.backbone != backbone:
        settings = DEFAULTS[recipe.backbone]
        levels = Levels(load_backbone(recipe.backbone)).eval()
        cache = build_cache(samples, labels, levels, settings, augmentation, cache.device)
    seen = np.array([sample.image_id in recipe.seen for sample in samples])
    found = fit_held_out(cache, labels, folds, seen, settings, deadline)
    return out_of_fold_score(samples, labels, fold_detections(samples, folds, found))


def train_detector(
    samples: Sequence[DetectionSample],
    labels: Sequence[ModelLabel],
    *,
    backbone: str = "efficientnet-lite2",
    training_type: str = TrainingType.REGULAR,
    budget_seconds: float | None = None,
    settings: DetectorSettings | None = None,
    augmentation: Methods = DEFAULT_AUGMENTATION,
    champion: ChampionRecipe | None = None,
    base: DetectorState | None = None,
    device: TrainingDevice = CPU,
) -> DetectionResult:
    """Train, cross-validate, export and verify, on `device` (every CPU core: it sets torch's thread count).
    "Advanced" first fine-tunes the backbone's stride-32 blocks (`detection_tuning`), adds the stride-8 level when
    the objects are small (`advanced_finest_stride`), trains each head twice as long and chooses the suppression
    overlap on the folds, within `budget_seconds`, except that every head makes Regular's epochs whatever the
    budget. With a `champion`, its recipe (on the frozen backbone's cache) is scored on the same folds too. From a
    `base` (an earlier run's state) every head starts from its head and trains half as long; its start saw images
    the folds now hold out, so the out-of-fold score flatters it a little."""
    watch = Stopwatch()
    kind = validate(samples, labels, training_type)
    get_spec(backbone)  # refuses an unknown backbone before any work
    settings = settings or DEFAULTS[backbone]
    if kind == TrainingType.ADVANCED:
        settings = replace(
            settings,
            epochs=settings.epochs * 2,
            guaranteed_epochs=settings.epochs,
            tune_epochs=ADVANCED_TUNE_EPOCHS,
            nms_ious=ADVANCED_NMS_IOUS,
            finest_stride=advanced_finest_stride(samples, settings.image_size),
        )
    deadline = watch.started + budget_seconds if budget_seconds is not None else math.inf
    torch.set_num_threads(usable_cores())

    size = settings.image_size
    levels = Levels(load_backbone(backbone), settings.finest_stride).eval()
    frozen = cache = build_cache(samples, labels, levels, settings, augmentation, device)
    watch.lap("features")
    if settings.tune_epochs:
        levels = tune_coarse_blocks(cache, levels, labels, settings, deadline)
        cache = with_coarse_recomputed(cache, levels)
        levels = levels.cpu()  # exported from the CPU, whatever trained it
        watch.lap("backbone_tuning")
    index = label_index(labels)
    label_sets = [{index[r.tag_id] for r in s.regions} for s in samples]
    folds = stratified_folds(label_sets, len(labels), max_folds=settings.max_folds)
    start = base.start(new_head(cache, len(labels), settings), labels, backbone, size) if base else None
    warm = replace(settings, epochs=max(1, settings.epochs // 2)) if start is not None else settings
    final_head, fold_heads = fit_heads(cache, labels, folds, warm, deadline, start)
    watch.lap("heads")
    nms_iou, predictions = suppressed_on_folds(samples, labels, fold_heads, settings.nms_ious)
    champion_map = None
    if champion is not None:
        champion_map = champion_score(
            champion, samples, labels, folds, frozen, backbone, settings, augmentation, deadline
        )
        watch.lap("champion_heads")
    model = Detector(levels, final_head, nms_iou).eval()
    onnx_bytes = package_detector(model, labels, size, backbone)
    watch.lap("final_model")
    check = np.stack([preprocess_full(s.image, size) for s in samples[:VERIFY_IMAGES]])
    difference = verify_detections(onnx_bytes, model, check)  # on every core: 0.62 s, not 0.73 to 0.79 on one
    watch.lap("verify")
    cv_score = out_of_fold_score(samples, labels, predictions)
    elapsed = watch.elapsed
    log.info(
        "trained a %s detector on %d images on %s in %.1f s (suppression overlap %.1f): %s",
        backbone,
        len(samples),
        device.name,
        elapsed,
        nms_iou,
        watch.timings,
    )
    return DetectionResult(
        onnx_model=onnx_bytes,
        fold_predictions=predictions,
        cv_score=cv_score,
        folds=int(folds.max() + 1),
        backbone=backbone,
        image_size=size,
        export_difference=difference,
        device=device.name,
        model=model,
        elapsed=elapsed,
        state=DetectorState.of(backbone, size, labels, final_head),
        warm_start=WarmStartReport(0, len(samples), head=start is not None, backbone=False) if base else None,
        timings=watch.timings,
        champion_score=champion_map,
    )
