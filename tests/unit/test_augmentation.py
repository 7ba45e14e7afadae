"""The augmentation methods a project enables are the transforms its training views get, and no others."""

from __future__ import annotations

import math
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
from training_job.augment import views
from training_job.detection_augment import DetectionAugmentation, detection_view, detection_views

SIZE = 64
CROP = frozenset({AugmentationMethod.SCALING, AugmentationMethod.TRANSLATION})
EVERY = frozenset(AugmentationMethod)
VIEW = 128  # detection views: large enough to check boxes to a pixel or two


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


def rectangle() -> tuple[Image.Image, np.ndarray]:
    """A white rectangle on black, off centre (so a flip moves it), and its box."""
    image = Image.new("RGB", (200, 150))
    ImageDraw.Draw(image).rectangle((50, 45, 109, 89), fill=(255, 255, 255))
    return image, np.array([[50 / 200, 45 / 150, 60 / 200, 45 / 150]], dtype=np.float32)


def corners(boxes: np.ndarray) -> np.ndarray:
    """Normalised (left, top, width, height) as (left, top, right, bottom) in view pixels."""
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1) * VIEW


def test_detection_views_start_with_the_serving_view() -> None:
    image, box = rectangle()
    boxes = np.concatenate([box, [[0.7, 0.6, 0.2, 0.3]]]).astype(np.float32)
    (serving, same, everything), *augmented = detection_views(image, boxes, VIEW, 6, random.Random(0))
    assert serving == resize_full(image, VIEW) and np.array_equal(same, boxes) and everything.all()
    for view, moved, kept in augmented:
        assert view.size == (VIEW, VIEW) and view.mode == "RGB"
        assert kept.dtype == bool and kept.shape == (2,)
        assert moved.dtype == np.float32 and moved.shape == (kept.sum(), 4)


def test_with_every_method_off_a_detection_view_is_the_plain_resize() -> None:
    image, box = rectangle()
    for seed in range(6):
        view, moved, kept = detection_view(image, box, VIEW, random.Random(seed), frozenset())
        assert view == resize_full(image, VIEW) and kept.all()
        np.testing.assert_allclose(moved, box, atol=1e-6)


@pytest.mark.parametrize(
    "methods",
    [CROP, frozenset({AugmentationMethod.HORIZONTAL_FLIP}), frozenset({AugmentationMethod.ROTATION}), EVERY],
    ids=["crop", "flip", "rotation", "every"],
)
def test_detection_boxes_follow_the_picture(methods: frozenset[AugmentationMethod]) -> None:
    """Each kept box is where the drawn rectangle ended up in the view's pixels, to within a pixel and a half.
    Where a rotated rectangle reaches past the view, the upright box around it is cut to the view (so it may
    be wider than what stays in view) and only has to hold it."""
    image, box = rectangle()
    checked = moved_away = 0
    for seed in range(16):
        view, moved, kept = detection_view(image, box, VIEW, random.Random(seed), methods)
        if not kept[0]:
            continue
        ys, xs = np.nonzero(np.asarray(view.convert("L")) > 127)
        seen = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        found = corners(moved)[0]
        cut = AugmentationMethod.ROTATION in methods and (seen.min() == 0 or seen.max() == VIEW)
        if cut:
            assert (found[:2] <= seen[:2] + 2).all() and (found[2:] >= seen[2:] - 2).all(), seed
        else:
            assert np.abs(found - seen).max() < 1.5, seed
            checked += 1
        moved_away += np.abs(found - corners(box)[0]).max() > 4
    assert checked >= 8 and moved_away >= 4


def window_seen(view: Image.Image, width: int, height: int) -> np.ndarray:
    """The part (left, top, right, bottom, normalised) of a `ramps` picture a view shows: each ramp is linear,
    so a line fitted through the view's inner pixels gives where the view starts and how far it reaches."""
    pixels = np.asarray(view, dtype=np.float64)
    inner = np.arange(VIEW // 8, VIEW - VIEW // 8)
    across, left = np.polyfit(inner + 0.5, pixels[VIEW // 2, inner, 0], 1)
    down, top = np.polyfit(inner + 0.5, pixels[inner, VIEW // 2, 1], 1)
    left, top = left + 0.5, top + 0.5  # a pixel's value is its index; its centre lies half a pixel on
    return np.array(
        [left / width, top / height, (left + across * VIEW) / width, (top + down * VIEW) / height]
    )


def test_boxes_mostly_cut_away_are_dropped() -> None:
    """A crop keeps the boxes with at least `min_visible` of their area in view, cut to the view, and `kept`
    says which. The crop is read off a picture whose red and green are each pixel's x and y."""
    width, height = 240, 180
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    ramps = Image.fromarray(np.stack([xs, ys, np.zeros_like(xs)], -1).astype(np.uint8))
    boxes = np.array(
        [[left, top, 0.35, 0.3] for left in (0.0, 0.3, 0.65) for top in (0.0, 0.35, 0.7)], dtype=np.float32
    )
    rule = DetectionAugmentation().min_visible
    dropped = cut_but_kept = 0
    for seed in range(20):
        view, moved, kept = detection_view(ramps, boxes, VIEW, random.Random(seed), CROP)
        left, top, right, bottom = window_seen(view, width, height)
        inside = np.clip(corners(boxes) / VIEW, [left, top] * 2, [right, bottom] * 2)
        share = np.prod(inside[:, 2:] - inside[:, :2], 1) / np.prod(boxes[:, 2:], 1)
        clear = np.abs(share - rule) > 0.03
        assert np.array_equal(kept[clear], (share >= rule)[clear]), seed
        expected = (inside - [left, top] * 2) / ([right - left, bottom - top] * 2)
        np.testing.assert_allclose(corners(moved) / VIEW, expected[kept], atol=1 / VIEW)
        dropped += (~kept).sum()
        cut_but_kept += (kept & (share < 0.95)).sum()
    assert dropped >= 10 and cut_but_kept >= 10


def test_rotation_drops_boxes_it_turns_mostly_out_of_view() -> None:
    """A rotated box becomes the upright box around it, cut to the view, and is dropped when less than
    `min_visible` of that stays in view. The turn is read off a bar drawn across the picture's centre."""
    image = Image.new("RGB", (VIEW, VIEW))
    ImageDraw.Draw(image).rectangle((24, 60, 103, 67), fill=(255, 255, 255))
    boxes = np.array(
        [[0.0, 0.0, 0.12, 0.1], [0.9, 0.0, 0.1, 0.1], [0.0, 0.88, 0.1, 0.12], [0.4, 0.4, 0.2, 0.2]],
        dtype=np.float32,
    )
    rule = DetectionAugmentation().min_visible
    dropped = turned_and_kept = 0
    for seed in range(20):
        view, moved, kept = detection_view(
            image, boxes, VIEW, random.Random(seed), frozenset({AugmentationMethod.ROTATION})
        )
        ys, xs = np.nonzero(np.asarray(view.convert("L")) > 127)
        centre = np.array([xs.mean(), ys.mean()]) + 0.5
        spread = np.cov(xs, ys)
        angle = 0.5 * math.atan2(2 * spread[0, 1], spread[0, 0] - spread[1, 1])
        turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        ends = corners(boxes)
        points = np.stack([ends[:, [0, 1]], ends[:, [2, 1]], ends[:, [0, 3]], ends[:, [2, 3]]], 1)
        turned = (points - centre) @ turn.T + centre
        around = np.concatenate([turned.min(1), turned.max(1)], 1)
        inside = np.clip(around, 0, VIEW)
        share = np.prod(inside[:, 2:] - inside[:, :2], 1) / np.prod(around[:, 2:] - around[:, :2], 1)
        clear = np.abs(share - rule) > 0.05
        assert np.array_equal(kept[clear], (share >= rule)[clear]), seed
        np.testing.assert_allclose(corners(moved), inside[kept], atol=1.0)
        dropped += (~kept).sum()
        turned_and_kept += (kept & (share < 0.95)).sum()
    assert dropped >= 5 and turned_and_kept >= 5


def test_switching_one_method_off_leaves_the_other_detection_draws_alone() -> None:
    image, box = rectangle()
    without_flip = EVERY - {AugmentationMethod.HORIZONTAL_FLIP}
    same = []
    for seed in range(10):
        view, moved, _ = detection_view(image, box, VIEW, random.Random(seed), EVERY)
        other, again, _ = detection_view(image, box, VIEW, random.Random(seed), without_flip)
        same.append(view == other and np.array_equal(moved, again))
    assert 0 < sum(same) < len(same)
