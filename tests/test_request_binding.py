"""Request binding as the real service does it, through the real app on real Azurite: JSON property names and query
parameter names in any case, unknown properties ignored, and validation failures answered with the spec's codes."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.vocabulary import new_id
from tests.conftest import PREDICTION_KEY
from tests.images import make_image
from tests.published import published_iteration, tiny_classifier

TRAINING = "/customvision/v3.3/training"
PREDICTION = "/customvision/v3.0/Prediction"


def _images(project_id: str, path: str = "") -> str:
    return f"{TRAINING}/projects/{project_id}/images{path}"


def _tag(client: TestClient, project_id: str, name: str) -> dict:
    response = client.post(f"{TRAINING}/projects/{project_id}/tags", params={"name": name})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_portals_prediction_url_example_binds(app, account, client, project, image_server):
    """customvision.ai's "Prediction URL" curl example sends `{"Url": ...}`."""
    base, served = image_server
    served["/binding.jpg"] = make_image(seed=11)
    tags = [_tag(client, project["id"], name) for name in ("cat", "dog")]
    name = f"binding-{new_id()[:8]}"
    published_iteration(
        account, project, name, tiny_classifier([ModelLabel(t["id"], t["name"]) for t in tags])
    )
    predictor = TestClient(app, headers={"Prediction-Key": PREDICTION_KEY})
    url = f"{PREDICTION}/{project['id']}/classify/iterations/{name}/url/nostore"
    for key in ("Url", "URL", "url"):
        response = predictor.post(url, json={key: f"{base}/binding.jpg", "Comment": "ignored"})
        assert response.status_code == 200, (key, response.text)
        assert {p["tagName"] for p in response.json()["predictions"]} == {"cat", "dog"}
        assert "Url" not in response.json() and "Predictions" not in response.json()


def test_mixed_case_json_bodies(client, project, image_server):
    base, served = image_server
    served["/mixed.jpg"] = make_image(seed=12)
    pid = project["id"]
    first, second = (_tag(client, pid, n)["id"] for n in ("first", "second"))

    created = client.post(
        _images(pid, "/urls"),
        json={"Images": [{"URL": f"{base}/mixed.jpg", "Unknown": 1}], "TAGIDS": [first], "extra": {"a": 1}},
    )
    assert created.status_code == 200, created.text
    [result] = created.json()["images"]
    assert (result["status"], result["sourceUrl"]) == ("OK", f"{base}/mixed.jpg")
    image_id = result["image"]["id"]
    assert [t["tagId"] for t in result["image"]["tags"]] == [first]

    tagged = client.post(_images(pid, "/tags"), json={"Tags": [{"ImageId": image_id, "TAGID": second}]})
    assert tagged.status_code == 200, tagged.text
    assert [(t["imageId"], t["tagId"]) for t in tagged.json()["created"]] == [(image_id, second)]

    box = {"Left": 0.1, "TOP": 0.2, "width": 0.3, "Height": 0.4}
    regions = client.post(
        _images(pid, "/regions"), json={"Regions": [{"imageId": image_id, "TagId": first, **box}]}
    )
    assert regions.status_code == 200, regions.text
    [region] = regions.json()["created"]
    assert (region["left"], region["top"], region["width"], region["height"]) == (0.1, 0.2, 0.3, 0.4)

    renamed = f"renamed-{uuid.uuid4()}"
    update = {
        "NAME": renamed,
        "Description": "Mixed Case",
        "Settings": {"DomainId": project["settings"]["domainId"]},
    }
    updated = client.patch(f"{TRAINING}/projects/{pid}", json={**update, "Colour": "red"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["name"], updated.json()["description"]) == (renamed, "Mixed Case")
    assert set(updated.json()) >= {"id", "name", "description", "settings"}


def test_mixed_case_query_names(client, project):
    pid = project["id"]
    tag = client.post(f"{TRAINING}/projects/{pid}/tags", params={"NAME": "MiXeD Value", "Type": "Regular"})
    assert tag.status_code == 200, tag.text
    assert tag.json()["name"] == "MiXeD Value"  # values are untouched
    tag_id = tag.json()["id"]
    files = [("imageData", (f"{i}.jpg", make_image(seed=20 + i), "image/jpeg")) for i in range(2)]
    assert client.post(_images(pid), params={"TagIds": tag_id}, files=files).status_code == 200
    client.post(_images(pid), files={"imageData": ("u.jpg", make_image(seed=30), "image/jpeg")})

    newest = client.get(_images(pid)).json()
    assert len(newest) == 3
    oldest = client.get(_images(pid), params={"OrderBy": "Oldest", "TAKE": 1, "Skip": 0}).json()
    assert [i["id"] for i in oldest] == [newest[-1]["id"]]
    assert len(client.get(_images(pid), params={"TAGIDS": tag_id}).json()) == 2
    assert client.get(_images(pid, "/count"), params={"tagids": tag_id}).json() == 2
    assert client.get(_images(pid, "/count"), params={"TaggingStatus": "Untagged"}).json() == 1
    assert len(client.get(_images(pid, "/id"), params={"ImageIDs": newest[0]["id"]}).json()) == 1


def test_an_image_predictions_application_binds_in_any_case(app, account, client, project):
    """The image prediction routes read their query themselves (pipeline.api.direct_route): `Application=` binds
    like any declared name, a bad name is refused, and the stored prediction is filed under the name sent."""
    labels = [ModelLabel(new_id(), "cat"), ModelLabel(new_id(), "dog")]
    name = f"application-{new_id()[:8]}"
    published_iteration(account, project, name, tiny_classifier(labels))
    predictor = TestClient(app, headers={"Prediction-Key": PREDICTION_KEY})
    url = f"{PREDICTION}/{project['id']}/classify/iterations/{name}/image"

    stored = predictor.post(url, params={"Application": "Kiosk-1"}, content=make_image(seed=12))
    assert stored.status_code == 200, stored.text
    refused = predictor.post(url, params={"APPLICATION": "not a name"}, content=make_image(seed=12))
    invalid_name = "BadRequestPredictionInvalidApplicationName"
    assert (refused.status_code, refused.json()["code"]) == (400, invalid_name), refused.text
    found = _query_predictions(client, project["id"], {"application": "Kiosk-1"})
    assert [r["id"] for r in found.json()["results"]] == [stored.json()["id"]], found.text


def _query_predictions(client: TestClient, project_id: str, body: dict):
    return client.post(f"{TRAINING}/projects/{project_id}/predictions/query", json=body)


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("", {"take": 257}, "BadRequestInvalid"),
        ("", {"take": "many"}, "BadRequestInvalid"),
        ("", {"skip": -1}, "BadRequestInvalid"),
        ("", {"orderBy": "Sideways"}, "BadRequestInvalid"),
        ("/tagged", {"orderBy": "Sideways"}, "BadRequestInvalid"),
        ("", {"taggingStatus": "Sometimes"}, "BadRequestInvalid"),
        ("", {"tagIds": "not-a-guid"}, "BadRequestInvalidIds"),
        ("/count", {"tagIds": "not-a-guid"}, "BadRequestInvalidIds"),
        ("/id", {"imageIds": "not-a-guid"}, "BadRequestInvalidIds"),
    ],
)
def test_query_validation_codes(client, project, path, params, code):
    response = client.get(_images(project["id"], path), params=params)
    assert (response.status_code, response.json()["code"]) == (400, code), response.text


def test_project_and_body_validation_codes(client, project):
    projects = f"{TRAINING}/projects"
    unknown = [
        ({"name": "x", "classificationType": "Sideways"}, "BadRequestProjectUnknownClassification"),
        ({"name": "x", "domainId": str(uuid.uuid4())}, "BadRequestProjectUnknownDomain"),
        ({"name": "x", "domainId": "not-a-guid"}, "BadRequestProjectUnknownDomain"),
    ]
    for params, code in unknown:
        response = client.post(projects, params=params)
        assert (response.status_code, response.json()["code"]) == (400, code), response.text

    pid = project["id"]
    too_many = _query_predictions(client, pid, {"maxCount": 257})
    assert (too_many.status_code, too_many.json()["code"]) == (
        400,
        "BadRequestPredictionResultsExceededCount",
    )
    bad_order = _query_predictions(client, pid, {"OrderBy": "Sideways"})
    assert bad_order.json()["code"] == "BadRequestPredictionInvalidQueryParameters"
    wrong_type = _query_predictions(client, pid, {"maxCount": "lots"})
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (400, "BadRequestInvalid")

    missing = client.post(_images(pid, "/tags"), json={"tags": [{"imageId": str(uuid.uuid4())}]})
    assert (missing.status_code, missing.json()["code"]) == (400, "BadRequestRequiredParamIsNull")
    no_body = client.post(_images(pid, "/urls"))
    assert (no_body.status_code, no_body.json()["code"]) == (400, "BadRequestRequiredParamIsNull")
    tag_id = _tag(client, pid, "known")["id"]
    bad_ids = client.post(_images(pid, "/tags"), json={"tags": [{"imageId": "nope", "tagId": tag_id}]})
    assert (bad_ids.status_code, bad_ids.json()["code"]) == (400, "BadRequestInvalidIds")
    malformed = client.patch(
        f"{projects}/{pid}", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (malformed.status_code, malformed.json()["code"]) == (
        400,
        "BadRequest",
    )  # the spec has nothing closer
