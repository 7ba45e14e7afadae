"""The process-wide decode budget: bounded waits that end in 503, first come first served, and images that could
never fit refused as ErrorImageDimensions."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.core.errors import ServiceUnavailable
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ImageCreateStatus
from pipeline.vision.decode_budget import DecodeBudget, decode_budget
from pipeline.vision.imaging import ImageRejected, decode_image
from tests.hostile_images import png

MIB = 1024 * 1024


def test_a_waiter_gives_up_with_503_after_the_bound():
    budget = DecodeBudget(100)
    budget.acquire(80, timeout=1)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as busy:
        budget.acquire(30, timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 1
    assert (busy.value.status, busy.value.retry_after_seconds) == (503, 5)
    budget.release(80)
    with budget.hold(100, timeout=0):
        assert budget.used == 100
    assert budget.used == 0


def test_a_large_waiter_is_not_overtaken_by_small_ones():
    """With 60 of 100 held, a 90 waits; 10s arriving after it queue behind it instead of keeping it out."""
    budget = DecodeBudget(100)
    budget.acquire(60, timeout=1)
    order: list[str] = []

    def take(name: str, amount: int) -> None:
        with budget.hold(amount, timeout=5):
            order.append(name)
            time.sleep(0.05)

    big = threading.Thread(target=take, args=("big", 90))
    big.start()
    time.sleep(0.05)
    small = [threading.Thread(target=take, args=(f"small{i}", 10)) for i in range(3)]
    for thread in small:
        thread.start()
    time.sleep(0.1)
    assert order == []  # 30 bytes are free, but the small ones wait behind the big one
    budget.release(60)
    for thread in (big, *small):
        thread.join(timeout=5)
    assert order[0] == "big" and sorted(order[1:]) == ["small0", "small1", "small2"]
    assert budget.used == 0


def test_decoding_waits_for_the_budget_then_answers_503():
    """A decode that cannot get its share within `decode_wait_seconds` raises ServiceUnavailable, not
    ImageRejected; an image whose decode alone exceeds the budget is refused as too large."""
    settings = Settings(decode_memory_budget_bytes=256 * MIB, decode_wait_seconds=0.2)
    bomb = png(4096, 4096, 1, 0, b"\xff" * 512)  # about 150 MiB: 16 decoded, 64 as RGB, the copies
    budget = decode_budget(settings)
    budget.acquire(200 * MIB, timeout=1)
    try:
        with pytest.raises(ServiceUnavailable):
            decode_image(bomb, settings, max_bytes=settings.max_training_image_bytes)
    finally:
        budget.release(200 * MIB)
    assert decode_image(bomb, settings, max_bytes=settings.max_training_image_bytes).image.mode == "RGB"
    tight = Settings(decode_memory_budget_bytes=16 * MIB)
    with pytest.raises(ImageRejected) as refused:
        decode_image(bomb, tight, max_bytes=tight.max_training_image_bytes)
    assert refused.value.status == ImageCreateStatus.ERROR_IMAGE_DIMENSIONS
    assert "decoding budget" in refused.value.message


def test_the_default_budget_holds_the_costliest_allowed_image():
    """A progressive 4:4:4 CMYK JPEG of 10240x10240 is the most expensive in-limits decode (coefficients for
    every component): the default budget must still take it whole."""
    from pipeline.vision.reduced_decode import decode_cost

    class Drafted:  # what `decode_cost` reads of an opened, drafted JPEG
        size, mode, format, tile = (1280, 1280), "CMYK", "JPEG", []
        info = {"progressive": 1}
        layer = [(i, 1, 1, 0) for i in range(4)]

    cost = decode_cost(Drafted(), b"", (10240, 10240), (1600, 1600))  # type: ignore[arg-type]
    assert cost <= Settings().decode_memory_budget_bytes
