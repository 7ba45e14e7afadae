"""Regular training: the frozen backbone's pooled features are computed once per image (`BackboneFeatures`: ONNX
Runtime on the CPU, torch on a GPU), and a linear head is fitted on them; cross-validation refits only
the head, so every image gets its out-of-fold prediction cheaply."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from torch import nn

from pipeline.contract.onnx_model import FEATURES
from training_job.backbone_passes import backbone_passes
from training_job.classifier import Classifier, FeatureExtractor, fit_head, head_targets, probabilities
from training_job.device import CPU, TrainingDevice
from training_job.samples import BATCH, Sample, map_views
from training_job.scoring import Candidate, score

# Augmented views per image beside the serving view. A linear head on frozen features gained nothing from them
# (hymenoptera val: 96.1 % accuracy with 0, 1, 2 or 3, log loss best with 0; out-of-fold on 61 of its training
# images and on the quickstart, within noise) and each one costs a backbone pass; fine-tuning needs them.
REGULAR_AUGMENTED_VIEWS = 0
WEIGHT_DECAY = 1e-2  # head L2: best val log loss on hymenoptera among 1e-3..3e-2 (accuracy within 1 image)


@dataclass(frozen=True)
class BackboneFeatures:
    """How a run computes pooled features (`backbone_passes`: ONNX Runtime on the CPU, torch on a GPU, in
    GPU-sized batches there)."""

    extractor: FeatureExtractor
    exported: onnx.ModelProto  # `extractor` as ONNX (onnx_export.export_features)
    device: TrainingDevice = CPU

    def compute(
        self, samples: Sequence[Sample], size: int, known: Mapping[int, np.ndarray] | None = None
    ) -> np.ndarray:
        """[N, V, D] pooled features of every view of every sample; rows in `known` (a base iteration's, by sample
        index) are taken as they are instead."""
        rows = dict(known or {})
        missing = [i for i in range(len(samples)) if i not in rows]
        if missing:
            computed = map_views(
                [samples[i] for i in missing],
                size,
                REGULAR_AUGMENTED_VIEWS,
                self._runner(),
                views_per_pass=self.device.views_per_pass(BATCH),
            )
            views = np.concatenate(computed).reshape(len(missing), 1 + REGULAR_AUGMENTED_VIEWS, -1)
            rows.update(zip(missing, views, strict=True))
        return np.stack([rows[i] for i in range(len(samples))])

    def _runner(self) -> Callable[[np.ndarray], np.ndarray]:
        passes = backbone_passes(self.extractor, lambda: self.exported, [FEATURES], self.device)
        return lambda pixels: passes(pixels)[0]


def fit_on_views(
    features: np.ndarray, truth: np.ndarray, multilabel: bool, initial: nn.Linear | None = None
) -> nn.Linear:
    """A head fitted on every view of the given samples ([n, V, D] features, [n, L] truth), from `initial`."""
    views_per_sample = features.shape[1]
    rows = torch.from_numpy(features.reshape(-1, features.shape[-1]))
    targets = head_targets(np.repeat(truth, views_per_sample, axis=0), multilabel)
    return fit_head(rows, targets, truth.shape[1], multilabel, WEIGHT_DECAY, initial)


# Fits a head on pooled features: ([n, V, D] features, [n, L] truth) -> a head on [*, D] features.
HeadFit = Callable[[np.ndarray, np.ndarray], nn.Linear]


def out_of_fold(
    features: np.ndarray,
    truth: np.ndarray,
    folds: np.ndarray,
    multilabel: bool,
    trainable: np.ndarray | None = None,
    initial: nn.Linear | None = None,
    fit: HeadFit | None = None,
) -> tuple[np.ndarray, list[nn.Linear]]:
    """Each sample's probabilities from a head fitted on the other folds' samples, only the `trainable` ones
    when given (a published iteration's recipe on what it was trained on: training_job/champion); and each
    fold's head, fitted by `fit` (default: Regular's `fit_on_views`, from `initial` when given). A fold with
    nothing to train on predicts each tag's chance level."""

    def regular(fold_features: np.ndarray, fold_truth: np.ndarray) -> nn.Linear:
        return fit_on_views(fold_features, fold_truth, multilabel, initial)

    fit = fit or regular
    oof = np.full(truth.shape, 0.5 if multilabel else 1 / truth.shape[1], dtype=np.float32)
    heads = []
    for fold in range(folds.max() + 1):
        train, held = folds != fold, folds == fold
        if trainable is not None:
            train &= trainable
        if not train.any():
            continue
        head = fit(features[train], truth[train])
        oof[held] = probabilities(head(torch.from_numpy(features[held, 0])), multilabel).numpy()
        heads.append(head)
    return oof, heads


def train_regular(
    extractor: FeatureExtractor,
    features: np.ndarray,
    truth: np.ndarray,
    folds: np.ndarray,
    multilabel: bool,
    initial: nn.Linear | None = None,
) -> tuple[Candidate, list[nn.Linear]]:
    """Head-only cross-validation on cached features; also returns each fold's head (Advanced starts there).
    Every head starts from `initial` (a base iteration's), else from zero."""
    oof, heads = out_of_fold(features, truth, folds, multilabel, initial=initial)

    def final() -> Classifier:
        return Classifier(extractor, fit_on_views(features, truth, multilabel, initial), multilabel)

    return Candidate(oof, score(oof, truth, multilabel), final), heads
