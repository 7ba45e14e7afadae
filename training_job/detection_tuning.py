"""Advanced detection fine-tunes the backbone too (issue 16, item 3): a copy of the backbone's stride-32 blocks
trains jointly with a detection head on the cached stride-16 maps, so tuning costs passes over those few blocks
only, never over the frozen stem and earlier blocks. The cache's stride-32 maps are then recomputed through the
tuned blocks, and the fold and final heads train on them as Regular's do; the exported model carries the tuned
blocks. The tuned blocks saw every training image, held-out folds included, so the out-of-fold score flatters
them a little, as a warm start's does."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from pipeline.contract.onnx_model import ModelLabel
from training_job.detection_cache import DetectorSettings, FeatureCache
from training_job.detection_heads import new_head, optimise
from training_job.detector import Levels

RECOMPUTE_BATCH = 64  # stride-16 maps per pass when the stride-32 maps are recomputed


def coarse_blocks(levels: Levels) -> nn.Sequential:
    """The backbone's blocks that turn its stride-16 map into its stride-32 map (shared, not a copy)."""
    return nn.Sequential(*levels.backbone.network._blocks[levels.splits[-1] :])


def tune_coarse_blocks(
    cache: FeatureCache,
    levels: Levels,
    labels: Sequence[ModelLabel],
    settings: DetectorSettings,
    deadline: float,
) -> Levels:
    """A copy of `levels` (on the cache's device) whose stride-32 blocks trained with a fresh head on every view
    for `settings.tune_epochs` (AdamW, warm-up then cosine; the blocks at `tune_learning_rate`, the head at the
    head's rate), stopped at `deadline`. BatchNorm keeps the pretrained statistics: a few hundred views would
    estimate them worse. The earlier blocks are untouched: the cached stride-16 maps stand in for them."""
    device = cache.device
    tuned = copy.deepcopy(levels).to(device.device).eval()  # eval: frozen BatchNorm statistics
    blocks = coarse_blocks(tuned).requires_grad_(True)
    head = new_head(cache, len(labels), settings).to(device.device)
    views = torch.arange(len(cache.sample))
    steps = max(1, math.ceil(settings.tune_epochs * len(views) / settings.batch))
    optimiser = torch.optim.AdamW(
        [
            {"params": head.parameters(), "lr": settings.learning_rate},
            {"params": blocks.parameters(), "lr": settings.tune_learning_rate},
        ],
        weight_decay=settings.weight_decay,
    )
    head.train()

    def outputs_of(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        *finer, fine = cache.views(batch, slice(-1))  # the stride-32 map comes from the tuned blocks
        return head(*finer, fine, blocks(fine))

    optimise(optimiser, views, steps, settings, deadline, cache, outputs_of, mixed_precision=True)
    blocks.requires_grad_(False)
    return tuned


def with_coarse_recomputed(cache: FeatureCache, levels: Levels) -> FeatureCache:
    """The cache with its stride-32 maps recomputed from its stride-16 maps through `levels`' blocks (on the
    cache's device)."""
    blocks = coarse_blocks(levels)
    *finer, fine, coarse = cache.maps
    with torch.no_grad():
        coarse = torch.cat([blocks(part.float()).to(coarse.dtype) for part in fine.split(RECOMPUTE_BATCH)])
    return replace(cache, maps=(*finer, fine, coarse))
