"""Tag types on the wire: a Negative tag is reported as such wherever a prediction names its tag (Prediction
API, quick tests, stored predictions), and GeneralProduct is a tag type like the spec's TagType enum says."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.vocabulary import TagType, new_id
from tests.conftest import PREDICTION_KEY
from tests.images import make_image
from tests.published import published_iteration, tiny_classifier

TRAINING = "/customvision/v3.3/training"
PREDICTION = "/customvision/v3.1/Prediction"


def _tag(client: TestClient, project_id: str, name: str, tag_type: str | None = None) -> dict:
    params = {"name": name} | ({"type": tag_type} if tag_type else {})
    response = client.post(f"{TRAINING}/projects/{project_id}/tags", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _types(body: dict) -> dict[str, str]:
    return {p["tagName"]: p["tagType"] for p in body["predictions"]}


def test_negative_tags_are_reported_as_negative(app, account, client, project):
    pid = project["id"]
    tags = [_tag(client, pid, "cat"), _tag(client, pid, "nothing", "Negative")]
    name = f"types-{new_id()[:8]}"
    labels = [ModelLabel(t["id"], t["name"], TagType(t["type"])) for t in tags]
    iteration = published_iteration(account, project, name, tiny_classifier(labels))
    expected = {"cat": "Regular", "nothing": "Negative"}

    predictor = TestClient(app, headers={"Prediction-Key": PREDICTION_KEY})
    image = make_image(seed=3)
    predicted = predictor.post(f"{PREDICTION}/{pid}/classify/iterations/{name}/image", content=image)
    assert predicted.status_code == 200, predicted.text
    assert _types(predicted.json()) == expected

    quick = client.post(
        f"{TRAINING}/projects/{pid}/quicktest/image", params={"iterationId": iteration.id}, content=image
    )
    assert quick.status_code == 200, quick.text
    assert _types(quick.json()) == expected

    stored = client.post(f"{TRAINING}/projects/{pid}/predictions/query", json={"maxCount": 10})
    assert stored.status_code == 200, stored.text
    results = stored.json()["results"]
    assert len(results) == 2 and all(_types(r) == expected for r in results)


def test_general_product_tags(client, project):
    url = f"{TRAINING}/projects/{project['id']}/tags"
    created = _tag(client, project["id"], "product", "GeneralProduct")
    assert created["type"] == "GeneralProduct"
    assert client.get(f"{url}/{created['id']}").json()["type"] == "GeneralProduct"
    assert [t["type"] for t in client.get(url).json()] == ["GeneralProduct"]

    second = client.post(url, params={"name": "other", "type": "generalproduct"})
    assert (second.status_code, second.json()["code"]) == (400, "BadRequestMultipleGeneralProductTag")
    regular = _tag(client, project["id"], "shelf")
    changed = client.patch(f"{url}/{regular['id']}", json={"name": "shelf", "type": "GeneralProduct"})
    assert changed.json()["code"] == "BadRequestMultipleGeneralProductTag"
