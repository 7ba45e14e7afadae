"""Request bodies are capped before they are read (pipeline/api/body_limit.py), over real HTTP (uvicorn) and raw
sockets, so the test controls exactly what is sent: a declared oversize body is refused before any of it is sent,
a chunked one soon after it passes the cap, and a keyless one with 401 before any of it is read."""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from pipeline.api.app import create_app
from pipeline.core.settings import Settings
from tests.conftest import TRAINING_KEY
from tests.serving import served

UPLOAD_CAP = 2 * 1024 * 1024
OTHER_CAP = 256 * 1024
CHUNK = b"x" * 65536
OFFERED = 1024 * 1024 * 1024  # what a chunked sender would send if nobody stopped it


@pytest.fixture(scope="module")
def small_caps(settings: Settings, account) -> Iterator[int]:
    """The app with small caps, so an oversize chunked body is quick to send; yields its port."""
    capped = settings.model_copy(
        update={"max_request_bytes": UPLOAD_CAP, "max_other_request_bytes": OTHER_CAP}
    )
    with served(create_app(capped, account)) as url:
        yield urlsplit(url).port


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, dict]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read() or b"{}")


def _declare(port: int, path: str, size: int, headers: dict[str, str]) -> tuple[int, dict, float]:
    """Send only the head of a request that declares `size` bytes; the answer and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_head("POST", path, {**headers, "Content-Length": str(size)}))
        status, body = _answer(sock)
    return status, body, time.monotonic() - started


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _stream(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict, int, float]:
    """Send a chunked body of up to OFFERED bytes (a well-formed start of one image part if multipart), stopping
    as soon as an answer arrives; the answer, the body bytes sent and how long it took."""
    started = time.monotonic()
    framed = _chunk(CHUNK)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = _head("POST", path, {**headers, "Transfer-Encoding": "chunked"})
        if "multipart" in headers.get("Content-Type", ""):
            head += _chunk(b'--b\r\nContent-Disposition: form-data; name="imageData"\r\n\r\n')
        sock.sendall(head)
        pending = memoryview(b"")
        while sent < OFFERED:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable or not writable:
                break
            if not pending:
                pending = memoryview(framed)
            try:
                done = sock.send(pending)
            except OSError:  # the server closed: its answer is already on the way
                break
            pending, sent = pending[done:], sent + done
        status, body = _answer(sock)
    return status, body, sent, time.monotonic() - started


KEY = {"Training-Key": TRAINING_KEY}
UPLOAD = "/customvision/v3.3/training/projects/{project}/images"
TAGS = "/customvision/v3.3/training/projects/{project}/tags"
IMAGE_TAGS = "/customvision/v3.3/training/projects/{project}/images/tags"  # a JSON batch


def test_a_declared_oversize_body_is_refused_before_it_is_sent(small_caps: int, project: dict):
    upload = UPLOAD.format(project=project["id"])
    multipart = {**KEY, "Content-Type": "multipart/form-data; boundary=b"}
    for path, headers, size, code in (
        (upload, multipart, 200 * 1024 * 1024 * 1024, "BadRequestImageSizeBytes"),
        (
            f"{upload}/files",
            {**KEY, "Content-Type": "application/json"},
            UPLOAD_CAP + 1,
            "BadRequestImageSizeBytes",
        ),
        (TAGS.format(project=project["id"]), KEY, OTHER_CAP + 1, "BadRequestInvalid"),
    ):
        status, body, seconds = _declare(small_caps, path, size, headers)
        assert (status, body["code"]) == (413, code), body
        assert seconds < 2


def test_an_oversize_chunked_body_is_cut_off_at_the_cap(small_caps: int, project: dict):
    upload = UPLOAD.format(project=project["id"])
    for path, headers, cap, code in (
        (
            upload,
            {**KEY, "Content-Type": "multipart/form-data; boundary=b"},
            UPLOAD_CAP,
            "BadRequestImageSizeBytes",
        ),
        (
            f"{upload}/files",
            {**KEY, "Content-Type": "application/json"},
            UPLOAD_CAP,
            "BadRequestImageSizeBytes",
        ),
        (
            IMAGE_TAGS.format(project=project["id"]),
            {**KEY, "Content-Type": "application/json"},
            OTHER_CAP,
            "BadRequestInvalid",
        ),
    ):
        status, body, sent, seconds = _stream(small_caps, path, headers)
        assert (status, body["code"]) == (413, code), body
        # The socket buffers on both sides hold a few MiB; the rest of the gigabyte is never taken.
        assert cap < sent < cap + 32 * 1024 * 1024, sent
        assert seconds < 5


def test_a_keyless_body_is_refused_before_it_is_read(small_caps: int, project: dict):
    upload = UPLOAD.format(project=project["id"])
    status, body, seconds = _declare(small_caps, upload, 200 * 1024 * 1024 * 1024, {})
    assert (status, body["code"], seconds < 2) == (401, "Unauthorized", True)
    status, body, sent, seconds = _stream(small_caps, upload, {"Training-Key": "wrong"})
    assert (status, body["code"]) == (401, "Unauthorized")
    assert sent < 32 * 1024 * 1024 and seconds < 5


def test_bodies_within_the_caps_pass(small_caps: int, project: dict):
    """Just under the cap is read as usual (here: a tag created from a body near the cap)."""
    path = TAGS.format(project=project["id"]) + "?name=under-the-cap"
    body = json.dumps({"padding": "x" * (OTHER_CAP - 100)}).encode()
    with socket.create_connection(("127.0.0.1", small_caps), timeout=10) as sock:
        headers = {**KEY, "Content-Type": "application/json", "Content-Length": str(len(body))}
        sock.sendall(_head("POST", path, headers) + body)
        status, answer = _answer(sock)
    assert (status, answer["name"]) == (200, "under-the-cap")


def test_the_default_caps_fit_the_largest_legitimate_requests():
    """CreateImagesFromFiles with a full batch of the largest images (base64 in JSON) fits the upload cap; a
    prediction or quick-test image with its multipart framing fits the other one."""
    defaults = Settings()
    base64_batch = defaults.max_images_per_batch * (defaults.max_training_image_bytes * 4 // 3 + 4)
    assert base64_batch + 4 * 1024 * 1024 <= defaults.max_request_bytes
    assert defaults.max_prediction_image_bytes + 64 * 1024 <= defaults.max_other_request_bytes
