"""Seer's INT8 serving mode (issue 16, item 5): PublishIteration's extra `precision=INT8` serves a compact iteration by
its Done ONNX INT8 export (the export job's quantization, checked on the training images), so the Prediction API
answers from the integer model; without the export, on a domain that is not compact or with another precision it
is refused and the iteration stays as it was served. Real Azurite, the real app, a real quantized model."""

from __future__ import annotations

import dataclasses
import io
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pipeline.contract.exports import ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ExportStatus
from pipeline.services.exports import export_message
from pipeline.store import StorageAccount
from pipeline.store.exports import ExportStore, export_blob_name
from pipeline.store.records import ExportRecord, IterationRecord, export_key
from pipeline.vision.preprocessing import preprocess
from tests.conftest import COMPACT_DOMAIN, PREDICTION_KEY, PROJECTS
from tests.published import published_iteration
from tests.sweeping import sweep_now
from tests.trained_models import classifier_onnx, classifier_pictures
from training_job.exports.job import finish
from training_job.exports.onnx_format import EXPORTER
from training_job.exports.platform import SourceModel

PREDICTION = "/customvision/v3.0/prediction"


def _int8_export(
    client: TestClient, account: StorageAccount, iteration: IterationRecord, workdir: Path, calibrated_on: int
) -> ExportRecord:
    """An ONNX INT8 export asked for through the Training API and finished as the export job finishes it: the
    model quantized (calibrated on the first `calibrated_on` pictures) under the run's own file name, then the row
    marked Done. (The in-process app queues where no job listens; test_export_service runs the job itself.)"""
    asked = client.post(
        f"{PROJECTS}/{iteration.project_id}/iterations/{iteration.id}/export",
        params={"platform": "ONNX", "flavor": "ONNX12", "precision": "INT8"},
    )
    assert asked.status_code == 200 and asked.json()["status"] == "Exporting", asked.text
    exports = ExportStore(account)
    key = export_key(iteration.id, ExportPlatform.ONNX, ExportFlavor.ONNX12, ExportPrecision.INT8)
    running = exports.get(iteration.project_id, key)
    source = SourceModel.from_bytes(classifier_onnx())
    pictures = [preprocess(image, source.input_size) for image, _ in classifier_pictures()[:calibrated_on]]
    run_dir = workdir / running.request_id
    run_dir.mkdir()
    exported = EXPORTER.export(
        dataclasses.replace(source, calibration=np.stack(pictures)),
        ExportFlavor.ONNX12,
        ExportPrecision.INT8,
        run_dir,
    )
    blob = export_blob_name(running, exported.path.name)
    exports.put_file(blob, exported.path.read_bytes())
    finish(account, export_message(running), ExportStatus.DONE, blob=blob)
    return exports.get(iteration.project_id, key)


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
    app, client: TestClient, account: StorageAccount, tmp_path: Path
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

    _int8_export(client, account, iteration, tmp_path, calibrated_on=pictures)
    published = client.post(
        publish, params={"publishName": "served", "predictionId": "r", "precision": "INT8"}
    )
    assert published.status_code == 200, published.text
    assert client.get(at).json()["servingPrecision"] == "INT8"  # served at once: this app published it
    quantized = _probabilities(predictor, classify, pictures)

    for trained, served in zip(as_trained, quantized, strict=True):
        assert max(served, key=served.get) == max(trained, key=trained.get)
        assert max(abs(served[tag] - trained[tag]) for tag in trained) < 0.1
    moved = max(abs(s[tag] - t[tag]) for t, s in zip(as_trained, quantized, strict=True) for tag in t)
    assert moved > 1e-6, "the predictions did not change: the INT8 model is not the one serving"

    assert client.delete(publish).status_code == 204
    again = client.post(publish, params={"publishName": "served", "predictionId": "r"})
    assert again.status_code == 200 and "servingPrecision" not in client.get(at).json()


def _largest_change(before: list[dict[str, float]], after: list[dict[str, float]]) -> float:
    return max(abs(a[tag] - b[tag]) for b, a in zip(before, after, strict=True) for tag in b)


def test_exporting_a_served_int8_model_again_changes_nothing_served_until_it_is_published_again(
    app, client: TestClient, account: StorageAccount, settings: Settings, tmp_path: Path
) -> None:
    """Each export run writes its own file: the served one never changes under the Prediction API's cache (keyed
    by file name), publishing again serves the new one, and the sweeper removes the old one only once nothing
    serves it, keeping a Done file while the same kind is exported again."""
    created = client.post(PROJECTS, params={"name": f"int8-{uuid.uuid4()}", "domainId": COMPACT_DOMAIN})
    project = created.json()
    iteration = published_iteration(account, project, "served", classifier_onnx())
    publish = f"{PROJECTS}/{project['id']}/iterations/{iteration.id}/publish"
    predictor = TestClient(app, headers={"Prediction-Key": PREDICTION_KEY})
    classify = f"{PREDICTION}/{project['id']}/classify/iterations/served/image/nostore"
    exports = ExportStore(account)
    int8 = {"publishName": "served", "predictionId": "r", "precision": "INT8"}

    first = _int8_export(client, account, iteration, tmp_path, calibrated_on=3)
    first_file = b"".join(exports.stream(first.blob))
    assert client.post(publish, params=int8).status_code == 200
    served_first = _probabilities(predictor, classify, 6)

    second = _int8_export(client, account, iteration, tmp_path, calibrated_on=len(classifier_pictures()))
    assert second.blob != first.blob
    assert b"".join(exports.stream(first.blob)) == first_file
    assert not sweep_now(account, project["id"]).removed, "the served file, or the Done one, was swept"
    time.sleep(settings.published_cache_seconds + 0.2)
    still = _probabilities(predictor, classify, 6)
    assert _largest_change(served_first, still) < 1e-6

    assert client.post(publish, params=int8).status_code == 200
    served_second = _probabilities(predictor, classify, 6)
    assert _largest_change(served_first, served_second) > 1e-6, (
        "publishing again did not serve the new export"
    )
    assert sweep_now(account, project["id"]).removed == Counter({"export blobs": 1})
    assert list(exports.stream(second.blob)) and exports.named_blobs(project["id"]) == {second.blob}

    assert client.post(publish, params={"publishName": "served", "predictionId": "r"}).status_code == 200
    again = client.post(
        f"{publish[: -len('/publish')]}/export", params={"platform": "ONNX", "precision": "INT8"}
    )
    assert again.status_code == 200, again.text
    assert not sweep_now(account, project["id"]).removed, (
        "the Done file went while the same kind is exported again"
    )
    running = exports.get(project["id"], second.row_key)
    finish(account, export_message(running), ExportStatus.FAILED, reason="killed")
    assert sweep_now(account, project["id"]).removed == Counter({"export blobs": 1})
    assert not exports.named_blobs(project["id"])


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
