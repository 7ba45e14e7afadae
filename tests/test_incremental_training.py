"""Incremental training (issue 14): a retrain from a base iteration, through the training job on real storage,
reuses the base's features of the images it had, reports what it started from, and cross-validates as a run from
scratch on the same images does. The API's refusals are tests/test_incremental_api.py's."""

from __future__ import annotations

import uuid

import numpy as np
import torch
from fastapi.testclient import TestClient

from pipeline.contract.evaluation import EvaluationRecord
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import IterationStatus
from pipeline.services.images_create import NewImage, create_images
from pipeline.services.projects import create_project
from pipeline.services.tags import create_tag
from pipeline.services.training import request_training
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from pipeline.store.records import IterationRecord
from tests.conftest import COMPACT_DOMAIN
from tests.images import pattern_image
from tests.trained_models import BACKBONE, DETECTION_LABELS, detection_pictures
from training_job.classifier import Classifier, feature_extractor
from training_job.detect import train_detector
from training_job.detection_cache import DetectionSample, DetectorSettings
from training_job.detector import Head
from training_job.finetune import FINETUNE_BLOCKS
from training_job.job import finish, train_iteration
from training_job.warm_start import ClassifierState, DetectorState

PREVIEW = "/customvision/v3.4-preview/training/projects"


def _trained(account: StorageAccount, settings: Settings, iteration: IterationRecord) -> IterationRecord:
    """What the training job does with the iteration's queue message, in this process."""
    finish(account, settings, train_iteration(account, iteration), IterationStatus.COMPLETED)
    stored = IterationStore(account).get(iteration.project_id, iteration.id)
    assert stored is not None and stored.status == IterationStatus.COMPLETED
    return stored


def _out_of_fold(account: StorageAccount, iteration: IterationRecord) -> dict[str, dict[str, float]]:
    assert iteration.evaluation_blob
    evaluation = EvaluationRecord.loads(IterationStore(account).read_artefact(iteration.evaluation_blob))
    return {image.image_id: image.probabilities for image in evaluation.images}


def test_a_retrain_from_a_base_reuses_its_features_and_scores_as_from_scratch(
    account: StorageAccount, settings: Settings, client: TestClient
) -> None:
    project = create_project(account, settings, f"incremental-{uuid.uuid4()}", domain_id=COMPACT_DOMAIN)
    tags = [create_tag(account, settings, project.id, name).id for name in ("warm", "cool")]

    def upload(seeds: range) -> None:
        for kind, tag in enumerate(tags):
            batch = [NewImage(data=pattern_image(kind, seed), tag_ids=(tag,)) for seed in seeds]
            create_images(account, settings, project.id, batch)

    upload(range(6))
    first = _trained(account, settings, request_training(account, settings, project.id))
    upload(range(6, 8))  # two new images per tag

    warm = _trained(
        account, settings, request_training(account, settings, project.id, base_model=(project.id, first.id))
    )
    scratch = _trained(account, settings, request_training(account, settings, project.id, force_train=True))

    assert warm.warm_start is not None and scratch.warm_start is None
    assert (warm.warm_start.reused_features, warm.warm_start.computed_features) == (12, 4)
    assert warm.warm_start.head and not warm.warm_start.backbone  # Regular training: no fine-tuned blocks
    assert warm.warm_start.timings["features"] > 0
    # The reused features are the ones a fresh pass computes, and the heads converge to the same optimum from
    # either start: the same out-of-fold probabilities, so the same cross-validated quality.
    ours, theirs = _out_of_fold(account, warm), _out_of_fold(account, scratch)
    assert ours.keys() == theirs.keys() and len(ours) == 16
    difference = max(abs(p - theirs[image][tag]) for image, row in ours.items() for tag, p in row.items())
    assert difference < 1e-3

    answered = client.get(f"{PREVIEW}/{project.id}/iterations/{warm.id}").json()
    assert answered["customBaseModelInfo"] == {"projectId": project.id, "iterationId": first.id}
    assert answered["warmStart"]["reusedFeatures"] == 12 and answered["warmStart"]["computedFeatures"] == 4
    assert "warmStart" not in client.get(f"{PREVIEW}/{project.id}/iterations/{scratch.id}").json()
    assert warm.training_device == "cpu" and answered["trainingDevice"] == "cpu"


def test_a_fine_tuned_state_restores_its_blocks_and_head() -> None:
    """What Advanced training leaves (its fine-tuned last blocks and head) is where the next Advanced run's
    fine-tuning starts, for the labels it still has; a new tag's head row starts at zero."""
    extractor = feature_extractor("efficientnet-lite0")
    labels = [ModelLabel("t-a", "a"), ModelLabel("t-b", "b")]
    head = torch.nn.Linear(1280, 2).requires_grad_(False)
    tuned = Classifier(feature_extractor("efficientnet-lite0"), head, multilabel=False)
    network = tuned.features.backbone
    changed = network.suffix_parameters(network.num_blocks - FINETUNE_BLOCKS)
    with torch.no_grad():
        for parameter in changed:
            parameter.add_(0.5)
    no_images = np.zeros((0, 1, 1280), dtype=np.float32)
    state = ClassifierState.of("efficientnet-lite0", 224, [], labels, no_images, head, tuned)
    restored = ClassifierState.loads(state.dumps())
    assert restored.tuned_blocks is not None and len(restored.tuned_blocks) == len(changed)

    started = restored.tuned_start(extractor, [ModelLabel("t-c", "c"), ModelLabel("t-b", "b")])
    assert started is not None
    start_extractor, start_head = started
    for ours, theirs in zip(
        start_extractor.state_dict().values(), tuned.features.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs)
    assert torch.equal(start_head.weight[1], head.weight[1]) and not start_head.weight[0].any()


def test_a_detector_starts_its_heads_from_its_base() -> None:
    """A detector keeps no per-image features (random crops, frozen backbone); its heads start from the base's
    final head (the tags it knew; a new tag fresh) for half the epochs, and it still finds the boxes."""
    settings = DetectorSettings(image_size=192, augmented_views=2, epochs=16, max_folds=2)
    pictures = detection_pictures(range(16))
    scenes = [DetectionSample(f"scene-{n}", image, boxes) for n, (image, boxes) in enumerate(pictures)]
    base = train_detector(scenes[:12], DETECTION_LABELS, backbone=BACKBONE, settings=settings)
    state = DetectorState.loads(base.state.dumps())
    warm = train_detector(scenes, DETECTION_LABELS, backbone=BACKBONE, settings=settings, base=state)
    assert warm.warm_start is not None and warm.warm_start.head and warm.warm_start.computed_features == 16
    assert warm.cv_score > 0.5, warm.cv_score

    renamed = [DETECTION_LABELS[1], ModelLabel("t-green", "green")]
    channels = state.head["fine.weight"].shape[1], state.head["coarse.weight"].shape[1]
    fresh = Head(channels, len(renamed), settings.width, settings.depth)
    started = state.start(fresh, renamed, BACKBONE, 192)
    assert started is not None
    assert torch.equal(started.classes.weight[0], state.head["classes.weight"][1])  # blue, the base's second
    assert torch.equal(started.tower[0].weight, state.head["tower.0.weight"])
    assert state.start(fresh, renamed, BACKBONE, 224) is None  # another size: another head
