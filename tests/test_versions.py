"""Every documented API version answers, with the key in any of the headers Custom Vision takes, in any case:
Training v3.0 to v3.4-preview, Prediction v3.0 and v3.1; `Ocp-Apim-Subscription-Key` works on both APIs. A version
that was never published is a 404 NotFound."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pipeline.api.routing import API_VERSIONS, PREDICTION_API_VERSIONS
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.vocabulary import new_id
from pipeline.store import StorageAccount
from tests.conftest import PREDICTION_KEY, TRAINING_KEY
from tests.images import make_image
from tests.published import published_iteration, tiny_classifier

DOCUMENTED_TRAINING = ("v3.0", "v3.1", "v3.2", "v3.3", "v3.4-preview")
DOCUMENTED_PREDICTION = ("v3.0", "v3.1")
# How clients spell the key headers: the SDKs' `Training-key`, the docs' `Training-Key`, curl users' lower case,
# and the API Management header every Cognitive Services resource accepts.
TRAINING_HEADERS = (
    "Training-Key",
    "Training-key",
    "training-key",
    "TRAINING-KEY",
    "Ocp-Apim-Subscription-Key",
)
PREDICTION_HEADERS = ("Prediction-Key", "Prediction-key", "prediction-key", "ocp-apim-subscription-key")


def test_the_documented_versions_are_the_routed_ones() -> None:
    assert (tuple(API_VERSIONS), tuple(PREDICTION_API_VERSIONS)) == (
        DOCUMENTED_TRAINING,
        DOCUMENTED_PREDICTION,
    )


@pytest.fixture(scope="module")
def published(app, account: StorageAccount) -> dict:
    """A project with two tags and a tiny classifier published as "versions"."""
    trainer = TestClient(app, headers={"Training-Key": TRAINING_KEY})
    base = "/customvision/v3.3/training/projects"
    project = trainer.post(base, params={"name": f"versions-{new_id()}"}).json()
    tags = [trainer.post(f"{base}/{project['id']}/tags", params={"name": n}).json() for n in ("red", "blue")]
    published_iteration(
        account, project, "versions", tiny_classifier([ModelLabel(t["id"], t["name"]) for t in tags])
    )
    return project


@pytest.mark.parametrize("version", DOCUMENTED_TRAINING)
def test_training_versions_with_every_key_header(app, published: dict, version: str) -> None:
    anonymous = TestClient(app)
    for header in TRAINING_HEADERS:
        headers = {header: TRAINING_KEY}
        projects = anonymous.get(f"/customvision/{version}/training/projects", headers=headers)
        assert projects.status_code == 200, (header, projects.text)
        assert published["id"] in {p["id"] for p in projects.json()}
        domains = anonymous.get(f"/CustomVision/{version}/Training/domains", headers=headers)
        assert domains.status_code == 200, (header, domains.text)
        assert any(d["type"] == "ObjectDetection" for d in domains.json())
    wrong = anonymous.get(
        f"/customvision/{version}/training/projects", headers={"Training-Key": PREDICTION_KEY}
    )
    assert (wrong.status_code, wrong.json()["code"]) == (401, "Unauthorized")


@pytest.mark.parametrize("version", DOCUMENTED_PREDICTION)
def test_prediction_versions_with_every_key_header(app, published: dict, version: str) -> None:
    anonymous = TestClient(app)
    url = f"/customvision/{version}/Prediction/{published['id']}/classify/iterations/versions/image/nostore"
    for header in PREDICTION_HEADERS:
        response = anonymous.post(url, headers={header: PREDICTION_KEY}, content=make_image())
        assert response.status_code == 200, (header, response.text)
        body = response.json()
        assert body["project"] == published["id"]
        assert {p["tagName"] for p in body["predictions"]} == {"red", "blue"}
    wrong = anonymous.post(url, headers={"Prediction-Key": TRAINING_KEY}, content=make_image())
    assert (wrong.status_code, wrong.json()["code"]) == (401, "Unauthorized")


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/customvision/v2.2/training/projects", {"Training-Key": TRAINING_KEY}),
        ("/customvision/v3.5/training/projects", {"Ocp-Apim-Subscription-Key": TRAINING_KEY}),
        ("/customvision/3.3/training/domains", {"Training-Key": TRAINING_KEY}),
        (
            "/customvision/v3.2/prediction/{project}/classify/iterations/versions/image",
            {"Prediction-Key": PREDICTION_KEY},
        ),
        (
            "/customvision/v3.4-preview/prediction/{project}/classify/iterations/versions/image",
            {"Prediction-Key": PREDICTION_KEY},
        ),
        (
            "/customvision/v2.0/prediction/{project}/classify/iterations/versions/image",
            {"Prediction-Key": PREDICTION_KEY},
        ),
    ],
)
def test_unknown_version_is_not_found(app, published: dict, path: str, key: dict) -> None:
    client = TestClient(app, headers=key)
    url = path.format(project=published["id"])
    response = client.post(url, content=make_image()) if "/prediction/" in url else client.get(url)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "NotFound"
    assert "not supported" in response.json()["message"]
