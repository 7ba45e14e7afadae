"""Advanced training: the backbone's last blocks are fine-tuned on augmented views too, on the Regular folds and
starting from the Regular heads, within the reserved budget."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from training_job.augment import Methods
from training_job.classifier import (
    Classifier,
    FeatureExtractor,
    head_targets,
    loss,
    probabilities,
    torch_threads,
)
from training_job.common import SEED
from training_job.device import CPU, TrainingDevice
from training_job.samples import BATCH, Sample, map_views
from training_job.scoring import Candidate, score

FINETUNE_AUGMENTED_VIEWS = 3
FINETUNE_BLOCKS = 2  # the last blocks (plus the head convolution) that are trained
FINETUNE_EPOCHS = 8
# From a base iteration's fine-tuned blocks: they already fit most of the images, so half the passes.
WARM_FINETUNE_EPOCHS = 4
FINETUNE_BATCH = 32
FINETUNE_LR = {"backbone": 1e-4, "head": 1e-3}


class FineTuner:
    """The frozen part of the backbone runs once per view; the last FINETUNE_BLOCKS blocks, the head convolution
    and the linear head are trained on those cached activations, starting from the Regular head of the same
    fold. BatchNorm statistics stay frozen (eval mode), which suits small data."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        samples: Sequence[Sample],
        size: int,
        multilabel: bool,
        deadline: float,
        methods: Methods,
        epochs: int = FINETUNE_EPOCHS,
        device: TrainingDevice = CPU,
    ) -> None:
        self.extractor = copy.deepcopy(extractor).to(device.device)
        self.multilabel = multilabel
        self.deadline = deadline
        self.epochs = epochs
        self.device = device
        self.split = extractor.backbone.num_blocks - FINETUNE_BLOCKS
        self.activations: torch.Tensor | None = None

        def prefix(pixels: np.ndarray) -> torch.Tensor | None:
            if time.monotonic() > deadline:
                return None
            # no_grad, not inference_mode: these activations are inputs to training
            with torch.no_grad():
                return self.extractor.backbone.prefix(
                    self.extractor.normalise(device.tensor(pixels)), self.split
                )

        with torch_threads(1):
            chunks = map_views(
                samples,
                size,
                FINETUNE_AUGMENTED_VIEWS,
                prefix,
                methods,
                views_per_pass=device.views_per_pass(BATCH),
            )
        if any(chunk is None for chunk in chunks):
            return
        stacked = torch.cat(chunks)
        self.activations = stacked.reshape(len(samples), 1 + FINETUNE_AUGMENTED_VIEWS, *stacked.shape[1:])

    def frozen_features(self) -> np.ndarray:
        """[N, V, D] pooled features of every cached view through the backbone as it was given (the semantic
        probe's input: the augmented views cost only the last blocks here)."""
        assert self.activations is not None
        with torch.inference_mode():
            views = self.activations.flatten(0, 1)
            pooled = [self.extractor.backbone.suffix(chunk, self.split) for chunk in views.split(BATCH)]
        return torch.cat(pooled).float().cpu().numpy().reshape(*self.activations.shape[:2], -1)

    def train(self, rows: np.ndarray, truth: np.ndarray, head: nn.Linear, seconds: float) -> Classifier:
        """Fine-tune a copy of the model on the samples `rows` for at most `epochs` or `seconds`, in mixed
        precision on a GPU; the model stays on the tuner's device."""
        assert self.activations is not None
        model = Classifier(copy.deepcopy(self.extractor), copy.deepcopy(head), self.multilabel)
        model.to(self.device.device).eval().requires_grad_(False)
        backbone = model.features.backbone
        tuned = backbone.suffix_parameters(self.split)
        for parameter in [*tuned, *model.head.parameters()]:
            parameter.requires_grad_(True)
        optimiser = torch.optim.AdamW(
            [
                {"params": tuned, "lr": FINETUNE_LR["backbone"]},
                {"params": list(model.head.parameters()), "lr": FINETUNE_LR["head"]},
            ],
            weight_decay=1e-4,
        )
        inputs = self.activations[self.device.tensor(rows)].flatten(0, 1)
        targets = head_targets(np.repeat(truth, 1 + FINETUNE_AUGMENTED_VIEWS, axis=0), self.multilabel)
        targets = targets.to(self.device.device)
        generator = torch.Generator().manual_seed(SEED)
        scaler = self.device.gradient_scaler()
        stop = time.monotonic() + seconds
        with torch.enable_grad():
            for _ in range(self.epochs):
                for batch in torch.randperm(len(inputs), generator=generator).split(FINETUNE_BATCH):
                    if time.monotonic() > stop:
                        return model.requires_grad_(False)
                    batch = batch.to(self.device.device)
                    with self.device.mixed_precision():
                        logits = model.head(backbone.suffix(inputs[batch], self.split))
                        value = loss(logits.float(), targets[batch], self.multilabel)
                    optimiser.zero_grad()
                    scaler.scale(value).backward()
                    scaler.step(optimiser)
                    scaler.update()
        return model.requires_grad_(False)

    def predict(self, model: Classifier, rows: np.ndarray) -> np.ndarray:
        assert self.activations is not None
        with torch.inference_mode():
            held = self.activations[self.device.tensor(rows), 0]
            features = model.features.backbone.suffix(held, self.split)
            return probabilities(model.head(features), self.multilabel).cpu().numpy()


def train_advanced(
    tuner: FineTuner, truth: np.ndarray, folds: np.ndarray, heads: Sequence[nn.Linear], final_head: nn.Linear
) -> Candidate | None:
    """Fine-tuned cross-validation on the Regular folds, the remaining budget shared by the k folds and the
    final model; None when the budget ran out before every fold was scored. The final model trains as long as
    a fold model did (so the folds' score describes it), even where that ends a little past the deadline."""
    if tuner.activations is None:
        return None
    k = len(heads)
    oof = np.zeros(truth.shape, dtype=np.float32)
    seconds = 0.0
    for fold, head in enumerate(heads):
        seconds = (tuner.deadline - time.monotonic()) / (k + 1 - fold)
        if seconds <= 0:
            return None
        train, held = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        oof[held] = tuner.predict(tuner.train(train, truth[train], head, seconds), held)

    def final() -> Classifier:
        everything = np.arange(len(truth))
        return tuner.train(everything, truth, final_head, seconds).cpu()

    return Candidate(oof, score(oof, truth, tuner.multilabel), final)
