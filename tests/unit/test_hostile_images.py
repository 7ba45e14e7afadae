"""Every hostile corpus case through `decode_image` and `prepare_image`: accepted ones give a correct upright RGB
image, refused ones raise ImageRejected with the expected status and never another exception.

The corpus is built for limits smaller than the defaults (4096 a side, 512 stored), so the bombs decode in a
fraction of a second and still go through the reduced decode; `tests/test_decode_memory.py` decodes bombs at the
default limits."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from pipeline.core.settings import Settings
from pipeline.vision.imaging import ImageRejected, decode_image, prepare_image
from pipeline.vision.reduced_decode import to_rgb
from tests.hostile_images import HostileCase, hostile_cases

LIMITS = Settings(max_image_side=4096, max_image_pixels=4096 * 4096, stored_image_max_side=512)
CASES = hostile_cases(LIMITS)
# JPEG and palette quantisation move colours a little.
TOLERANCE = 6


def _close(actual: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return max(abs(a - e) for a, e in zip(actual, expected, strict=True)) <= TOLERANCE


def _check_accepted(case: HostileCase, image: Image.Image, width: int, height: int) -> None:
    assert image.mode == "RGB"
    assert min(width, height) >= LIMITS.min_image_side and max(width, height) <= LIMITS.max_image_side
    assert max(image.size) <= LIMITS.stored_image_max_side or min(image.size) == LIMITS.min_image_side
    assert (image.width >= image.height) == (
        width >= height
    )  # the stored copy is the reported shape, upright
    if case.corners is not None:
        top_left, bottom_right = case.corners
        inset_x, inset_y = image.width // 8, image.height // 8
        assert _close(image.getpixel((inset_x, inset_y)), top_left), image.getpixel((inset_x, inset_y))
        corner = (image.width - 1 - inset_x, image.height - 1 - inset_y)
        assert _close(image.getpixel(corner), bottom_right), image.getpixel(corner)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_case_through_decode_and_prepare(case: HostileCase):
    limit = LIMITS.max_training_image_bytes
    if case.refused is None:
        decoded = decode_image(case.data, LIMITS, max_bytes=limit)
        _check_accepted(case, decoded.image, decoded.width, decoded.height)
        prepared = prepare_image(case.data, LIMITS, max_bytes=limit)
        stored = Image.open(io.BytesIO(prepared.resized))
        assert (stored.format, stored.size) == ("JPEG", decoded.image.size)
        assert (prepared.width, prepared.height) == (decoded.width, decoded.height)
        return
    for decode in (decode_image, prepare_image):
        with pytest.raises(ImageRejected) as refused:
            decode(case.data, LIMITS, max_bytes=limit)
        assert refused.value.status == case.refused, refused.value.message


def test_gif_frames_past_the_first_are_not_decoded():
    """A GIF of 100,000 frames costs what its first frame costs."""
    [case] = [c for c in CASES if c.name == "gif with 100000 frames"]
    started = time.monotonic()
    decode_image(case.data, LIMITS, max_bytes=LIMITS.max_training_image_bytes)
    assert time.monotonic() - started < 0.5


def _picture(mode: str) -> Image.Image:
    """2560x1920 of smooth colour (line art for "1", the web palette for "P")."""
    coarse = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    picture = Image.fromarray(coarse).resize((2560, 1920), Image.Resampling.BICUBIC)
    if mode == "1":
        return (
            picture.convert("L").point(lambda v: 255 if v > 127 else 0).convert("1", dither=Image.Dither.NONE)
        )
    if mode == "P":
        return picture.convert("P", palette=Image.Palette.WEB, dither=Image.Dither.NONE)
    return picture.convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB"])
def test_reduced_decoding_matches_a_full_size_resize(mode: str):
    """A picture 7.5 times its stored size (reduced by 3 before the resize) comes out as a full-size RGB conversion
    and LANCZOS resize would make it: under a level on average; hard black and white edges differ most."""
    picture = _picture(mode)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    settings = Settings(stored_image_max_side=320)
    decoded = decode_image(buffer.getvalue(), settings, max_bytes=settings.max_training_image_bytes).image
    assert decoded.size == (341, 256)
    expected = to_rgb(picture).resize(decoded.size, Image.Resampling.LANCZOS)
    difference = np.abs(np.asarray(decoded, dtype=int) - np.asarray(expected, dtype=int))
    assert difference.mean() < 0.6
    if mode in ("L", "RGB"):
        assert np.percentile(difference, 99) <= 2
