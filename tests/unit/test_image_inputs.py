"""What the API accepts as an image, checked without storage: image URLs, and decoding as the Prediction API does."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from pipeline.core.settings import Settings
from pipeline.vision.fetch import FetchError, fetch_url
from pipeline.vision.imaging import ImageRejected, decode_image
from tests.images import noise_image
from tests.serving import QuietHandler, handler_served


def test_decode_image_applies_exif_orientation(settings):
    picture = Image.new("RGB", (400, 300), (10, 20, 30))
    exif = picture.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", exif=exif)
    decoded = decode_image(buffer.getvalue(), settings, max_bytes=settings.max_prediction_image_bytes)
    assert (decoded.image.mode, decoded.image.size) == ("RGB", (300, 400))
    assert (decoded.width, decoded.height, decoded.content_type) == (300, 400, "image/jpeg")
    with pytest.raises(ImageRejected) as refused:
        decode_image(noise_image(1300, 1100), settings, max_bytes=settings.max_prediction_image_bytes)
    assert refused.value.status == "ErrorImageSize"


@pytest.fixture()
def slow_redirects() -> Iterator[str]:
    """A loopback server whose every answer takes 0.8 s and redirects to itself: five hops take 4 s."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            time.sleep(0.8)
            self.send_response(302)
            self.send_header("Location", "/again")
            self.send_header("Content-Length", "0")
            self.end_headers()

    with handler_served(Handler) as url:
        yield f"{url}/start"


def test_the_fetch_deadline_covers_every_redirect(slow_redirects: str):
    """`url_fetch_timeout_seconds` bounds the whole fetch, redirects included, not each hop."""
    settings = Settings(allow_private_urls=True, url_fetch_timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match="too long"):
        fetch_url(slow_redirects, settings, max_bytes=1024)
    assert time.monotonic() - started < 2.5


def test_sixteen_bit_greyscale_keeps_its_tones(settings):
    """A 16-bit greyscale PNG is scaled to 8 bits, not clipped: mid-grey stays mid-grey, not white."""
    tones = np.full((300, 300), 32768, dtype=np.uint16)
    tones[:, :100] = 4096
    buffer = io.BytesIO()
    Image.fromarray(tones).save(buffer, format="PNG")
    decoded = decode_image(buffer.getvalue(), settings, max_bytes=settings.max_prediction_image_bytes)
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((250, 150)) == (128, 128, 128)
    assert decoded.image.getpixel((10, 150)) == (16, 16, 16)
