"""A classifier's training samples and their preprocessed views, computed group by group on every core."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from PIL import Image

from pipeline.vision.preprocessing import preprocess_batch
from training_job.augment import DEFAULT_AUGMENTATION, Methods, views
from training_job.common import SEED, map_groups

T = TypeVar("T")

BATCH = 4  # views per backbone run on the CPU: fastest here (14 ms a view for lite2) and the least memory


@dataclass(frozen=True)
class Sample:
    image_id: str
    image: Image.Image
    labels: set[int]  # indexes into the labels list
    key: str = ""  # what identifies its pixels across runs (training_job.warm_start.feature_key)


def map_views(
    samples: Sequence[Sample],
    size: int,
    augmented: int,
    work: Callable[[np.ndarray], T],
    methods: Methods = DEFAULT_AUGMENTATION,
    views_per_pass: int = BATCH,
) -> list[T]:
    """`work` applied to the preprocessed views (the serving view, then `augmented` random ones, seeded per
    sample, using the augmentation `methods`) of successive groups of samples ([n * (1 + augmented), 3, S, S]
    each, about `views_per_pass` views), in order (`map_groups`)."""

    def run(indexes: range) -> T:
        images = [
            view
            for i in indexes
            for view in views(samples[i].image, size, augmented, random.Random(SEED * 1_000_003 + i), methods)
        ]
        return work(preprocess_batch(images, size))

    return map_groups(len(samples), max(1, views_per_pass // (1 + augmented)), run)
