"""Training a classifier the way Custom Vision does, fast on a CPU, read top to bottom: validate the input, deal
stratified folds, cross-validate Regular training (a linear head on frozen backbone features, `regular`) and,
for "Advanced", a head on the backbone's ImageNet logits (`semantic`) and fine-tuning (`finetune`) on the same
folds within the budget; keep the linear recipe that scores best out of fold, or fine-tuning where it scores
clearly better (so Advanced is never worse than Regular there), build its final model on everything, calibrate it
(a temperature fitted out of fold, `calibration`), export it with its metadata and its unknown score (`unknown`)
and check the export against torch. A run from a base iteration (`warm_start`) reuses the base's features of the
images it had and starts the heads and fine-tuning from the base's weights."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import torch

from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.cores import usable_cores
from pipeline.core.vocabulary import TrainingType
from pipeline.vision.preprocessing import preprocess_batch
from training_job.augment import DEFAULT_AUGMENTATION, Methods
from training_job.backbones import get_spec, load_imagenet_classifier
from training_job.calibration import Calibration, calibrate
from training_job.champion import ChampionRecipe
from training_job.classifier import Classifier, with_temperature
from training_job.common import (
    VERIFY_IMAGES,
    Stopwatch,
    TrainingInputError,
    require_every_label,
    stratified_folds,
    training_type_of,
)
from training_job.device import CPU, TrainingDevice
from training_job.finetune import WARM_FINETUNE_EPOCHS, FineTuner, train_advanced
from training_job.onnx_export import export_features, package_classifier, pretrained_backbone, verify
from training_job.regular import BackboneFeatures, fit_on_views, out_of_fold, train_regular
from training_job.samples import Sample
from training_job.scoring import Candidate, CvScore, clearly_better, score
from training_job.semantic import train_semantic
from training_job.unknown import UnknownScore, fit_unknown
from training_job.warm_start import ClassifierState, WarmStartReport

log = logging.getLogger(__name__)


class Recipe(StrEnum):
    """How a kept model was trained: Regular's one recipe, or one of Advanced's."""

    REGULAR = "regular"  # a linear head on the frozen backbone's pooled features (regular.py)
    SEMANTIC = "semantic probe"  # Advanced: a head on the backbone's ImageNet logits (semantic.py)
    # Advanced: the last blocks and the head trained on augmented views (finetune.py)
    FINE_TUNED = "fine-tuned"

    @property
    def training_type(self) -> TrainingType:
        """The training type whose model this recipe makes: Regular's recipe, or Advanced for the others."""
        return TrainingType.REGULAR if self is Recipe.REGULAR else TrainingType.ADVANCED


@dataclass(frozen=True)
class FoldPrediction:
    """One training image scored by the fold model that did not see it."""

    image_id: str
    fold: int
    probabilities: dict[str, float]  # tag id -> probability


@dataclass(frozen=True)
class TrainingResult:
    onnx_model: bytes
    fold_predictions: list[FoldPrediction]
    cv_score: float  # mean average precision of the kept model's out-of-fold predictions
    cv_log_loss: float
    folds: int
    recipe: Recipe  # which recipe was kept
    scores: dict[Recipe, CvScore]  # every recipe that was cross-validated
    backbone: str
    image_size: int
    export_difference: float  # max |onnx - torch| on real training images
    device: str  # what trained it: "cpu" or "cuda (<GPU>)" (training_job.device)
    model: Classifier  # the exported model, in torch
    calibration: Calibration  # the temperature folded into `model` and its out-of-fold effect
    unknown: UnknownScore  # the exported model's second output and its threshold
    elapsed: float
    state: ClassifierState  # what a later run can start from
    warm_start: WarmStartReport | None = None  # what this run took from its base, if it had one
    timings: dict[str, float] = field(default_factory=dict)
    champion_score: CvScore | None = None  # the published iteration's recipe on the same folds (champion.py)

    @property
    def mode(self) -> TrainingType:
        """Which training was kept."""
        return self.recipe.training_type


def validate(
    samples: Sequence[Sample], labels: Sequence[ModelLabel], multilabel: bool, training_type: str
) -> TrainingType:
    """The training type, once the samples and labels are known to be trainable."""
    kind = training_type_of(training_type)
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
    require_every_label(labels, counts, "images")
    return kind


def fold_predictions(
    samples: Sequence[Sample], labels: Sequence[ModelLabel], folds: np.ndarray, oof: np.ndarray
) -> list[FoldPrediction]:
    tag_ids = [label.tag_id for label in labels]
    return [
        FoldPrediction(
            sample.image_id, int(folds[row]), dict(zip(tag_ids, map(float, oof[row]), strict=True))
        )
        for row, sample in enumerate(samples)
    ]


def champion_score(
    recipe: ChampionRecipe,
    samples: Sequence[Sample],
    truth: np.ndarray,
    folds: np.ndarray,
    features: np.ndarray,
    backbone: str,
    multilabel: bool,
    device: TrainingDevice,
) -> CvScore:
    """The champion's out-of-fold score on the challenger's samples and folds: Regular heads on its backbone's
    features (the challenger's when the backbone is the same), each fitted on the fold's samples it was trained
    on."""
    if recipe.backbone != backbone:
        theirs = pretrained_backbone(recipe.backbone)
        features = BackboneFeatures(theirs.extractor, theirs.features, device).compute(
            samples, get_spec(recipe.backbone).image_size
        )
    seen = np.array([sample.image_id in recipe.seen for sample in samples])
    oof, _ = out_of_fold(features, truth, folds, recipe.multilabel, seen)
    return score(oof, truth, multilabel)


def choose(candidates: dict[Recipe, Candidate], truth: np.ndarray, multilabel: bool) -> Recipe:
    """The linear recipe that scores best on the folds (Regular on a tie); fine-tuning only where it beats that
    one clearly (`clearly_better`)."""
    linear = max(
        (recipe for recipe in (Recipe.REGULAR, Recipe.SEMANTIC) if recipe in candidates),
        key=lambda recipe: candidates[recipe].score.key(),
    )
    tuned = candidates.get(Recipe.FINE_TUNED)
    if tuned is not None and clearly_better(tuned, candidates[linear], truth, multilabel):
        return Recipe.FINE_TUNED
    return linear


def train_classifier(
    samples: Sequence[Sample],
    labels: Sequence[ModelLabel],
    *,
    multilabel: bool,
    backbone: str = "efficientnet-lite2",
    training_type: str = TrainingType.REGULAR,
    budget_seconds: float | None = None,
    augmentation: Methods = DEFAULT_AUGMENTATION,
    champion: ChampionRecipe | None = None,
    base: ClassifierState | None = None,
    device: TrainingDevice = CPU,
) -> TrainingResult:
    """Train, cross-validate, export and verify, on `device` (every CPU core: it sets torch's thread count). Regular
    training learns from the serving view alone; Advanced fine-tunes on views augmented by `augmentation`.
    With a `champion`, its recipe is scored on the same folds too.

    From a `base` (an earlier run's state): its features of the same images are reused, every head starts from
    its head, and fine-tuning starts from its fine-tuned blocks and head (for WARM_FINETUNE_EPOCHS). The base saw
    images the folds now hold out, so a warm-started fine-tuning's out-of-fold score flatters it a little
    (`bench/incremental.py` compares on a held-out set); the Regular heads converge to the same optimum
    whatever their start."""
    watch = Stopwatch()
    kind = validate(samples, labels, multilabel, training_type)
    torch.set_num_threads(usable_cores())
    pretrained = pretrained_backbone(backbone)  # made ahead by a standby execution, or now
    extractor, features_onnx = pretrained.extractor, pretrained.features
    size = get_spec(backbone).image_size

    truth = np.zeros((len(samples), len(labels)), dtype=np.float32)
    for row, sample in enumerate(samples):
        truth[row, list(sample.labels)] = 1
    folds = stratified_folds([s.labels for s in samples], len(labels))
    watch.lap("export_backbone")
    known = base.known_features(samples, backbone, size) if base else {}
    features = regular_features = BackboneFeatures(extractor, features_onnx, device).compute(
        samples, size, known
    )
    watch.lap("features")
    initial = base.regular.for_labels(labels) if base else None
    regular, fold_heads = train_regular(extractor, features, truth, folds, multilabel, initial)
    candidates: dict[Recipe, Candidate] = {Recipe.REGULAR: regular}
    watch.lap("regular_cv")
    champion_cv = None
    if champion is not None:
        champion_cv = champion_score(champion, samples, truth, folds, features, backbone, multilabel, device)
        watch.lap("champion_cv")
    tuned_start = None
    if kind == TrainingType.ADVANCED:
        deadline = time.monotonic() + (budget_seconds if budget_seconds is not None else float("inf"))
        tuned_start = base.tuned_start(extractor, labels) if base else None
        if tuned_start is not None:
            tuned_extractor, final_head = tuned_start
            tuner = FineTuner(
                tuned_extractor,
                samples,
                size,
                multilabel,
                deadline,
                augmentation,
                WARM_FINETUNE_EPOCHS,
                device,
            )
            fold_heads = [final_head] * len(fold_heads)
        else:
            tuner = FineTuner(extractor, samples, size, multilabel, deadline, augmentation, device=device)
            final_head = fit_on_views(features, truth, multilabel, initial)
        if tuner.activations is not None and tuned_start is None:
            frozen = tuner.frozen_features()
            imagenet = load_imagenet_classifier(backbone)
            candidates[Recipe.SEMANTIC] = train_semantic(
                extractor, frozen, truth, folds, multilabel, imagenet
            )
            watch.lap("semantic_cv")
        advanced = train_advanced(tuner, truth, folds, fold_heads, final_head)
        if advanced is not None:
            candidates[Recipe.FINE_TUNED] = advanced
        watch.lap("advanced_cv")

    recipe = choose(candidates, truth, multilabel)
    kept = candidates[recipe]
    calibration = calibrate(kept.oof, truth, multilabel)
    final = kept.final()  # uncalibrated: what a later run starts from (warm_start)
    model = with_temperature(final, calibration.temperature)
    if recipe == Recipe.FINE_TUNED:
        features_onnx = export_features(model.features, size)
        features = BackboneFeatures(model.features, features_onnx, device).compute(samples, size)
    unknown = fit_unknown(features[:, 0], folds)
    onnx_bytes = package_classifier(
        features_onnx, model, labels, size, backbone, unknown, calibration.temperature
    )
    watch.lap("final_model")
    check = preprocess_batch([s.image for s in samples[:VERIFY_IMAGES]], size)
    difference = verify(onnx_bytes, model, check, unknown)
    watch.lap("verify")
    predictions = fold_predictions(samples, labels, folds, calibration.oof)
    tuned = final if recipe == Recipe.FINE_TUNED else None
    regular_head = (
        final.head if recipe == Recipe.REGULAR else fit_on_views(regular_features, truth, multilabel, initial)
    )
    state = ClassifierState.of(backbone, size, samples, labels, regular_features, regular_head, tuned)
    report = (
        WarmStartReport(len(known), len(samples) - len(known), head=True, backbone=tuned_start is not None)
        if base
        else None
    )
    elapsed = watch.elapsed
    log.info(
        "trained %s (%s, %s) on %d images on %s in %.1f s: %s",
        backbone,
        recipe.training_type,
        recipe,
        len(samples),
        device.name,
        elapsed,
        watch.timings,
    )
    return TrainingResult(
        onnx_model=onnx_bytes,
        fold_predictions=predictions,
        cv_score=kept.score.average_precision,
        cv_log_loss=kept.score.log_loss,
        folds=int(folds.max() + 1),
        recipe=recipe,
        scores={name: candidate.score for name, candidate in candidates.items()},
        backbone=backbone,
        image_size=size,
        export_difference=difference,
        device=device.name,
        model=model,
        calibration=calibration,
        unknown=unknown,
        elapsed=elapsed,
        state=state,
        warm_start=report,
        timings=watch.timings,
        champion_score=champion_cv,
    )
