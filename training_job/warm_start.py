"""Incremental training (TrainProject's customBaseModelInfo): what a classifier run leaves for a later run to
start from, and how that run takes it back. Every run stores, beside its model, its images' Regular features
keyed by their content (the expensive part: a backbone pass per image), its Regular head and, when fine-tuning
was kept, the fine-tuned blocks and their head. A run from that base computes features only for images the base
did not have, and starts its heads (and fine-tuning) from the base's."""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pipeline.contract.onnx_model import ModelLabel
from training_job.classifier import Classifier, FeatureExtractor
from training_job.finetune import FINETUNE_BLOCKS
from training_job.samples import Sample

WARM_START_FILE = "warm_start.pt"  # the artefact beside model.onnx


@dataclass(frozen=True)
class Head:
    """A linear head and the tags its rows score."""

    tag_ids: list[str]
    names: list[str]
    weight: torch.Tensor  # [L, D]
    bias: torch.Tensor  # [L]

    @classmethod
    def of(cls, linear: nn.Linear, labels: Sequence[ModelLabel]) -> Head:
        return cls(
            [label.tag_id for label in labels],
            [label.name for label in labels],
            linear.weight.detach().clone(),
            linear.bias.detach().clone(),
        )

    def for_labels(self, labels: Sequence[ModelLabel]) -> nn.Linear:
        """This head's rows in `labels`' order, matched by tag id, else by name (a base from another project);
        a tag the base did not know starts at zero."""
        rows = {tag_id: row for row, tag_id in enumerate(self.tag_ids)}
        by_name = {name.casefold(): row for row, name in enumerate(self.names)}
        linear = nn.Linear(self.weight.shape[1], len(labels)).requires_grad_(False)
        linear.weight.zero_()
        linear.bias.zero_()
        for index, label in enumerate(labels):
            row = rows.get(label.tag_id, by_name.get(label.name.casefold()))
            if row is not None:
                linear.weight[index] = self.weight[row]
                linear.bias[index] = self.bias[row]
        return linear


@dataclass(frozen=True)
class ClassifierState:
    """What one classifier run leaves for the next (`dumps`: the WARM_START_FILE artefact)."""

    backbone: str
    image_size: int
    keys: list[str]  # each image's `feature_key`
    features: torch.Tensor  # [N, V, D] Regular features, as regular.compute_features made them
    regular: Head
    tuned: Head | None = None  # the fine-tuned model's head, when fine-tuning was kept
    tuned_blocks: dict[str, torch.Tensor] | None = None  # its fine-tuned backbone parameters, by name

    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(
            {
                "backbone": self.backbone,
                "image_size": self.image_size,
                "keys": self.keys,
                "features": self.features,
                "regular": vars(self.regular),
                "tuned": vars(self.tuned) if self.tuned else None,
                "tuned_blocks": self.tuned_blocks,
            },
            buffer,
        )
        return buffer.getvalue()

    @classmethod
    def loads(cls, data: bytes) -> ClassifierState:
        """Only tensors, strings and containers (torch's weights_only loader): a blob cannot run code."""
        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        tuned = saved["tuned"]
        return cls(
            backbone=saved["backbone"],
            image_size=saved["image_size"],
            keys=saved["keys"],
            features=saved["features"],
            regular=Head(**saved["regular"]),
            tuned=Head(**tuned) if tuned else None,
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
            regular=Head.of(regular, labels),
            tuned=Head.of(tuned.head, labels) if tuned is not None else None,
            tuned_blocks=blocks,
        )


def feature_key(sample: Sample) -> str:
    """What makes two samples' features the same: their content key (the job's: the upload's sha256 and the
    stored copy's size), else their image id."""
    return sample.key or sample.image_id


@dataclass(frozen=True)
class WarmStartReport:
    """What a run took from its base."""

    reused_features: int
    computed_features: int
    head: bool
    backbone: bool
