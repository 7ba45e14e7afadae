"""What classifier and detector training share: the labels they train, the input errors they refuse, the
stratified folds, the parallel map over groups of samples, and the phase timings they report."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.cores import usable_cores
from pipeline.core.vocabulary import TrainingType

T = TypeVar("T")

SEED = 0
MAX_FOLDS = 5
# Training images each exported model is run on and compared with torch before it is stored.
VERIFY_IMAGES = 4


class TrainingInputError(ValueError):
    """The samples and labels cannot be trained on (retrying will not help)."""


def label_index(labels: Sequence[ModelLabel]) -> dict[str, int]:
    """Tag id -> the model output that scores it (the labels' order): the integer classes tensors need."""
    return {label.tag_id: i for i, label in enumerate(labels)}


def training_type_of(value: str) -> TrainingType:
    """The training type a run asks for, exactly as spelt (the service only queues the two it knows)."""
    try:
        return TrainingType(value)
    except ValueError:
        expected = tuple(member.value for member in TrainingType)
        raise TrainingInputError(f"Unknown training type {value!r}; expected one of {expected}.") from None


def require_every_label(labels: Sequence[ModelLabel], counts: np.ndarray, examples: str) -> None:
    """Refuse labels with no example (`counts` per label): an output nothing could teach."""
    empty = [labels[i].name for i in np.flatnonzero(counts == 0)]
    if empty:
        raise TrainingInputError(f"Tags without {examples}: {', '.join(empty)}.")


def stratified_folds(
    label_sets: Sequence[set[int]], num_labels: int, seed: int = SEED, max_folds: int = MAX_FOLDS
) -> np.ndarray:
    """A fold per sample, k = min(max_folds, smallest tag count) but at least 2. Samples are grouped by their rarest
    tag and dealt round-robin across the folds, continuing from group to group, so every tag spreads over as
    many folds as it can and fold sizes differ by at most one."""
    counts = np.bincount([i for labels in label_sets for i in labels], minlength=num_labels)
    k = max(2, min(max_folds, int(counts.min())))
    rng = random.Random(seed)
    groups: dict[int, list[int]] = {}
    for index, labels in enumerate(label_sets):
        groups.setdefault(min(labels, key=lambda i: (counts[i], i)), []).append(index)
    folds = np.empty(len(label_sets), dtype=int)
    position = 0
    for rarest in sorted(groups, key=lambda i: (counts[i], i)):
        members = groups[rarest]
        rng.shuffle(members)
        for index in members:
            folds[index] = position % k
            position += 1
    return folds


def map_groups(count: int, per_group: int, work: Callable[[range], T]) -> list[T]:
    """`work` applied to successive groups of `per_group` indexes out of `count`, in order. Each CPU core gets
    its own worker thread running single-threaded work: independent streams make better use of shared cores
    than one stream whose threads wait on each other (about 2x faster measured here with the 2 cores busy), and
    only the groups in flight are held in memory."""
    groups = [range(start, min(start + per_group, count)) for start in range(0, count, per_group)]
    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        return list(pool.map(work, groups))


class Stopwatch:
    """A run's seconds per phase, for its log line and the bench: each lap is the time since the previous one."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}

    def lap(self, name: str) -> None:
        self.timings[name] = round(time.monotonic() - self.started - sum(self.timings.values()), 3)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
