"""ExportIteration, GetExports and GetArtifact in-process (real Azurite, no export job listening): each bad input
gets its Custom Vision code and status and leaves the stored exports as they were; a good one answers Exporting at
once and queues the export."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from pipeline.contract.export_request import ExportMessage
from pipeline.contract.exports import SUPPORTED, ExportPlatform
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ExportStatus, IterationStatus
from pipeline.store import StorageAccount
from pipeline.store.exports import ExportStore
from pipeline.store.iterations import IterationStore
from pipeline.store.records import IterationRecord
from tests.conftest import COMPACT_DOMAIN, PROJECTS


def make_iteration(account: StorageAccount, project_id: str, status: IterationStatus) -> str:
    iteration = IterationRecord(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name=f"Iteration {status}",
        status=status,
        domain_id=COMPACT_DOMAIN,
        training_set_fingerprint="-",
        model_blob=f"{project_id}/x/model.onnx" if status == IterationStatus.COMPLETED else None,
    )
    IterationStore(account).create(iteration)
    return iteration.id


@pytest.fixture()
def iterations(client: TestClient, account: StorageAccount) -> dict[str, str]:
    project = client.post(
        PROJECTS, params={"name": f"export-{uuid.uuid4()}", "domainId": COMPACT_DOMAIN}
    ).json()
    return {
        "project": project["id"],
        **{status.value: make_iteration(account, project["id"], status) for status in IterationStatus},
    }


def export_url(iterations: dict[str, str], status: str = "Completed") -> str:
    return f"{PROJECTS}/{iterations['project']}/iterations/{iterations[status]}/export"


def queued(account: StorageAccount, settings: Settings, project_id: str) -> list[ExportMessage]:
    queue = account.queue(settings.export_queue)
    messages = [ExportMessage.decode(m.content) for m in queue.peek_messages(max_messages=32)]
    return [m for m in messages if m.project_id == project_id]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "BadRequestExportValidationFailed"),
        ({"platform": "Caffe"}, "BadRequestExportValidationFailed"),
        ({"platform": "VAIDK"}, "BadRequestProjectUnsupportedExportPlatform"),
        ({"platform": "ONNX", "flavor": "ONNX9"}, "BadRequestExportValidationFailed"),
        ({"platform": "ONNX", "flavor": "Linux"}, "BadRequestExportValidationFailed"),
        ({"platform": "OpenVino", "flavor": "ONNX12"}, "BadRequestExportValidationFailed"),
        ({"platform": "ONNX", "precision": "FP8"}, "BadRequestExportValidationFailed"),
        ({"platform": "DockerFile", "precision": "INT8"}, "BadRequestExportValidationFailed"),
    ],
)
def test_bad_export_requests(
    client: TestClient, account: StorageAccount, settings: Settings, iterations: dict[str, str], params, code
) -> None:
    response = client.post(export_url(iterations), params=params)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert ExportStore(account).list(iterations["project"], iterations["Completed"]) == []
    assert queued(account, settings, iterations["project"]) == []


@pytest.mark.parametrize(
    ("status", "code"),
    [("Training", "BadRequestExportWhileTraining"), ("Failed", "BadRequestIterationIsNotTrained")],
)
def test_only_a_completed_iteration_exports(
    client: TestClient, account: StorageAccount, iterations: dict[str, str], status: str, code: str
) -> None:
    response = client.post(export_url(iterations, status), params={"platform": "ONNX"})
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert ExportStore(account).list(iterations["project"], iterations[status]) == []
    missing = f"{PROJECTS}/{iterations['project']}/iterations/{uuid.uuid4()}/export"
    assert client.post(missing, params={"platform": "ONNX"}).json()["code"] == "NotFoundIteration"


def test_export_answers_exporting_and_queues_one_export_at_a_time(
    client: TestClient, account: StorageAccount, settings: Settings, iterations: dict[str, str]
) -> None:
    url = export_url(iterations)
    started = client.post(url, params={"platform": "onnx", "flavor": "ONNX12", "precision": "int8"})
    assert started.status_code == 200, started.text
    assert started.json() == {
        "platform": "ONNX",
        "status": "Exporting",
        "flavor": "ONNX12",
        "newerVersionAvailable": False,
        "precision": "INT8",
    }
    again = client.post(url, params={"platform": "ONNX", "flavor": "ONNX12", "precision": "INT8"})
    assert (again.status_code, again.json()["code"]) == (400, "BadRequestExportAlreadyInProgress")
    other = client.post(url, params={"platform": "ONNX"})  # FP32 is another export: it may run beside
    assert other.status_code == 200 and other.json()["precision"] == "FP32"
    listed = client.get(url).json()
    assert [(e["precision"], e["status"]) for e in listed] == [("INT8", "Exporting"), ("FP32", "Exporting")]
    assert all("downloadUri" not in e for e in listed)
    messages = queued(account, settings, iterations["project"])
    assert [(m.platform, m.flavor, m.precision) for m in messages] == [
        ("ONNX", "ONNX12", "INT8"),
        ("ONNX", "ONNX12", "FP32"),
    ]


def test_get_artifact_serves_only_done_exports(client: TestClient, iterations: dict[str, str]) -> None:
    url = f"{PROJECTS}/{iterations['project']}/artifacts"
    for path in (f"{iterations['Completed']}/ONNX-ONNX12-FP32/model.onnx", "../models/x", "", "/etc/passwd"):
        response = client.get(url, params={"path": path})
        assert (response.status_code, response.json()["code"]) == (400, "BadRequestInvalidArtifactUri"), path


def test_completed_iterations_are_exportable_to_every_supported_platform_the_version_names(
    client: TestClient, iterations: dict[str, str]
) -> None:
    preview = PROJECTS.replace("v3.3", "v3.4-preview")
    completed = client.get(f"{preview}/{iterations['project']}/iterations/{iterations['Completed']}").json()
    assert completed["exportable"] is True
    assert completed["exportableTo"] == [platform.value for platform in SUPPORTED]
    at = f"{PROJECTS}/{iterations['project']}/iterations"
    v33 = client.get(f"{at}/{iterations['Completed']}").json()["exportableTo"]
    assert v33 == [platform.value for platform in SUPPORTED if platform != ExportPlatform.OPENVINO]
    refused = client.post(export_url(iterations), params={"platform": "OpenVino"})  # v3.3 has no OpenVino
    assert refused.json()["code"] == "BadRequestExportValidationFailed"
    training = client.get(f"{at}/{iterations['Training']}").json()
    assert (training["exportable"], training["exportableTo"]) == (False, [])


def test_deleting_an_iteration_deletes_its_exports(
    client: TestClient, account: StorageAccount, iterations: dict[str, str]
) -> None:
    assert client.post(export_url(iterations), params={"platform": "ONNX"}).status_code == 200
    store = ExportStore(account)
    [record] = store.list(iterations["project"], iterations["Completed"])
    store.put_file(f"{record.project_id}/{record.iteration_id}/ONNX-ONNX12-FP32/model.onnx", b"onnx")
    deleted = client.delete(f"{PROJECTS}/{iterations['project']}/iterations/{iterations['Completed']}")
    assert deleted.status_code == 204
    assert store.list(iterations["project"], iterations["Completed"]) == []
    assert list(store.container.list_blobs(name_starts_with=f"{iterations['project']}/")) == []


def test_a_finished_export_is_exported_again(
    client: TestClient, account: StorageAccount, settings: Settings, iterations: dict[str, str]
) -> None:
    url = export_url(iterations)
    first = client.post(url, params={"platform": "ONNX", "precision": "FP16"})
    assert first.status_code == 200
    store = ExportStore(account)
    [record] = store.list(iterations["project"], iterations["Completed"])
    store.update(
        record.project_id, record.row_key, lambda r: r.model_copy(update={"status": ExportStatus.DONE})
    )
    again = client.post(url, params={"platform": "ONNX", "precision": "FP16"})
    assert again.status_code == 200 and again.json()["status"] == "Exporting"
    [rerun] = store.list(iterations["project"], iterations["Completed"])
    assert rerun.request_id != record.request_id
    assert [m.request_id for m in queued(account, settings, iterations["project"])] == [
        record.request_id,
        rerun.request_id,
    ]


def test_get_exports_tells_each_exports_parity_figures(
    client: TestClient, account: StorageAccount, iterations: dict[str, str]
) -> None:
    """Seer's extra `parity` (the official SDK ignores it): the export job's figures once its check ran, in the
    wire's camelCase; none while the export is Exporting."""
    url = export_url(iterations)
    assert client.post(url, params={"platform": "ONNX", "precision": "INT8"}).status_code == 200
    [exporting] = client.get(url).json()
    assert "parity" not in exporting
    store = ExportStore(account)
    [record] = store.list(iterations["project"], iterations["Completed"])
    figures = {"precision": "INT8", "images": 24, "agreement": 1.0, "max_difference": 0.07, "passed": True}
    store.update(
        record.project_id,
        record.row_key,
        lambda r: r.model_copy(
            update={"status": ExportStatus.DONE, "parity": {**figures, "unknown_agreement": 0.96}}
        ),
    )
    [done] = client.get(url).json()
    assert done["parity"] == {
        "images": 24,
        "agreement": 1.0,
        "maxDifference": 0.07,
        "passed": True,
        "unknownAgreement": 0.96,
    }
    store.update(record.project_id, record.row_key, lambda r: r.model_copy(update={"parity": figures}))
    [without_unknown] = client.get(url).json()
    assert "unknownAgreement" not in without_unknown["parity"]
