"""Incremental training (TrainProject's customBaseModelInfo): what a run leaves for a later run to start from,
and how that run takes it back. Every classifier run stores, beside its model, its images' Regular features
keyed by their content (the expensive part: a backbone pass per image), its Regular head and, when fine-tuning
was kept, the fine-tuned blocks and their head. A run from that base computes features only for images the base
did not have, and starts its heads (and fine-tuning) from the base's. A detector run stores its head, which the
next run's heads start from."""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from pipeline.contract.onnx_model import ModelLabel
from training_job.classifier import Classifier, FeatureExtractor
from training_job.finetune import FINETUNE_BLOCKS
from training_job.samples import Sample

WARM_START_FILE = "warm_start.pt"  # the artefact beside model.onnx
H = TypeVar("H", bound=nn.Module)


@dataclass(frozen=True)
class LinearHead:
    """A linear head and the tags its rows score."""

    tag_ids: list[str]
    names: list[str]
    weight: torch.Tensor  # [L, D]
    bias: torch.Tensor  # [L]

    @classmethod
    def of(cls, linear: nn.Linear, labels: Sequence[ModelLabel]) -> LinearHead:
        return cls(
            [label.tag_id for label in labels],
            [label.name for label in labels],
            linear.weight.detach().clone(),
            linear.bias.detach().clone(),
        )

    def for_labels(self, labels: Sequence[ModelLabel]) -> nn.Linear:
        """This head's rows in `labels`' order (`matching_rows`); a tag the base did not know starts at zero."""
        linear = nn.Linear(self.weight.shape[1], len(labels)).requires_grad_(False)
        linear.weight.zero_()
        linear.bias.zero_()
        for index, row in enumerate(matching_rows(self.tag_ids, self.names, labels)):
            if row is not None:
                linear.weight[index] = self.weight[row]
                linear.bias[index] = self.bias[row]
        return linear


def matching_rows(
    tag_ids: Sequence[str], names: Sequence[str], labels: Sequence[ModelLabel]
) -> list[int | None]:
    """For each of `labels`, the base's output row for the same tag: by tag id, else by name (a base from another
    project); None for a tag the base did not know."""
    rows = {tag_id: row for row, tag_id in enumerate(tag_ids)}
    by_name = {name.casefold(): row for row, name in enumerate(names)}
    return [rows.get(label.tag_id, by_name.get(label.name.casefold())) for label in labels]


@dataclass(frozen=True)
class ClassifierState:
    """What one classifier run leaves for the next (`dumps`: the WARM_START_FILE artefact)."""

    backbone: str
    image_size: int
    keys: list[str]  # each image's `feature_key`
    features: torch.Tensor  # [N, V, D] Regular features, as regular.compute_features made them
    regular: LinearHead
    tuned: LinearHead | None = None  # the fine-tuned model's head, when fine-tuning was kept
    tuned_blocks: dict[str, torch.Tensor] | None = None  # its fine-tuned backbone parameters, by name

    def dumps(self) -> bytes:
        return _dumps(
            "classifier",
            {
                "backbone": self.backbone,
                "image_size": self.image_size,
                "keys": self.keys,
                "features": self.features,
                "regular": vars(self.regular),
                "tuned": vars(self.tuned) if self.tuned else None,
                "tuned_blocks": self.tuned_blocks,
            },
        )

    @classmethod
    def loads(cls, data: bytes) -> ClassifierState:
        saved = _loads("classifier", data)
        tuned = saved["tuned"]
        return cls(
            backbone=saved["backbone"],
            image_size=saved["image_size"],
            keys=saved["keys"],
            features=saved["features"],
            regular=LinearHead(**saved["regular"]),
            tuned=LinearHead(**tuned) if tuned else None,
            tuned_blocks=saved["tuned_blocks"],
        )

    def known_features(self, samples: Sequence[Sample], backbone: str, size: int) -> dict[int, np.ndarray]:
        """Row -> [V, D] features of the samples this state has them for (computed by the same backbone at the
        same size; none otherwise)."""
        if (backbone, size) != (self.backbone, self.image_size):
            return {}
        rows = {key: row for row, key in enumerate(self.keys)}
        features = self.features.numpy()
        return {
            index: features[rows[feature_key(sample)]]
            for index, sample in enumerate(samples)
            if feature_key(sample) in rows
        }

    def tuned_start(
        self, extractor: FeatureExtractor, labels: Sequence[ModelLabel]
    ) -> tuple[FeatureExtractor, nn.Linear] | None:
        """Where fine-tuning starts: a copy of `extractor` with the base's fine-tuned blocks and the base's
        fine-tuned head for `labels`; None when the base kept no fine-tuning."""
        if not self.tuned_blocks or self.tuned is None:
            return None
        tuned = copy.deepcopy(extractor)
        _, unexpected = tuned.backbone.load_state_dict(self.tuned_blocks, strict=False)
        if unexpected:
            raise RuntimeError(f"the base's fine-tuned blocks do not fit the backbone: {unexpected}")
        return tuned, self.tuned.for_labels(labels)

    @classmethod
    def of(
        cls,
        backbone: str,
        image_size: int,
        samples: Sequence[Sample],
        labels: Sequence[ModelLabel],
        features: np.ndarray,
        regular: nn.Linear,
        tuned: Classifier | None,
    ) -> ClassifierState:
        """A run's state: its features ([N, V, D]), its Regular final head, and its fine-tuned model if kept."""
        blocks = None
        if tuned is not None:
            network = tuned.features.backbone
            trained = {id(p) for p in network.suffix_parameters(network.num_blocks - FINETUNE_BLOCKS)}
            blocks = {name: p.detach().clone() for name, p in network.named_parameters() if id(p) in trained}
        return cls(
            backbone=backbone,
            image_size=image_size,
            keys=[feature_key(s) for s in samples],
            features=torch.from_numpy(features),
            regular=LinearHead.of(regular, labels),
            tuned=LinearHead.of(tuned.head, labels) if tuned is not None else None,
            tuned_blocks=blocks,
        )


def feature_key(sample: Sample) -> str:
    """What makes two samples' features the same: their content key (the job's: the upload's sha256 and the
    stored copy's size), else their image id."""
    return sample.key or sample.image_id


@dataclass(frozen=True)
class DetectorState:
    """What a detector run leaves for the next: its final head's weights and the tags its class scores are for.
    The backbone is frozen and the views are random crops, so there are no per-image features worth keeping."""

    backbone: str
    image_size: int
    tag_ids: list[str]
    names: list[str]
    head: dict[str, torch.Tensor]

    @classmethod
    def of(
        cls, backbone: str, image_size: int, labels: Sequence[ModelLabel], head: nn.Module
    ) -> DetectorState:
        weights = {name: value.detach().clone() for name, value in head.state_dict().items()}
        return cls(backbone, image_size, [lb.tag_id for lb in labels], [lb.name for lb in labels], weights)

    def dumps(self) -> bytes:
        return _dumps("detector", vars(self))

    @classmethod
    def loads(cls, data: bytes) -> DetectorState:
        return cls(**_loads("detector", data))

    def start(self, fresh: H, labels: Sequence[ModelLabel], backbone: str, image_size: int) -> H | None:
        """`fresh` (a new head for `labels`) with the base's weights: every layer, and the class scores of the
        tags the base knew (a new tag keeps its fresh initialisation); None when the base's head does not fit
        (another backbone, size or head shape)."""
        target = fresh.state_dict()
        if (backbone, image_size) != (self.backbone, self.image_size) or target.keys() != self.head.keys():
            return None
        shared = [name for name in target if name not in _CLASS_SCORES]
        if any(target[name].shape != self.head[name].shape for name in shared):
            return None
        for name in shared:
            target[name] = self.head[name]
        for index, row in enumerate(matching_rows(self.tag_ids, self.names, labels)):
            if row is not None:
                for name in _CLASS_SCORES:
                    target[name][index] = self.head[name][row]
        fresh.load_state_dict(target)
        return fresh


# The detection head's per-tag output (detector.Head's `classes`).
_CLASS_SCORES = ("classes.weight", "classes.bias")


def _dumps(kind: str, content: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    torch.save({"kind": kind, **content}, buffer)
    return buffer.getvalue()


def _loads(kind: str, data: bytes) -> dict[str, Any]:
    """Only tensors, strings and containers (torch's weights_only loader): a blob cannot run code."""
    saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if saved.pop("kind", None) != kind:
        raise ValueError(f"not a {kind}'s warm-start state")
    return saved


@dataclass(frozen=True)
class WarmStartReport:
    """What a run took from its base."""

    reused_features: int
    computed_features: int
    head: bool
    backbone: bool
