"""One training job run: receive a message from the `training` queue, train the iteration it names, store the
model and its evaluation, and mark the iteration Completed or Failed. The queue gives the retries: a job that
crashes or is killed leaves its message to reappear, and the run that sees it past the last try fails it."""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueMessage

from pipeline.contract.evaluation import EvaluatedImage, EvaluatedLabel, EvaluationRecord
from pipeline.contract.onnx_model import model_label
from pipeline.contract.training import TrainingMessage
from pipeline.core.augmentation import enabled_methods
from pipeline.core.boxes import Box
from pipeline.core.domains import DOMAINS, domain_of
from pipeline.core.settings import Settings, get_settings
from pipeline.core.vocabulary import (
    ClassificationType,
    DomainType,
    IterationStatus,
    PublishDecision,
    TagType,
    TrainingType,
)
from pipeline.store import StorageAccount, get_storage
from pipeline.store.images import ImageStore
from pipeline.store.iterations import IterationStore, artefact_name, unpublished
from pipeline.store.projects import ProjectStore
from pipeline.store.records import CalibrationRecord, IterationRecord, WarmStartRecord, utcnow
from training_job import queue_job
from training_job.champion import ChampionRecipe, Score, decide, find_champion, recipe_of
from training_job.common import TrainingInputError, label_index
from training_job.data import TrainingData, load_training_data
from training_job.device import CPU, CPU_NAME, TrainingDevice, select_device
from training_job.notify import notify_training
from training_job.queue_job import FailNow, JobQueue, Work, configure_logging, nudge_pipe, run_once

if TYPE_CHECKING:
    from training_job.warm_start import WarmStartReport

log = logging.getLogger("training_job")

CLASSIFIER_TRAINING_MODULES = ("training_job.samples", "training_job.train")  # imported on first use
DETECTOR_TRAINING_MODULES = ("training_job.detect", "training_job.warm_start")  # torchvision: 1.6 s, 160 MiB


class TrainingDataError(FailNow):
    """A problem retrying cannot fix (the training set changed under the request): fail at once."""


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run one Seer training job from the training queue.")
    parser.add_argument("--queue", help="queue to read (default: the SEER_TRAINING_QUEUE setting)")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when no request is waiting, wait up to SECONDS for one: a standby execution, started before its "
        "request so that its imports are done when the request comes (devhost --standby-job); a line on standard "
        "input, when it is a pipe, makes it ask the queue at once",
    )
    return parser


def _budget(iteration: IterationRecord) -> float | None:
    """Advanced training's reserved budget, in seconds; Regular training has none."""
    return (
        iteration.reserved_budget_in_hours * 3600
        if iteration.training_type == TrainingType.ADVANCED
        else None
    )


@dataclass(frozen=True)
class Trained:
    """What a trainer hands back: the model, its evaluation and scores, other artefacts by file name, and what
    the run took from its base iteration."""

    onnx_model: bytes
    evaluation: EvaluationRecord
    score: Score  # out of fold
    champion_score: Score | None = None  # the champion's recipe on the same folds, when one was given
    calibration: CalibrationRecord | None = None  # a classifier's (pipeline.store.records.CalibrationRecord)
    artefacts: dict[str, bytes] = field(default_factory=dict)
    warm_start: WarmStartRecord | None = None
    device: str = CPU_NAME  # what trained it (training_job.device)


def _base_state(account: StorageAccount, iteration: IterationRecord) -> bytes | None:
    """The base iteration's warm-start artefact; None without a base, or when the base has none (trained before
    they were kept, or deleted since the request): the run then starts from scratch and says so."""
    if not (iteration.base_project_id and iteration.base_iteration_id):
        return None
    from training_job.warm_start import WARM_START_FILE

    name = artefact_name(iteration.base_project_id, iteration.base_iteration_id, WARM_START_FILE)
    try:
        return IterationStore(account).read_artefact(name)
    except ResourceNotFoundError:
        log.warning("base iteration %s has no %s: training from scratch", iteration.base_iteration_id, name)
        return None


def _warm_start(
    iteration: IterationRecord, images: int, timings: dict[str, float], report: WarmStartReport | None = None
) -> WarmStartRecord | None:
    """What a run with a base took from it (nothing, when the base left no state); None without a base."""
    if not iteration.base_iteration_id:
        return None
    if report is None:
        return WarmStartRecord(computed_features=images, timings=timings)
    return WarmStartRecord(**vars(report), timings=timings)


def _classifier(
    account: StorageAccount,
    data: TrainingData,
    iteration: IterationRecord,
    backbone: str,
    champion: ChampionRecipe | None,
    device: TrainingDevice,
) -> Trained:
    from training_job.samples import Sample
    from training_job.train import train_classifier
    from training_job.warm_start import WARM_START_FILE, ClassifierState

    labels = [model_label(t) for t in data.tags]
    index = label_index(labels)
    samples = [
        Sample(
            image_id=i.record.id,
            image=i.image,
            labels={index[t] for t in i.record.tag_ids if t in index},
            key=f"{i.record.content_hash}:{i.image.width}x{i.image.height}",
        )
        for i in data.images
    ]
    stored = _base_state(account, iteration)
    truths = {i.record.id: sorted(i.record.tag_ids & index.keys()) for i in data.images}
    result = train_classifier(
        samples,
        labels,
        multilabel=iteration.classification_type == ClassificationType.MULTILABEL,
        backbone=backbone,
        training_type=iteration.training_type,
        budget_seconds=_budget(iteration),
        augmentation=enabled_methods(iteration.augmentation_methods),
        champion=champion,
        base=ClassifierState.loads(stored) if stored else None,
        device=device,
    )
    evaluation = EvaluationRecord(
        classification_type=iteration.classification_type,
        labels=[EvaluatedLabel(tag_id=t.id, name=t.name, type=t.type) for t in data.tags],
        images=[
            EvaluatedImage(
                image_id=p.image_id,
                fold=p.fold,
                truth=truths[p.image_id],
                probabilities=p.probabilities,
            )
            for p in result.fold_predictions
        ],
    )
    calibration = CalibrationRecord(
        temperature=result.calibration.temperature,
        ece_before=result.calibration.ece_before,
        ece_after=result.calibration.ece_after,
        unknown_threshold=result.unknown.threshold,
        unknown_training_rate=result.unknown.known_above,
    )
    champion_score = None if result.champion_score is None else result.champion_score.comparable()
    return Trained(
        result.onnx_model,
        evaluation,
        result.scores[result.recipe].comparable(),
        champion_score,
        calibration,
        {WARM_START_FILE: result.state.dumps()},
        _warm_start(iteration, len(samples), result.timings, result.warm_start),
        result.device,
    )


def _detector(
    account: StorageAccount,
    data: TrainingData,
    iteration: IterationRecord,
    backbone: str,
    champion: ChampionRecipe | None,
    device: TrainingDevice,
) -> Trained:
    """Images train a detector through their regions of the iteration's tags (whole-image tags do not count)."""
    from training_job.detect import train_detector
    from training_job.detection_cache import DetectionSample
    from training_job.onnx_export import discard_prepared_backbones
    from training_job.warm_start import WARM_START_FILE, DetectorState

    wanted = {t.id for t in data.tags if t.type != TagType.NEGATIVE}
    regions = {
        i.record.id: [
            box
            for box in (Box(r.tag_id, r.left, r.top, r.width, r.height) for r in i.record.regions)
            if box.tag_id in wanted and box.has_area
        ]
        for i in data.images
    }
    found = {r.tag_id for kept in regions.values() for r in kept}
    tags = [t for t in data.tags if t.id in found]
    samples = [
        DetectionSample(image_id=i.record.id, image=i.image, regions=tuple(regions[i.record.id]))
        for i in data.images
        if regions[i.record.id]
    ]
    discard_prepared_backbones()
    stored = _base_state(account, iteration)
    result = train_detector(
        samples,
        [model_label(t) for t in tags],
        backbone=backbone,
        training_type=iteration.training_type,
        budget_seconds=_budget(iteration),
        augmentation=enabled_methods(iteration.augmentation_methods),
        champion=champion,
        base=DetectorState.loads(stored) if stored else None,
        device=device,
    )
    evaluation = EvaluationRecord(
        classification_type=None,
        domain_type=DomainType.OBJECT_DETECTION,
        labels=[EvaluatedLabel(tag_id=t.id, name=t.name, type=t.type) for t in tags],
        images=[
            EvaluatedImage(
                image_id=p.image_id,
                fold=p.fold,
                truth=sorted({r.tag_id for r in regions[p.image_id]}),
                regions=regions[p.image_id],
                detections=p.detections,
            )
            for p in result.fold_predictions
        ],
    )
    champion_score = (
        None if result.champion_score is None else Score(result.champion_score, (result.champion_score,))
    )
    return Trained(
        result.onnx_model,
        evaluation,
        Score(result.cv_score, (result.cv_score,)),
        champion_score,
        artefacts={WARM_START_FILE: result.state.dumps()},
        warm_start=_warm_start(iteration, len(samples), result.timings, result.warm_start),
        device=result.device,
    )


def _contest(account: StorageAccount, iteration: IterationRecord) -> tuple[bool, IterationRecord | None]:
    """Whether this run competes with the published iteration (a scheduled retrain of a project that publishes
    only better retrains), and the champion it competes with (None: nothing is published)."""
    project = ProjectStore(account).get(iteration.project_id)
    if not iteration.scheduled or project is None or not project.publish_better_retrains:
        return False, None
    return True, find_champion(IterationStore(account).list(iteration.project_id), iteration)


def _outcome(
    account: StorageAccount, champion: IterationRecord | None, trained: Trained
) -> dict[str, object]:
    """The challenger's decision and scores, and the champion's publish name and resource when it takes them
    (read again now: a champion unpublished while the challenger trained leaves nothing to replace)."""
    decision = decide(trained.score, trained.champion_score)
    fields: dict[str, object] = {
        "publish_decision": decision,
        "champion_iteration_id": champion.id if champion else None,
        "champion_score": trained.champion_score.value if trained.champion_score else None,
        "challenger_score": trained.score.value,
    }
    if decision == PublishDecision.PUBLISHED:
        assert champion is not None
        current = IterationStore(account).get(champion.project_id, champion.id)
        if current is None or current.publish_name != champion.publish_name:
            fields["publish_decision"] = PublishDecision.NO_CHAMPION
        else:
            fields["publish_name"] = current.publish_name
            fields["original_publish_resource_id"] = current.original_publish_resource_id
    return fields


def train_iteration(
    account: StorageAccount, iteration: IterationRecord, device: TrainingDevice = CPU
) -> IterationRecord:
    """Train on `device`, export and evaluate; store the artefacts; return the iteration as Completed (for a
    scheduled retrain that competes with the published iteration, with the outcome: training_job/champion)."""
    started = time.monotonic()
    data: TrainingData = load_training_data(account, iteration)
    if not data.images:
        raise TrainingDataError("The project has no tagged images any more.")
    domain = domain_of(iteration.domain_id)
    trainer = _detector if domain.type == DomainType.OBJECT_DETECTION else _classifier
    store = IterationStore(account)
    contested, champion = _contest(account, iteration)
    recipe = None
    if champion is not None and champion.evaluation_blob:
        recipe = recipe_of(champion, EvaluationRecord.loads(store.read_artefact(champion.evaluation_blob)))
    try:
        trained = trainer(account, data, iteration, domain.backbone, recipe, device)
    except TrainingInputError as error:
        raise TrainingDataError(str(error)) from error
    ImageStore(account).write_snapshot(iteration.project_id, iteration.id, [i.record for i in data.images])
    model_blob = artefact_name(iteration.project_id, iteration.id, "model.onnx")
    evaluation_blob = artefact_name(iteration.project_id, iteration.id, "evaluation.json")
    for file, content in trained.artefacts.items():
        store.put_artefact(artefact_name(iteration.project_id, iteration.id, file), content)
    store.put_artefact(model_blob, trained.onnx_model)
    store.put_artefact(evaluation_blob, trained.evaluation.dumps())
    minutes = math.ceil((time.monotonic() - started) / 60)
    return iteration.model_copy(
        update={
            "status": IterationStatus.COMPLETED,
            "trained_at": utcnow(),
            "last_modified": utcnow(),
            "training_time_in_minutes": minutes,
            "model_blob": model_blob,
            "evaluation_blob": evaluation_blob,
            "calibration": trained.calibration,
            "training_error_details": None,
            **(_outcome(account, champion, trained) if contested else {}),
            "warm_start": trained.warm_start,
            "training_device": trained.device,
        }
    )


def finish(
    account: StorageAccount,
    settings: Settings,
    iteration: IterationRecord,
    status: IterationStatus,
    details: str | None = None,
) -> None:
    """Record the outcome (only if the iteration still exists and is still training) and notify."""

    def apply(current: IterationRecord) -> IterationRecord | None:
        if current.status != IterationStatus.TRAINING:
            return None
        if status == IterationStatus.COMPLETED:
            return iteration
        return current.model_copy(
            update={"status": status, "training_error_details": details, "last_modified": utcnow()}
        )

    store = IterationStore(account)
    stored = store.update(iteration.project_id, iteration.id, apply)
    if stored is not None and stored.publish_decision == PublishDecision.PUBLISHED:
        _retire_champion(store, stored)
    project = ProjectStore(account).get(iteration.project_id)
    if stored is not None and project is not None:
        notify_training(account, settings, project, stored)


def _retire_champion(store: IterationStore, challenger: IterationRecord) -> None:
    """Unpublish the champion a challenger replaced, unless its name changed meanwhile. The challenger was
    published first (in the write that completed it), so the name never stops answering; until this write the
    prediction URL still finds the champion, the older holder of the name."""
    assert challenger.champion_iteration_id is not None
    store.update(
        challenger.project_id,
        challenger.champion_iteration_id,
        lambda i: unpublished(i) if i.publish_name == challenger.publish_name else None,
    )


def _queue(settings: Settings, name: str) -> JobQueue:
    return JobQueue(name, settings.training_visibility_timeout_seconds, settings.training_max_attempts)


def _work(account: StorageAccount, settings: Settings) -> Work[TrainingMessage, IterationRecord]:
    """The training work, on the device the settings choose (chosen before any message is taken: a job asked
    to train on a GPU it lacks fails at once and leaves the queue as it was)."""
    iterations = IterationStore(account)
    device = select_device(settings.training_device)

    def load(request: TrainingMessage) -> IterationRecord | None:
        iteration = iterations.get(request.project_id, request.iteration_id)
        return iteration if iteration is not None and iteration.status == IterationStatus.TRAINING else None

    def run(request: TrainingMessage, iteration: IterationRecord) -> None:
        finish(account, settings, train_iteration(account, iteration, device), IterationStatus.COMPLETED)

    def fail(
        request: TrainingMessage, iteration: IterationRecord, reason: str, error: Exception | None
    ) -> None:
        finish(account, settings, iteration, IterationStatus.FAILED, reason)

    return Work(
        noun="training request",
        decode=TrainingMessage.decode,
        describe=lambda request: f"training iteration {request.iteration_id}",
        load=load,
        run=run,
        fail=fail,
    )


def handle(account: StorageAccount, settings: Settings, queue_name: str, message: QueueMessage) -> int:
    """Settle one training message (see training_job.queue_job)."""
    return queue_job.handle(account, _queue(settings, queue_name), message, _work(account, settings))


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = get_args_parser().parse_args(argv)
    settings = get_settings()
    account = get_storage()
    work = _work(account, settings)
    queue = _queue(settings, args.queue or settings.training_queue)
    if args.wait <= 0:
        return run_once(account, queue, work)
    prepare_classifier_training()
    return run_once(account, queue, work, args.wait, nudge_pipe(), while_idle=prepare_detector_training)


def prepare_classifier_training(backbones: Iterable[str] | None = None) -> None:
    """Import what training a classifier imports on first use (seconds: the ONNX exporter, the backbones), and
    load and export `backbones` (by default every classification domain's), so that a standby execution spends
    that time before its request rather than after."""
    for module in CLASSIFIER_TRAINING_MODULES:
        importlib.import_module(module)
    from training_job.onnx_export import prepare_backbones

    if backbones is None:
        backbones = sorted({d.backbone for d in DOMAINS if d.type == DomainType.CLASSIFICATION})
    prepare_backbones(backbones)


def prepare_detector_training() -> None:
    """Import detection's modules too, once a standby execution has found no request waiting: they import
    torchvision, which a classifier run never needs and a request already queued should not wait for."""
    for module in DETECTOR_TRAINING_MODULES:
        importlib.import_module(module)
