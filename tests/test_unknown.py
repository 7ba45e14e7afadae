"""Seer's `unknownDetection` project setting on a small real classifier (tests/trained_models.py, three colours):
with it on, a picture of noise is reported unknown in the extra field `unknown` of the Prediction API, the quick
test and stored predictions, while the spec's fields stay as they were; with it off nothing is added. The score
the service reports is the one the exported model computes, and an iteration's calibration shows on the wire."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pipeline.contract.exports import ExportFlavor, ExportPrecision
from pipeline.contract.onnx_model import MetadataKey
from pipeline.core.vocabulary import new_id
from pipeline.store.iterations import IterationStore
from pipeline.store.records import CalibrationRecord
from pipeline.vision.imaging import decode_image
from pipeline.vision.preprocessing import preprocess
from tests.conftest import PREDICTION_KEY
from tests.published import published_iteration
from tests.trained_models import classifier_onnx, classifier_pictures
from training_job.exports.onnx_format import EXPORTER
from training_job.exports.platform import SourceModel

TRAINING = "/customvision/v3.3/training"
PREDICTION = "/customvision/v3.1/Prediction"


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def noise() -> bytes:
    return png(Image.fromarray(np.random.default_rng(5).integers(0, 256, (240, 320, 3), dtype=np.uint8)))


def known() -> bytes:
    image, _ = classifier_pictures(per_colour=1, first_seed=4242)[0]  # a red picture the model has not seen
    return png(image)


def assert_spec_fields(body: dict) -> None:
    """The spec's ImagePrediction, as before the extension: three tags whose probabilities sum to 1."""
    assert {"id", "project", "iteration", "created", "predictions"} <= set(body)
    assert len(body["predictions"]) == 3
    assert sum(p["probability"] for p in body["predictions"]) == pytest.approx(1, abs=1e-4)
    assert all({"probability", "tagId", "tagName", "tagType"} <= set(p) for p in body["predictions"])


@pytest.fixture()
def published(account, project: dict) -> tuple[dict, str, str]:
    name = f"unknown-{new_id()[:8]}"
    iteration = published_iteration(account, project, name, classifier_onnx())
    return project, name, iteration.id


def test_noise_is_unknown_with_the_setting_on(
    app, settings, client: TestClient, published, tmp_path: Path
) -> None:
    project, name, iteration_id = published
    pid = project["id"]
    quick_test = f"{TRAINING}/projects/{pid}/quicktest/image"

    off = client.post(quick_test, params={"iterationId": iteration_id}, content=noise())
    assert off.status_code == 200, off.text
    assert "unknown" not in off.json()
    assert_spec_fields(off.json())

    changed = client.patch(f"{TRAINING}/projects/{pid}", json={"settings": {"unknownDetection": True}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["settings"]["unknownDetection"] is True
    sdk_style = client.patch(f"{TRAINING}/projects/{pid}", json={"name": project["name"], "settings": {}})
    assert sdk_style.json()["settings"]["unknownDetection"] is True  # a client that does not know it keeps it
    threshold = float(SourceModel.from_bytes(classifier_onnx()).metadata[MetadataKey.UNKNOWN_THRESHOLD])

    predictor = TestClient(app, headers={"Prediction-Key": PREDICTION_KEY})
    classify = f"{PREDICTION}/{pid}/classify/iterations/{name}/image"
    unknown = predictor.post(classify, content=noise())
    recognised = predictor.post(classify, content=known())
    assert unknown.status_code == recognised.status_code == 200, (unknown.text, recognised.text)
    assert_spec_fields(unknown.json())
    assert_spec_fields(recognised.json())
    verdict = unknown.json()["unknown"]
    assert verdict["isUnknown"] is True and verdict["score"] > verdict["threshold"] == pytest.approx(
        threshold
    )
    assert recognised.json()["unknown"]["isUnknown"] is False
    assert recognised.json()["predictions"][0]["tagName"] == "red"

    quick = client.post(quick_test, params={"iterationId": iteration_id}, content=noise())
    assert quick.status_code == 200, quick.text
    assert quick.json()["unknown"] == verdict
    assert_spec_fields(quick.json())

    stored = client.post(f"{TRAINING}/projects/{pid}/predictions/query", json={"maxCount": 10}).json()[
        "results"
    ]
    assert [r.get("unknown", {}).get("isUnknown") for r in stored] == [
        True,
        False,
        True,
        None,
    ]  # newest first

    # the score the service reports is what the exported model (ONNX12 FP32, the model as served) computes
    exported = EXPORTER.export(
        SourceModel.from_bytes(classifier_onnx()), ExportFlavor.ONNX12, ExportPrecision.FP32, tmp_path
    )
    decoded = decode_image(noise(), settings, max_bytes=settings.max_prediction_image_bytes)
    _, scores = exported.runner(preprocess(decoded.image, 224)[np.newaxis])
    assert float(scores[0]) == verdict["score"]


def test_iteration_reports_its_calibration(account, client: TestClient, published) -> None:
    project, _, iteration_id = published
    url = f"{TRAINING}/projects/{project['id']}/iterations/{iteration_id}"
    assert "calibration" not in client.get(url).json()  # none recorded: left out, not null
    IterationStore(account).update(
        project["id"],
        iteration_id,
        lambda i: i.model_copy(
            update={
                "calibration": CalibrationRecord(
                    temperature=0.66,
                    ece_before=0.035,
                    ece_after=0.029,
                    unknown_threshold=0.54,
                    unknown_training_rate=0.053,
                )
            }
        ),
    )
    assert client.get(url).json()["calibration"] == {
        "temperature": 0.66,
        "expectedCalibrationErrorBefore": 0.035,
        "expectedCalibrationErrorAfter": 0.029,
        "unknownThreshold": 0.54,
        "unknownTrainingRate": 0.053,
    }
