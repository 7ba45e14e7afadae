"""Exports through the whole service (function_app.py on the local host, the export job in its own process, as
scripts/run.sh runs them): the suite's trained detector exported to ONNX in FP32 and INT8, polled with GetExports
until Done, downloaded through downloadUri and GetArtifact (a zip of model.onnx and labels.txt, as Custom
Vision's), and run with ONNX Runtime; a flavor Seer cannot produce
faithfully ends Failed with its reason."""

from __future__ import annotations

import io
import time
import zipfile
from urllib.parse import urlsplit

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from pipeline.contract.onnx_model import DETECTOR_OUTPUTS, INPUT
from pipeline.store import StorageAccount
from pipeline.store.exports import CONTAINER, ExportStore
from pipeline.vision.preprocessing import preprocess_full
from tests.conftest import PROJECTS, TRAINING_KEY
from tests.images import detection_scene


def finished(http: httpx.Client, url: str, timeout: float = 300.0) -> list[dict]:
    """GetExports until no export is Exporting."""
    deadline = time.monotonic() + timeout
    while True:
        exports = http.get(url).raise_for_status().json()
        if all(e["status"] != "Exporting" for e in exports):
            return exports
        assert time.monotonic() < deadline, f"exports did not finish in time: {exports}"
        time.sleep(0.5)


@pytest.fixture()
def http(service: str):
    with httpx.Client(base_url=service, headers={"Training-Key": TRAINING_KEY}, timeout=30) as client:
        yield client


def test_detector_exports_to_onnx_fp32_and_int8(
    http: httpx.Client, trained_detector: dict, account: StorageAccount
) -> None:
    project_id, iteration_id = trained_detector["project"].id, trained_detector["iteration"].id
    url = f"{PROJECTS}/{project_id}/iterations/{iteration_id}/export"
    for precision in ("FP32", "INT8"):
        started = http.post(url, params={"platform": "ONNX", "flavor": "ONNX12", "precision": precision})
        assert started.status_code == 200 and started.json()["status"] == "Exporting", started.text
    failing = http.post(url, params={"platform": "ONNX", "flavor": "ONNX10"})
    assert failing.status_code == 200, failing.text

    exports = {(e["flavor"], e["precision"]): e for e in finished(http, url)}
    rows = {(r.flavor, r.precision): r for r in ExportStore(account).list(project_id, iteration_id)}
    old = exports[("ONNX10", "FP32")]
    assert old["status"] == "Failed" and "downloadUri" not in old
    assert "opset 10" in rows[("ONNX10", "FP32")].reason and old["reason"] == rows[("ONNX10", "FP32")].reason

    for precision in ("FP32", "INT8"):
        export = exports[("ONNX12", precision)]
        assert export["status"] == "Done" and "reason" not in export, rows[("ONNX12", precision)].reason
        parity = rows[("ONNX12", precision)].parity
        assert parity["passed"] and parity["images"] == 24, parity
        assert export["parity"] == {
            "images": 24,
            "agreement": parity["agreement"],
            "maxDifference": parity["max_difference"],
            "passed": True,
        }
        downloaded = httpx.get(export["downloadUri"], timeout=30).raise_for_status().content
        blob_path = urlsplit(export["downloadUri"]).path.split(f"/{CONTAINER}/{project_id}/", 1)[1]
        artifact = http.get(f"{PROJECTS}/{project_id}/artifacts", params={"path": blob_path})
        assert artifact.status_code == 200 and artifact.content == downloaded
        with zipfile.ZipFile(
            io.BytesIO(downloaded)
        ) as archive:  # Custom Vision's layout: model.onnx, labels.txt
            assert sorted(archive.namelist()) == ["labels.txt", "model.onnx"]
            model = archive.read("model.onnx")
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        assert [o.name for o in session.get_outputs()] == list(DETECTOR_OUTPUTS)
        size = session.get_inputs()[0].shape[-1]
        scenes = np.stack([preprocess_full(detection_scene(seed)[0], size) for seed in range(3)])
        boxes, scores, _ = session.run(None, {INPUT: scenes})
        assert boxes.shape[-1] == 4 and scores.max() > 0.1
    assert exports[("ONNX12", "FP32")]["downloadUri"] != exports[("ONNX12", "INT8")]["downloadUri"]
