"""Seer's INT8 serving mode (issue 16, item 5): PublishIteration's extra `precision=INT8` serves a compact iteration by
its Done ONNX INT8 export (the export job's quantization, checked on the training images), so the Prediction API
answers from the integer model; without the export, on a domain that is not compact or with another precision it
is refused and the iteration stays as it was served. Real Azurite, the real app, a real quantized model."""

from __future__ import annotations

import dataclasses
import io
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pipeline.contract.exports import ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ExportStatus
from pipeline.store import StorageAccount
from pipeline.store.exports import ExportStore, export_blob_name
from pipeline.store.records import ExportRecord, IterationRecord
from pipeline.vision.preprocessing import preprocess
from tests.conftest import COMPACT_DOMAIN, PREDICTION_KEY, PROJECTS
from tests.published import published_iteration
from tests.trained_models import classifier_onnx, classifier_pictures
from training_job.exports.onnx_format import EXPORTER
from training_job.exports.platform import SourceModel

PREDICTION = "/customvision/v3.0/prediction"


def _int8_export(account: StorageAccount, iteration: IterationRecord, workdir: Path) -> None:
    """What the export job leaves for ONNX INT8: the quantized file and its Done row."""
    source = SourceModel.from_bytes(classifier_onnx())
    pictures = np.stack([preprocess(image, source.input_size) for image, _ in classifier_pictures()])
    exported = EXPORTER.export(
        dataclasses.replace(source, calibration=pictures), ExportFlavor.ONNX12, ExportPrecision.INT8, workdir
    )
    record = ExportRecord(
        project_id=iteration.project_id,
        iteration_id=iteration.id,
        platform=ExportPlatform.ONNX,
        flavor=ExportFlavor.ONNX12,
        precision=ExportPrecision.INT8,
        status=ExportStatus.DONE,
        request_id=str(uuid.uuid4()),
    )
    record = record.model_copy(update={"blob": export_blob_name(record, exported.path.name)})
    exports = ExportStore(account)
    exports.put_file(record.blob, exported.path.read_bytes())
    assert exports.create(record)


def _jpeg(index: int) -> bytes:
    image, _ = classifier_pictures()[index]
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _probabilities(predictor: TestClient, url: str, count: int) -> list[dict[str, float]]:
    answers = [predictor.post(url, content=_jpeg(index)) for index in range(count)]
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    return [{p["tagName"]: p["probability"] for p in answer.json()["predictions"]} for answer in answers]


def test_a_compact_iteration_is_served_by_its_int8_export(
    app, client: TestClient, account: StorageAccount, settings: Settings, tmp_path: Path
) -> None:
    created = client.post(PROJECTS, params={"name": f"int8-{uuid.uuid4()}", "domainId": COMPACT_DOMAIN})
    project = created.json()
    iteration = published_iteration(account, project, "served", classifier_onnx())
    at = f"{PROJECTS}/{project['id']}/iterations/{iteration.id}"
    publish = f"{at}/publish"
    predictor = TestClient(app, headers={"Prediction-Key": PREDICTION_KEY})
    classify = f"{PREDICTION}/{project['id']}/classify/iterations/served/image/nostore"
    pictures = len(classifier_pictures())
    as_trained = _probabilities(predictor, classify, pictures)

    refused = client.post(publish, params={"publishName": "served", "predictionId": "r", "precision": "INT8"})
    assert refused.status_code == 400 and refused.json()["code"] == "BadRequestInvalid"
    assert "no Done ONNX INT8 export" in refused.json()["message"]
    assert "servingPrecision" not in client.get(at).json()

    _int8_export(account, iteration, tmp_path)
    published = client.post(
        publish, params={"publishName": "served", "predictionId": "r", "precision": "INT8"}
    )
    assert published.status_code == 200, published.text
    assert client.get(at).json()["servingPrecision"] == "INT8"
    time.sleep(settings.published_cache_seconds + 0.2)  # the prediction URL's remembered target expires
    quantized = _probabilities(predictor, classify, pictures)

    for trained, served in zip(as_trained, quantized, strict=True):
        assert max(served, key=served.get) == max(trained, key=trained.get)
        assert max(abs(served[tag] - trained[tag]) for tag in trained) < 0.1
    moved = max(abs(s[tag] - t[tag]) for t, s in zip(as_trained, quantized, strict=True) for tag in t)
    assert moved > 1e-6, "the predictions did not change: the INT8 model is not the one serving"

    assert client.delete(publish).status_code == 204
    again = client.post(publish, params={"publishName": "served", "predictionId": "r"})
    assert again.status_code == 200 and "servingPrecision" not in client.get(at).json()


@pytest.mark.parametrize(
    ("domain", "precision", "message"),
    [
        (None, "INT8", "offered for compact domains"),
        (COMPACT_DOMAIN, "FP16", "precision must be one of FP32, INT8"),
    ],
)
def test_int8_serving_is_refused_outside_its_scope(
    client: TestClient, account: StorageAccount, domain: str | None, precision: str, message: str
) -> None:
    params = {"name": f"int8-{uuid.uuid4()}", **({"domainId": domain} if domain else {})}
    project = client.post(PROJECTS, params=params).json()
    iteration = published_iteration(account, project, "served", classifier_onnx())
    at = f"{PROJECTS}/{project['id']}/iterations/{iteration.id}"
    answer = client.post(
        f"{at}/publish", params={"publishName": "other", "predictionId": "r", "precision": precision}
    )
    assert answer.status_code == 400 and answer.json()["code"] == "BadRequestInvalid"
    assert message in answer.json()["message"]
    assert client.get(at).json()["publishName"] == "served"
