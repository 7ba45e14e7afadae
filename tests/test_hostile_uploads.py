"""The hostile corpus through the real HTTP API on real Azurite: training uploads and predictions on a published
model answer with Custom Vision statuses and codes, never a 5xx, and leave the stored data as it was.

The app here runs with smaller limits (4096 a side) so the bombs decode quickly; the published model is a tiny ONNX
classifier written straight to storage, so no training is needed."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pipeline.api.app import create_app
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import new_id
from pipeline.store import StorageAccount
from pipeline.vision.decode_budget import decode_budget
from tests.conftest import PREDICTION_KEY, TRAINING_KEY
from tests.hostile_images import HostileCase, hostile_cases
from tests.published import published_iteration, tiny_classifier

TRAINING = "/customvision/v3.3/training"
PREDICTION = "/customvision/v3.0/Prediction"
_REPRESENTATIVE = {
    "png 1-bit bomb",
    "png rgb bomb",
    "gif huge screen, 1x1 frame",
    "progressive jpeg bomb",
    "png one pixel too wide",
    "jpeg 65500x65500",
    "truncated gif",
    "truncated jpeg",
    "zero bytes",
    "pdf",
    "svg",
    "png named and typed as jpeg",
    "png 16-bit grey",
    "jpeg exif orientation 6",
    "png past the widest aspect ratio",
}
_PREDICTION_CODES = {
    None: None,
    "ErrorImageFormat": "BadRequestImageFormat",
    "ErrorImageDimensions": "BadRequestImageDimensions",
    "ErrorImageSize": "BadRequestImageSizeBytes",
}
# An empty prediction body is refused before decoding, as no image at all.
_EMPTY_BODY = "BadRequestImageStream"


@pytest.fixture(scope="module")
def limits(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_image_side": 4096, "max_image_pixels": 4096 * 4096})


@pytest.fixture(scope="module")
def cases(limits: Settings) -> list[HostileCase]:
    return [case for case in hostile_cases(limits) if case.name in _REPRESENTATIVE]


@pytest.fixture(scope="module")
def small_app(limits: Settings, account: StorageAccount):
    return create_app(limits, account)


def _publish(account: StorageAccount, project: dict, tags: list[dict]) -> None:
    """A completed iteration published as "hostile", with a tiny classifier as its model."""
    published_iteration(
        account, project, "hostile", tiny_classifier([ModelLabel(t["id"], t["name"]) for t in tags])
    )


def _count(client: TestClient, project_id: str) -> int:
    return client.get(f"{TRAINING}/projects/{project_id}/images/count").json()


def test_hostile_uploads_and_predictions(small_app, account: StorageAccount, cases: list[HostileCase]):
    assert len(cases) == len(_REPRESENTATIVE)
    trainer = TestClient(small_app, headers={"Training-Key": TRAINING_KEY})
    project = trainer.post(f"{TRAINING}/projects", params={"name": f"hostile-{new_id()}"}).json()
    pid = project["id"]
    tags = [trainer.post(f"{TRAINING}/projects/{pid}/tags", params={"name": n}).json() for n in ("a", "b")]
    accepted = 0
    for case in cases:
        before = _count(trainer, pid)
        files = {"imageData": (case.filename, case.data, case.content_type)}
        response = trainer.post(f"{TRAINING}/projects/{pid}/images", files=files)
        assert response.status_code < 500, (case.name, response.text)
        [result] = response.json()["images"]
        expected = "OK" if case.refused is None else case.refused.value
        assert result["status"] == expected, (case.name, result)
        accepted += case.refused is None
        assert _count(trainer, pid) == before + (case.refused is None), case.name

    _publish(account, project, tags)
    predictor = TestClient(small_app, headers={"Prediction-Key": PREDICTION_KEY})
    for case in cases:
        response = predictor.post(
            f"{PREDICTION}/{pid}/classify/iterations/hostile/image/nostore",
            content=case.data,
            headers={"Content-Type": case.content_type},
        )
        assert response.status_code < 500, (case.name, response.text)
        code = _PREDICTION_CODES[None if case.refused is None else case.refused.value]
        code = _EMPTY_BODY if not case.data else code
        if code is None:
            assert response.status_code == 200, (case.name, response.text)
            probabilities = [p["probability"] for p in response.json()["predictions"]]
            assert np.isclose(sum(probabilities), 1.0, atol=1e-4), case.name
        else:
            assert (response.status_code, response.json()["code"]) == (400, code), (case.name, response.text)
    assert _count(trainer, pid) == accepted


def test_a_busy_decode_budget_answers_503(
    limits: Settings, account: StorageAccount, cases: list[HostileCase]
):
    """While the decode budget is taken, uploads and predictions answer 503 with Retry-After within the wait
    bound, and store nothing."""
    impatient = limits.model_copy(update={"decode_wait_seconds": 0.2})
    app = create_app(impatient, account)
    trainer = TestClient(app, headers={"Training-Key": TRAINING_KEY})
    project = trainer.post(f"{TRAINING}/projects", params={"name": f"busy-{new_id()}"}).json()
    pid = project["id"]
    tags = [trainer.post(f"{TRAINING}/projects/{pid}/tags", params={"name": n}).json() for n in ("a", "b")]
    _publish(account, project, tags)
    predictor = TestClient(app, headers={"Prediction-Key": PREDICTION_KEY})
    [bomb] = [case.data for case in cases if case.name == "png 1-bit bomb"]
    budget = decode_budget(impatient)
    budget.acquire(budget.capacity, timeout=1)
    try:
        upload = trainer.post(f"{TRAINING}/projects/{pid}/images", files={"imageData": ("b.png", bomb)})
        prediction = predictor.post(f"{PREDICTION}/{pid}/classify/iterations/hostile/image", content=bomb)
    finally:
        budget.release(budget.capacity)
    assert (upload.status_code, upload.json()["code"], upload.headers["Retry-After"]) == (
        503,
        "ErrorServerTimeOut",
        "5",
    )
    assert (prediction.status_code, prediction.json()["code"]) == (503, "ErrorPredictionServiceUnavailable")
    assert _count(trainer, pid) == 0
    assert (
        predictor.post(f"{PREDICTION}/{pid}/classify/iterations/hostile/image", content=bomb).status_code
        == 200
    )
