"""What a detector run is given (samples, settings), and the cache it trains on: the frozen backbone's
feature levels for every view of every sample (the whole image, then random box-aware crops, flips and colour
changes), computed once in ONNX Runtime, with each view's targets."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from pipeline.contract.detection import DETECTION
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.boxes import Box
from pipeline.vision.preprocessing import preprocess_batch
from training_job.augment import DEFAULT_AUGMENTATION, Methods
from training_job.backbone_passes import backbone_passes
from training_job.classifier import torch_threads
from training_job.common import SEED, label_index, map_groups
from training_job.detection_augment import detection_views
from training_job.detector import Levels, Targets
from training_job.device import CPU, TrainingDevice
from training_job.onnx_export import export_module

CPU_VIEWS_PER_PASS = 8  # one image's whole view and its 7 augmented views


@dataclass(frozen=True)
class DetectorSettings:
    """Every knob of a detector run. Sizes are multiples of 32 (the backbone's coarsest stride)."""

    image_size: int
    augmented_views: int = 7  # random views per image beside the whole image, computed once
    epochs: int = 12  # passes over all views, for each fold model and the final model
    # Passes every head makes even past a budget's deadline (Advanced: Regular's `epochs`), so that a budget spent
    # on tuning the backbone never leaves the heads untrained.
    guaranteed_epochs: int = 0
    batch: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 96  # head channels
    depth: int = 3  # separable convolutions in the head's tower
    max_folds: int = 3
    tune_epochs: int = (
        0  # Advanced: epochs of tuning the stride-32 blocks first (detection_tuning); 0: frozen
    )
    tune_learning_rate: float = 1e-4  # the tuned blocks' rate (the head's is `learning_rate`)
    nms_ious: tuple[
        float, ...
    ] = ()  # Advanced: suppression overlaps to choose among on the folds; () the default
    # The head's output grid: 16, or 8 for small objects (detector.Head).
    finest_stride: int = DETECTION.stride


DEFAULTS = {
    "efficientnet-lite0": DetectorSettings(image_size=320),
    "efficientnet-lite1": DetectorSettings(image_size=352),
    "efficientnet-lite2": DetectorSettings(image_size=384),
}


@dataclass(frozen=True)
class DetectionSample:
    image_id: str
    image: Image.Image
    regions: tuple[Box, ...]


@dataclass
class FeatureCache:
    """The frozen backbone's maps of every view (float16, [V, C, G, G] per level, finest first) and the views'
    targets, on the training device; each view's sample and each sample's whole view."""

    maps: tuple[torch.Tensor, ...]
    targets: Targets
    sample: np.ndarray  # [V] sample index of each view
    first: np.ndarray  # [N] the index of each sample's whole-image view
    device: TrainingDevice = CPU  # where the tensors are, and the heads train

    @property
    def channels(self) -> list[int]:
        return [level.shape[1] for level in self.maps]

    def views(self, index: torch.Tensor, levels: slice = slice(None)) -> tuple[torch.Tensor, ...]:
        """The maps (all, or the `levels` slice of them) of the views `index` (on the cache's device), in float32
        for the heads."""
        return tuple(level[index].float() for level in self.maps[levels])


def _boxes(sample: DetectionSample) -> np.ndarray:
    return np.array([[r.left, r.top, r.width, r.height] for r in sample.regions], dtype=np.float32)


def build_cache(
    samples: Sequence[DetectionSample],
    labels: Sequence[ModelLabel],
    levels: Levels,
    settings: DetectorSettings,
    methods: Methods = DEFAULT_AUGMENTATION,
    device: TrainingDevice = CPU,
) -> FeatureCache:
    """Backbone maps and targets (tags as indexes into `labels`) of every view of every sample, views computed
    in parallel (`map_groups`), the cache held on `device`."""
    size, per_sample = settings.image_size, 1 + settings.augmented_views
    passes = backbone_passes(levels, lambda: export_module(levels, size, levels.names), levels.names, device)
    grid = size // levels.strides[0]
    index = label_index(labels)

    def run(indexes: range) -> tuple[list[np.ndarray], list[Targets]]:
        images, targets = [], []
        for i in indexes:
            sample = samples[i]
            tags = torch.tensor([index[r.tag_id] for r in sample.regions])
            rng = random.Random(SEED * 1_000_003 + i)
            for view, boxes, kept in detection_views(
                sample.image, _boxes(sample), size, settings.augmented_views, rng, methods
            ):
                images.append(view)
                targets.append(Targets.assign(torch.from_numpy(boxes), tags[torch.from_numpy(kept)], grid))
        return [level.astype(np.float16) for level in passes(preprocess_batch(images, size))], targets

    # Single-threaded torch in the workers: the augmentation's small box tensors would otherwise wake every core's
    # thread (torchvision's rotation of boxes: 3 to 4 ms a view on busy cores, against 8 us on one thread).
    with torch_threads(1):
        chunks = map_groups(
            len(samples), max(1, device.views_per_pass(CPU_VIEWS_PER_PASS) // per_sample), run
        )
    return FeatureCache(
        maps=tuple(
            device.tensor(np.concatenate([c[0][level] for c in chunks]))
            for level in range(len(levels.strides))
        ),
        targets=Targets.stack([t for c in chunks for t in c[1]]).to(device.device),
        sample=np.repeat(np.arange(len(samples)), per_sample),
        first=np.arange(len(samples)) * per_sample,
        device=device,
    )
