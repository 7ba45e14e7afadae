"""Training on a GPU when there is one (issue 16, item 1): the device a run chooses, the GPU path's backbone passes
computing what the CPU path's ONNX Runtime passes compute, and, where this machine has a CUDA GPU, a classifier
(Advanced: fine-tuned blocks) and a detector trained on it that export and pass the same check as on the CPU.
The CPU runs are every other training test's; they record "cpu" (asserted in test_training_core and
test_incremental_training)."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest
import torch

from pipeline.contract.onnx_model import FEATURES
from pipeline.core.settings import Settings
from pipeline.vision.preprocessing import preprocess_batch
from tests.trained_models import (
    BACKBONE,
    COLOURS,
    DETECTION_LABELS,
    classifier_pictures,
    detection_pictures,
)
from training_job.backbone_passes import onnx_passes, torch_passes
from training_job.backbones import get_spec
from training_job.classifier import feature_extractor
from training_job.detection_cache import DetectionSample, DetectorSettings
from training_job.detector import Levels
from training_job.device import CPU, DeviceUnavailableError, select_device
from training_job.onnx_export import TOLERANCE, export_features, export_module

NO_GPU = not torch.cuda.is_available()


def test_cpu_is_chosen_when_asked_and_auto_follows_what_torch_sees() -> None:
    assert select_device("cpu") == CPU and CPU.name == "cpu" and not CPU.is_cuda
    auto = select_device("auto")
    assert auto.is_cuda == torch.cuda.is_available()
    assert auto.name == "cpu" if NO_GPU else auto.name.startswith("cuda (")


def test_auto_takes_a_gpu_that_torch_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    """The choice alone (nothing runs on the device): with a GPU visible, auto names it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Test GPU")
    chosen = select_device("auto")
    assert chosen.device == torch.device("cuda") and chosen.name == "cuda (Test GPU)"
    assert chosen.is_cuda and chosen.views_per_pass(4) > 4
    assert select_device("cpu") == CPU


@pytest.mark.skipif(not NO_GPU, reason="this machine has a CUDA GPU")
def test_asking_for_a_gpu_that_is_not_there_fails_loudly() -> None:
    with pytest.raises(DeviceUnavailableError, match="SEER_TRAINING_DEVICE is cuda but torch sees no GPU"):
        select_device("cuda")


def test_the_setting_takes_only_the_known_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEER_TRAINING_DEVICE", "cpu")
    assert Settings().training_device == "cpu"
    assert Settings.model_fields["training_device"].default == "auto"
    monkeypatch.setenv("SEER_TRAINING_DEVICE", "tpu")
    with pytest.raises(pydantic.ValidationError, match="training_device"):
        Settings()


def test_torch_passes_compute_what_the_onnx_passes_compute() -> None:
    """The GPU path runs the torch backbone where the CPU path runs its ONNX export; here both run on the CPU,
    so any difference is the path's, not the device's."""
    size = get_spec(BACKBONE).image_size
    pixels = preprocess_batch([image for image, _ in classifier_pictures(per_colour=1)], size)
    extractor = feature_extractor(BACKBONE)
    (onnx_features,) = onnx_passes(export_features(extractor, size), [FEATURES])(pixels)
    (torch_features,) = torch_passes(extractor, CPU)(pixels)
    assert onnx_features.shape == torch_features.shape == (len(COLOURS), 1280)
    assert np.abs(onnx_features - torch_features).max() < TOLERANCE * 10

    levels = Levels(extractor.backbone).eval()
    from_onnx = onnx_passes(export_module(levels, 192, levels.names), levels.names)(
        pixels[:, :, :192, :192].copy()
    )
    from_torch = torch_passes(levels, CPU)(pixels[:, :, :192, :192].copy())
    for ours, theirs in zip(from_torch, from_onnx, strict=True):
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < TOLERANCE * 10


@pytest.mark.skipif(
    NO_GPU, reason="no CUDA GPU on this machine: the GPU path's passes are proven equal above"
)
def test_a_gpu_trains_models_that_export_and_pass_the_cpu_check() -> None:
    from pipeline.contract.onnx_model import ModelLabel
    from training_job.detect import train_detector
    from training_job.samples import Sample
    from training_job.train import train_classifier

    gpu = select_device("cuda")
    labels = [ModelLabel(f"t-{name}", name) for name in COLOURS]
    samples = [Sample(f"s-{n}", image, {index}) for n, (image, index) in enumerate(classifier_pictures())]
    classifier = train_classifier(
        samples,
        labels,
        multilabel=False,
        backbone=BACKBONE,
        training_type="Advanced",
        budget_seconds=120,
        device=gpu,
    )
    assert classifier.device == gpu.name and classifier.export_difference < TOLERANCE
    assert next(classifier.model.parameters()).device.type == "cpu"

    # test_detection_core's settings: its CPU run scores about 0.73 on these scenes, and the GPU run must match
    # it within noise
    scenes = [
        DetectionSample(f"scene-{n}", image, boxes)
        for n, (image, boxes) in enumerate(detection_pictures(range(24)))
    ]
    settings = DetectorSettings(image_size=192, augmented_views=3, epochs=30, max_folds=2)
    detector = train_detector(scenes, DETECTION_LABELS, backbone=BACKBONE, settings=settings, device=gpu)
    on_cpu = train_detector(scenes, DETECTION_LABELS, backbone=BACKBONE, settings=settings, device=CPU)
    assert detector.device == gpu.name and on_cpu.device == CPU.name
    assert detector.cv_score > on_cpu.cv_score - 0.1, (detector.cv_score, on_cpu.cv_score)
    assert next(detector.model.parameters()).device.type == "cpu"
