"""The augmentation methods a project enables are the transforms its training views get, and no others."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline.core.augmentation import (
    DEFAULT_METHODS,
    AugmentationMethod,
    enabled_methods,
    updated_methods,
)
from pipeline.core.errors import CustomVisionError
from pipeline.vision.preprocessing import resize_and_crop, resize_full
from training_job.augment import crop_boxes, detection_view, rotate_boxes, views

SIZE = 64


def photo(seed: int = 0) -> Image.Image:
    """A smooth non-square picture with no symmetry, so a flip or a shift shows but resampling barely does."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(100, 150, (9, 12, 3), dtype=np.uint8)  # dull, so equalisation and jitter show
    pixels[:, :4] //= 2
    return Image.fromarray(pixels).resize((120, 90), Image.Resampling.BICUBIC)


def difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def test_names_match_ignoring_case_and_unknown_names_are_refused() -> None:
    methods = updated_methods(None, {"Horizontal Flip": False, "ROTATION": True})
    assert methods == {**DEFAULT_METHODS, "horizontal flip": False, "rotation": True}
    assert AugmentationMethod.HORIZONTAL_FLIP not in enabled_methods(methods)
    assert updated_methods(methods, {"scaling": False})["rotation"] is True  # other methods are kept
    with pytest.raises(CustomVisionError) as refused:
        updated_methods(None, {"mirror": True})
    assert refused.value.code == "BadRequestProjectImagePreprocessingSettings"


def test_with_every_method_off_each_view_is_the_serving_view() -> None:
    image = photo()
    serving, *augmented = views(image, SIZE, 6, random.Random(1), frozenset())
    assert serving == resize_and_crop(image, SIZE)
    assert all(difference(view, serving) < 2 for view in augmented)  # the same crop, resampled in one step


def test_each_method_changes_the_views_only_when_enabled() -> None:
    image = photo()
    serving = resize_and_crop(image, SIZE)
    for method in AugmentationMethod:
        changed = [
            difference(v, serving) for v in views(image, SIZE, 16, random.Random(2), frozenset({method}))[1:]
        ]
        assert max(changed) > 5, method


def test_only_flip_gives_the_view_or_its_mirror() -> None:
    image = photo()
    serving = resize_and_crop(image, SIZE)
    mirror = serving.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    flipped = [
        difference(view, mirror) < 2
        for view in views(image, SIZE, 12, random.Random(3), frozenset({AugmentationMethod.HORIZONTAL_FLIP}))[
            1:
        ]
        if difference(view, serving) >= 2
    ]
    assert flipped and all(flipped)


def test_switching_one_method_off_leaves_the_other_draws_alone() -> None:
    """Views draw the same numbers whatever is enabled: without the flip, every unflipped view is unchanged."""
    image = photo()
    every = enabled_methods(DEFAULT_METHODS)
    with_flip = views(image, SIZE, 10, random.Random(4), every)
    without = views(image, SIZE, 10, random.Random(4), every - {AugmentationMethod.HORIZONTAL_FLIP})
    same = [a == b for a, b in zip(with_flip, without, strict=True)]
    assert 0 < sum(same) < len(same)


def test_rotated_boxes_follow_the_rotated_picture() -> None:
    """`rotate_boxes` agrees with where PIL's rotation puts a drawn rectangle, to within a pixel or two."""
    side = 200
    box = np.array([[0.3, 0.2, 0.35, 0.25]], dtype=np.float32)
    for degrees in (-15.0, 7.0, 15.0):
        canvas = Image.new("L", (side, side))
        left, top, width, height = box[0] * side
        ImageDraw.Draw(canvas).rectangle((left, top, left + width - 1, top + height - 1), fill=255)
        ys, xs = np.nonzero(np.asarray(canvas.rotate(degrees, Image.Resampling.BILINEAR)) > 127)
        seen = np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]) / side
        assert np.abs(rotate_boxes(box, degrees)[0] - seen).max() < 2.5 / side, degrees


def test_detection_views_honour_the_methods() -> None:
    image = photo()
    boxes = np.array([[0.1, 0.2, 0.3, 0.4], [0.6, 0.5, 0.2, 0.2]], dtype=np.float32)
    for seed in range(6):
        view, moved, kept = detection_view(image, boxes, SIZE, random.Random(seed), frozenset())
        assert difference(view, resize_full(image, SIZE)) < 2
        assert kept.all() and np.allclose(moved, boxes)
        view, moved, kept = detection_view(
            image, boxes, SIZE, random.Random(seed), frozenset({AugmentationMethod.ROTATION})
        )
        inside, _ = crop_boxes(boxes, (0.0, 0.0, 1.0, 1.0), 0.0)
        assert (
            moved.shape[0] == kept.sum()
            and (moved >= -1e-6).all()
            and (moved[:, :2] + moved[:, 2:] <= 1 + 1e-6).all()
        )
        assert len(inside) == 2
