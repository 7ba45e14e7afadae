"""Domains, projects and tags through the HTTP API and the official SDK, on real Azurite."""

from __future__ import annotations

import uuid

import pytest

from pipeline.core.vocabulary import new_id
from pipeline.store.iterations import IterationStore
from pipeline.store.predictions import PredictionStore
from pipeline.store.records import PredictionRecord
from tests.conftest import TRAINING_KEY
from tests.published import published_iteration

BASE = "/customvision/v3.3/training"


def test_sdk_creates_project_and_tags(trainer):
    domains = trainer.get_domains()
    general = next(d for d in domains if d.type == "Classification" and d.name == "General")
    assert general.id == "ee85a74c-405e-4adc-bb47-ffa8ca0c9f31"
    detection = [d for d in domains if d.type == "ObjectDetection"]
    assert {d.id for d in detection} >= {
        "da2e3a8a-40a5-4171-82f4-58522f70fbc1",
        "a27d5ca5-bb19-49d8-a70a-fec086c47f5b",
    }

    name = f"sdk-{uuid.uuid4()}"
    project = trainer.create_project(name, description="trees", classification_type="Multilabel")
    assert project.name == name
    assert project.settings.classification_type == "Multilabel"
    assert project.settings.domain_id == general.id

    hemlock = trainer.create_tag(project.id, "Hemlock")
    cherry = trainer.create_tag(project.id, "Japanese Cherry", type="Regular")
    tags = trainer.get_tags(project.id)
    assert {t.name for t in tags} == {"Hemlock", "Japanese Cherry"}
    assert all(t.image_count == 0 for t in tags)
    assert trainer.get_tag(project.id, hemlock.id).name == "Hemlock"

    project.description = "conifers"
    updated = trainer.update_project(project.id, project)
    assert updated.description == "conifers"
    assert trainer.get_project(project.id).description == "conifers"

    trainer.delete_tag(project.id, cherry.id)
    assert [t.name for t in trainer.get_tags(project.id)] == ["Hemlock"]
    trainer.delete_project(project.id)
    assert project.id not in {p.id for p in trainer.get_projects()}


@pytest.mark.parametrize("headers", [{}, {"Training-Key": "wrong"}, {"Prediction-Key": TRAINING_KEY}])
def test_missing_or_wrong_key_is_401(app, headers):
    from fastapi.testclient import TestClient

    response = TestClient(app).get(f"{BASE}/projects", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"


def test_the_api_description_needs_the_training_key(app):
    """`/openapi.json` describes every route: only for holders of the training key. The interactive docs, which
    would load scripts from a CDN, are not served."""
    from fastapi.testclient import TestClient

    anonymous = TestClient(app)
    assert anonymous.get("/openapi.json").status_code == 401
    for page in ("/docs", "/redoc"):
        assert anonymous.get(page, headers={"Training-Key": TRAINING_KEY}).status_code == 404
    described = anonymous.get("/openapi.json", headers={"Training-Key": TRAINING_KEY})
    assert described.status_code == 200
    assert f"{BASE.replace('v3.3', '{version}')}/projects" in described.json()["paths"]


def test_the_key_is_checked_before_the_body_is_read(app):
    """A request without the key is refused without reading its body: a keyless client cannot make Seer hold
    a large body in memory (here 64 MiB that would be read a megabyte at a time)."""
    from fastapi.testclient import TestClient

    sent: list[int] = []

    def large_body():
        yield b'{"images": ['
        for _ in range(64):
            sent.append(1)
            yield b'{"contents": "AAAA"},' * 50_000

    for url in (
        f"{BASE}/projects/{uuid.uuid4()}/images/files",
        "/customvision/v3.1/Prediction/x/classify/iterations/y/url",
    ):
        sent.clear()
        response = TestClient(app).post(
            url, content=large_body(), headers={"Content-Type": "application/json"}
        )
        assert (response.status_code, response.json()["code"]) == (401, "Unauthorized")
        assert len(sent) <= 1, f"{len(sent)} MiB of the body were read before the key was checked"


def test_project_validation_errors(client, project):
    cases = [
        ({"name": ""}, "BadRequestProjectName"),
        ({"name": "x", "domainId": str(uuid.uuid4())}, "BadRequestProjectUnknownDomain"),
        ({"name": "x", "classificationType": "Sometimes"}, "BadRequestProjectUnknownClassification"),
        ({"name": project["name"]}, "BadRequestProjectNameNotUnique"),
        ({"name": "x", "targetExportPlatforms": "Quantum"}, "BadRequestProjectUnsupportedExportPlatform"),
    ]
    before = len(client.get(f"{BASE}/projects").json())
    for params, code in cases:
        response = client.post(f"{BASE}/projects", params=params)
        assert response.status_code == 400, params
        assert response.json()["code"] == code
    assert len(client.get(f"{BASE}/projects").json()) == before


def test_domain_type_cannot_change(client, project):
    body = {"settings": {"domainId": "da2e3a8a-40a5-4171-82f4-58522f70fbc1"}}
    response = client.patch(f"{BASE}/projects/{project['id']}", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "BadRequestProjectUnsupportedDomainTypeChange"


def test_detection_project_has_no_classification_type(client):
    response = client.post(
        f"{BASE}/projects",
        params={"name": f"det-{uuid.uuid4()}", "domainId": "da2e3a8a-40a5-4171-82f4-58522f70fbc1"},
    )
    assert response.status_code == 200
    assert response.json()["settings"]["classificationType"] is None


def test_unknown_project_and_tag_are_404(client, project):
    missing = str(uuid.uuid4())
    assert client.get(f"{BASE}/projects/{missing}").json()["code"] == "NotFoundProject"
    response = client.get(f"{BASE}/projects/{project['id']}/tags/{missing}")
    assert response.status_code == 404
    assert response.json()["code"] == "NotFoundTag"


def test_tag_rules(client, project):
    url = f"{BASE}/projects/{project['id']}/tags"
    assert client.post(url, params={"name": "neg", "type": "Negative"}).status_code == 200
    assert (
        client.post(url, params={"name": "neg2", "type": "Negative"}).json()["code"]
        == "BadRequestMultipleNegativeTag"
    )
    assert client.post(url, params={"name": "NEG"}).json()["code"] == "BadRequestTagNameNotUnique"
    assert client.post(url, params={"name": "x", "type": "Odd"}).json()["code"] == "BadRequestTagType"
    assert client.post(url, params={"name": " "}).json()["code"] == "BadRequestTagName"
    assert [t["name"] for t in client.get(url).json()] == ["neg"]


def test_tag_names_that_look_the_same_are_the_same(client, project):
    """A name in another Unicode normal form is the same name; control characters are no part of a name."""
    url = f"{BASE}/projects/{project['id']}/tags"
    assert client.post(url, params={"name": "caf\u00e9"}).status_code == 200
    assert client.post(url, params={"name": "cafe\u0301"}).json()["code"] == "BadRequestTagNameNotUnique"
    assert client.post(url, params={"name": "a\x00b"}).json()["code"] == "BadRequestTagName"
    assert client.post(url, params={"name": "line\nbreak"}).json()["code"] == "BadRequestTagName"
    assert [t["name"] for t in client.get(url).json()] == ["caf\u00e9"]


def test_overlong_texts_are_refused_with_their_codes(client, project):
    """Texts past their limit are a Custom Vision error, not a storage failure (a table property holds 64 KiB)."""
    long = "x" * 40_000
    url = f"{BASE}/projects"
    assert client.post(url, params={"name": f"long-{uuid.uuid4()}", "description": long}).json()["code"] == (
        "BadRequestProjectDescription"
    )
    update = client.patch(f"{url}/{project['id']}", json={"description": long})
    assert update.json()["code"] == "BadRequestProjectDescription"
    queue = client.post(
        url,
        params={"name": f"long-{uuid.uuid4()}"},
        json={"notificationQueueUri": "https://example.invalid/" + "q" * 100_000},
    )
    assert (queue.status_code, queue.json()["code"]) == (400, "BadRequestInvalid")
    tags = f"{url}/{project['id']}/tags"
    assert (
        client.post(tags, params={"name": "t", "description": long}).json()["code"]
        == "BadRequestTagDescription"
    )
    assert client.get(tags).json() == []
    assert client.get(f"{url}/{project['id']}").json()["description"] == project["description"]


def test_malformed_json_body_is_400(client, project):
    response = client.patch(
        f"{BASE}/projects/{project['id']}", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "BadRequest"
    assert client.get(f"{BASE}/projects/{project['id']}").json()["name"] == project["name"]


def test_delete_project_takes_everything_and_waits_for_unpublish(client, project, account):
    """DeleteProject is refused while an iteration is published (as Custom Vision); then it removes the
    iterations with their model blobs and the stored predictions with their images, not only images and tags."""
    pid = project["id"]
    iterations, predictions = IterationStore(account), PredictionStore(account)
    iteration = published_iteration(account, project, "live", b"model")
    prediction = PredictionRecord(
        id=new_id(),
        project_id=pid,
        iteration_id=iteration.id,
        domain_id=iteration.domain_id,
        original_blob=f"{pid}/p/original.jpg",
        resized_blob=f"{pid}/p/resized.jpg",
        thumbnail_blob=f"{pid}/p/thumbnail.jpg",
        width=1,
        height=1,
    )
    for blob in (prediction.original_blob, prediction.resized_blob, prediction.thumbnail_blob):
        predictions.put_blob(blob, b"image", "image/jpeg")
    predictions.insert(prediction)

    refused = client.delete(f"{BASE}/projects/{pid}")
    assert (refused.status_code, refused.json()["code"]) == (400, "BadRequestIterationIsPublished")
    assert client.get(f"{BASE}/projects/{pid}").status_code == 200
    assert iterations.get(pid, iteration.id) is not None

    assert client.delete(f"{BASE}/projects/{pid}/iterations/{iteration.id}/publish").status_code == 204
    assert client.delete(f"{BASE}/projects/{pid}").status_code == 204
    assert client.get(f"{BASE}/projects/{pid}").status_code == 404
    assert iterations.list(pid) == []
    assert list(iterations.container.list_blobs(name_starts_with=f"{pid}/")) == []
    assert list(predictions.newest_first(pid)) == []
    assert list(predictions.container.list_blobs(name_starts_with=f"{pid}/")) == []
