"""Fitting detection heads on the cached backbone maps: the final head and one per fold, side by side, then each
fold head's detections on the images it did not see."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.contract.detection import DETECTION
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.boxes import Box
from pipeline.core.cores import usable_cores
from training_job.classifier import torch_threads
from training_job.common import SEED
from training_job.detection_cache import DetectorSettings, FeatureCache
from training_job.detector import Head, decode, detection_loss, suppress


def new_head(cache: FeatureCache, num_classes: int, settings: DetectorSettings) -> Head:
    """A freshly initialised head, the same one every time (seeded; call it from one thread)."""
    torch.manual_seed(SEED)
    return Head(cache.channels, num_classes, settings.width, settings.depth)


def optimise(
    optimiser: torch.optim.Optimizer,
    views: torch.Tensor,
    steps: int,
    settings: DetectorSettings,
    deadline: float,
    cache: FeatureCache,
    outputs_of: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    *,
    mixed_precision: bool,
    guaranteed_steps: int = 0,
) -> None:
    """`steps` AdamW steps of the detection loss on shuffled batches of `views` (a short warm-up, then a cosine
    schedule; on a GPU in mixed precision when `mixed_precision`: training_job.device says when it pays),
    stopped at `deadline` once `guaranteed_steps` are done; `outputs_of` gives a batch's head outputs.

    Every epoch's order is drawn up front (on the CPU, so both devices draw the same) and moved to the device
    once: a copy to a GPU each step would wait for its queue."""
    device = cache.device
    warmup = min(50, steps // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)),
    )
    generator = torch.Generator().manual_seed(SEED)
    epochs = math.ceil(steps / max(1, math.ceil(len(views) / settings.batch)))
    orders = torch.stack([views[torch.randperm(len(views), generator=generator)] for _ in range(epochs)])
    scaler = device.gradient_scaler(mixed_precision)
    step = 0
    with torch.enable_grad():
        for order in orders.to(device.device):
            for batch in order.split(settings.batch):
                if step >= steps or (step >= guaranteed_steps and time.monotonic() > deadline):
                    return
                with device.mixed_precision(mixed_precision):
                    outputs = outputs_of(batch)
                loss = detection_loss(*(output.float() for output in outputs), cache.targets.take(batch))
                optimiser.zero_grad()
                scaler.scale(loss).backward()
                scaler.step(optimiser)
                scaler.update()
                schedule.step()
                step += 1


def fit_head(
    head: Head, cache: FeatureCache, rows: np.ndarray, settings: DetectorSettings, deadline: float
) -> Head:
    """`head` trained on every view of the samples `rows` (`optimise`), stopped at `deadline` once it has made
    `settings.guaranteed_epochs`, on the cache's device."""
    head.to(cache.device.device)
    views = torch.from_numpy(np.flatnonzero(np.isin(cache.sample, rows)))
    steps = max(1, math.ceil(settings.epochs * len(views) / settings.batch))
    guaranteed = min(steps, math.ceil(settings.guaranteed_epochs * len(views) / settings.batch))
    optimiser = torch.optim.AdamW(
        head.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    head.train()
    optimise(
        optimiser,
        views,
        steps,
        settings,
        deadline,
        cache,
        lambda batch: head(*cache.views(batch)),
        mixed_precision=False,
        guaranteed_steps=guaranteed,
    )
    return head.eval().requires_grad_(False)


def detect_cached(
    cache: FeatureCache, head: Head, rows: np.ndarray, nms_iou: float = DETECTION.nms_iou
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The head's final detections (as the exported model makes them) on the whole-image views of `rows`."""
    views = cache.device.tensor(cache.first[rows])
    with torch.inference_mode():
        outputs = head(*cache.views(views))
        boxes, scores, tags = suppress(*decode(*outputs), nms_iou=nms_iou)
    return boxes.cpu().numpy(), scores.cpu().numpy(), tags.cpu().numpy()


def detected_boxes(
    labels: Sequence[ModelLabel], boxes: np.ndarray, scores: np.ndarray, tags: np.ndarray
) -> list[Box]:
    """One image's detections (tag indexes into `labels`, 0 scores padding) as boxes of tag ids."""
    return [
        Box(labels[int(t)].tag_id, *map(float, b), probability=float(s))
        for b, s, t in zip(boxes, scores, tags, strict=True)
        if s > 0
    ]


def _fit_all(
    cache: FeatureCache,
    labels: Sequence[ModelLabel],
    training_rows: Sequence[np.ndarray],
    settings: DetectorSettings,
    deadline: float,
    start: Head | None = None,
) -> list[Head]:
    """One head per set of training rows, each a copy of `start` or a fresh one. The heads are independent: one
    single-threaded fit per core at a time (small convolutions scale badly across threads, the more so on shared
    cores)."""
    heads = [copy.deepcopy(start) if start else new_head(cache, len(labels), settings) for _ in training_rows]
    with torch_threads(1), ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        return list(
            pool.map(lambda head, rows: fit_head(head, cache, rows, settings, deadline), heads, training_rows)
        )


@dataclass(frozen=True)
class FoldHeads:
    """The fold heads of a run, each fitted without its fold's samples."""

    cache: FeatureCache
    labels: Sequence[ModelLabel]
    folds: np.ndarray  # [N] each sample's fold
    heads: dict[int, Head]  # by fold; a fold without a head gets no detections

    def held_out(self, nms_iou: float = DETECTION.nms_iou) -> list[list[Box]]:
        """Each sample's detections by its fold's head, suppressed at `nms_iou`, in sample order."""
        found: list[list[Box]] = [[] for _ in range(len(self.cache.first))]
        for fold, head in self.heads.items():
            held = np.flatnonzero(self.folds == fold)
            detections = detect_cached(self.cache, head, held, nms_iou)
            for row, boxes, scores, tags in zip(held, *detections, strict=True):
                found[row] = detected_boxes(self.labels, boxes, scores, tags)
        return found


def fit_heads(
    cache: FeatureCache,
    labels: Sequence[ModelLabel],
    folds: np.ndarray,
    settings: DetectorSettings,
    deadline: float,
    start: Head | None = None,
) -> tuple[Head, FoldHeads]:
    """The final head (fitted on every sample, returned on the CPU) and the fold heads, which give each sample's
    out-of-fold detections. Every head starts from `start` (a base iteration's) when given, else freshly
    initialised."""
    training_rows = [np.arange(len(cache.first))]
    training_rows += [np.flatnonzero(folds != fold) for fold in range(folds.max() + 1)]
    final_head, *fold_heads = _fit_all(cache, labels, training_rows, settings, deadline, start)
    return final_head.cpu(), FoldHeads(cache, labels, folds, dict(enumerate(fold_heads)))


def fit_held_out(
    cache: FeatureCache,
    labels: Sequence[ModelLabel],
    folds: np.ndarray,
    trainable: np.ndarray,
    settings: DetectorSettings,
    deadline: float,
) -> list[list[Box]]:
    """Each sample's detections by a head fitted on only the `trainable` samples of the other folds (a published
    iteration's recipe on what it was trained on: training_job/champion)."""
    rows = {fold: np.flatnonzero((folds != fold) & trainable) for fold in range(folds.max() + 1)}
    rows = {fold: kept for fold, kept in rows.items() if len(kept)}
    heads = _fit_all(cache, labels, list(rows.values()), settings, deadline)
    return FoldHeads(cache, labels, folds, dict(zip(rows, heads, strict=True))).held_out()
