"""Seer against the official REST descriptions (issue 11): every operation has a route, and every response a
realistic session provokes validates against its operation's schema (required fields, types, enums, nullability;
error bodies carry a code from the spec's CustomVisionError enum). This session runs against the in-process app
with an iteration written to storage (no training); tests/test_conformance_trained.py trains for real against the
whole service, and checks that the two sessions together reach every routed operation.

The description-driven tests skip when `../shared/specs/customvision` is absent; a core session, the validator's own
test and the error-code check run always, from `tests/spec_subset.json` (the descriptions cut down to a few core
operations, kept equal to them by a test) and `tests/spec_codes.json`."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from pipeline.contract.onnx_model import ModelLabel
from pipeline.store import StorageAccount
from tests.conformance import (
    DESCRIPTIONS,
    KNOWN_MISSING,
    SPEC_SUBSET,
    SPECS,
    Recorder,
    ResponseValidator,
    Tally,
    error_codes,
    missing_operations,
    needs_specs,
    ok,
    recorded_client,
    subset,
)
from tests.conftest import PREDICTION_KEY, PROJECTS, TRAINING_KEY
from tests.images import pattern_image
from tests.published import published_iteration, tiny_classifier

DETECTION_DOMAIN = "da2e3a8a-40a5-4171-82f4-58522f70fbc1"  # General (object detection)


@needs_specs
def test_every_operation_has_a_route(app) -> None:
    assert missing_operations(app.openapi()) == KNOWN_MISSING


@needs_specs
def test_the_checked_in_subset_is_the_descriptions() -> None:
    expected = {name: subset(json.loads((SPECS / name).read_text())) for name in DESCRIPTIONS}
    assert json.loads(SPEC_SUBSET.read_text()) == expected, "refresh it: python -m tests.conformance"


def test_core_responses_validate(
    live_url: str, account: StorageAccount, image_server: tuple[str, dict[str, bytes]]
) -> None:
    """Runs with or without ../shared: the core of a session, every response validated (against the subset
    when the descriptions are absent), errors included."""
    with recorded_client(live_url, TRAINING_KEY, PREDICTION_KEY) as (http, recorder):
        ok(http.get("/customvision/v3.3/training/domains"))
        project = ok(http.post(PROJECTS, params={"name": f"core-{uuid.uuid4()}"})).json()
        at = f"{PROJECTS}/{project['id']}"
        try:
            ok(http.get(at))
            ok(http.patch(at, json=project | {"description": "core"}))
            tags = [ok(http.post(f"{at}/tags", params={"name": name})).json() for name in ("a", "b")]
            ok(http.get(f"{at}/tags"))
            encoded = base64.b64encode(pattern_image(0, 1)).decode()
            body = {"images": [{"name": "a.jpg", "contents": encoded}], "tagIds": [tags[0]["id"]]}
            ok(http.post(f"{at}/images/files", json=body))
            ok(http.get(f"{at}/images"))
            ok(http.get(f"{at}/images/tagged/count", params={"tagIds": tags[0]["id"]}))
            ok(http.get(f"{at}/iterations"))
            model = tiny_classifier([ModelLabel(t["id"], t["name"]) for t in tags])
            iteration = published_iteration(account, project, f"core{uuid.uuid4().hex[:8]}", model)
            predict = (
                f"/customvision/v3.1/prediction/{project['id']}/classify/iterations/{iteration.publish_name}"
            )
            picture = {"imageData": ("p.jpg", pattern_image(1, 2), "image/jpeg")}
            ok(http.post(f"{predict}/image/nostore", files=picture))
            assert http.get(f"{PROJECTS}/{uuid.uuid4()}").status_code == 404
            assert http.post(f"{at}/tags", params={"name": ""}).status_code == 400
            assert (
                http.post(f"{predict}/image/nostore", files={"imageData": ("x", b"no image")}).status_code
                == 400
            )
            http.delete(f"{at}/iterations/{iteration.id}/publish")
        finally:
            http.delete(at)
    assert recorder.covered >= {"GetProject", "CreateImagesFromFiles", "ClassifyImageWithNoStore"}, (
        recorder.covered
    )
    recorder.assert_conforms()


def test_the_validator_catches_wrong_bodies() -> None:
    """The oracle can fail: a missing required field, a wrong type, an unknown enum value and a null where the
    spec says non-nullable are all reported, and a valid body is not (from the subset without ../shared)."""
    validator = ResponseValidator()
    op = validator.operation("GET", "/customvision/v3.3/training/projects/x/tags")
    assert op is not None and op.operation_id == "GetTags"
    good = {"id": str(uuid.uuid4()), "name": "a", "description": None, "type": "Regular", "imageCount": 0}
    assert validator.check(op, 200, [good]) == []
    for bad in (
        {k: v for k, v in good.items() if k != "name"},
        good | {"imageCount": "0"},
        good | {"type": "Ordinary"},
        good | {"id": None},
        good | {"id": "not-a-uuid"},
    ):
        assert validator.check(op, 200, [bad]), bad
    assert validator.check(op, 404, {"code": "Nope", "message": "m"})
    assert validator.check(op, 201, good)


def test_error_bodies_use_spec_codes(client: TestClient) -> None:
    """Always runs (the codes come from the checked-in copy without ../shared): a few provoked errors answer with
    a Custom Vision error body whose code is in the spec's enum."""
    codes = error_codes()
    missing = str(uuid.uuid4())
    responses = [
        client.get(f"{PROJECTS}/{missing}"),
        client.post(PROJECTS, params={"name": ""}),
        client.get(f"{PROJECTS}/not-a-guid/tags"),
        client.get(f"{PROJECTS}/{missing}/iterations/{missing}"),
        client.post(
            f"/customvision/v3.1/prediction/{missing}/classify/iterations/x/url",
            json={"url": "x"},
            headers={"Prediction-Key": PREDICTION_KEY},
        ),
    ]
    for response in responses:
        assert response.status_code >= 400, response.text
        assert response.json()["code"] in codes, response.text


@pytest.fixture()
def session(live_url: str) -> Iterator[tuple[httpx.Client, Recorder]]:
    with recorded_client(live_url, TRAINING_KEY, PREDICTION_KEY) as pair:
        yield pair


@needs_specs
def test_a_realistic_session_validates(
    session: tuple[httpx.Client, Recorder],
    account: StorageAccount,
    image_server: tuple[str, dict[str, bytes]],
    conformance_tally: Tally,
) -> None:
    http, recorder = session
    base, served = image_server
    served["/conformance.jpg"] = pattern_image(1, 7)
    image_url = f"{base}/conformance.jpg"

    domains = ok(http.get("/customvision/v3.3/training/domains")).json()
    ok(http.get(f"/customvision/v3.3/training/domains/{domains[0]['id']}"))

    project = ok(http.post(PROJECTS, params={"name": f"conformance-{uuid.uuid4()}"})).json()
    pid = project["id"]
    at = f"{PROJECTS}/{pid}"
    ok(http.get(PROJECTS))
    ok(http.get(at))
    ok(http.patch(at, json={"name": project["name"], "description": "conformance"}))

    tags = [ok(http.post(f"{at}/tags", params={"name": f"kind {i}"})).json() for i in (0, 1)]
    ok(http.get(f"{at}/tags"))
    ok(http.get(f"{at}/tags/{tags[0]['id']}"))
    ok(
        http.patch(
            f"{at}/tags/{tags[0]['id']}", json={"name": "kind 0", "description": "first", "type": "Regular"}
        )
    )

    files = [("imageData", (f"{i}.jpg", pattern_image(0, i), "image/jpeg")) for i in range(2)]
    by_data = ok(http.post(f"{at}/images", params={"tagIds": tags[0]["id"]}, files=files)).json()
    encoded = base64.b64encode(pattern_image(1, 3)).decode()
    ok(http.post(f"{at}/images/files", json={"images": [{"name": "f.jpg", "contents": encoded}]}))
    ok(http.post(f"{at}/images/urls", json={"images": [{"url": image_url}], "tagIds": [tags[1]["id"]]}))
    image_ids = [entry["image"]["id"] for entry in by_data["images"]]

    ok(http.get(f"{at}/images"))
    ok(http.get(f"{at}/images/count"))
    ok(http.get(f"{at}/images/tagged"))
    ok(http.get(f"{at}/images/tagged/count"))
    ok(http.get(f"{at}/images/untagged"))
    ok(http.get(f"{at}/images/untagged/count"))
    ok(http.get(f"{at}/images/id", params={"imageIds": ",".join(image_ids)}))
    tagging = {"tags": [{"imageId": image_ids[0], "tagId": tags[1]["id"]}]}
    ok(http.post(f"{at}/images/tags", json=tagging))
    ok(http.delete(f"{at}/images/tags", params={"imageIds": image_ids[0], "tagIds": tags[1]["id"]}))
    ok(http.post(f"{at}/images/metadata", params={"imageIds": image_ids[0]}, json={"colour": "red"}))
    token = ok(http.get(f"{at}/export")).json()["token"]
    imported = ok(
        http.post(f"{PROJECTS}/import", params={"token": token, "name": f"conformance-copy-{uuid.uuid4()}"})
    ).json()
    assert http.post(f"{PROJECTS}/import", params={"token": "x"}).status_code == 400
    ok(http.delete(f"{PROJECTS}/{imported['id']}"))

    detection = ok(
        http.post(PROJECTS, params={"name": f"conformance-od-{uuid.uuid4()}", "domainId": DETECTION_DOMAIN})
    ).json()
    od = f"{PROJECTS}/{detection['id']}"
    box = ok(http.post(f"{od}/tags", params={"name": "box"})).json()
    od_image = ok(http.post(f"{od}/images", files=files[:1])).json()["images"][0]["image"]["id"]
    region = {"imageId": od_image, "tagId": box["id"], "left": 0.1, "top": 0.1, "width": 0.5, "height": 0.5}
    regions = ok(http.post(f"{od}/images/regions", json={"regions": [region]})).json()
    ok(http.delete(f"{od}/images/regions", params={"regionIds": regions["created"][0]["regionId"]}))

    model = tiny_classifier([ModelLabel(t["id"], t["name"]) for t in tags])
    iteration = published_iteration(account, project, f"conformance{uuid.uuid4().hex[:8]}", model)
    predict = f"/customvision/v3.1/prediction/{pid}/classify/iterations/{iteration.publish_name}"
    picture = {"imageData": ("p.jpg", pattern_image(0, 9), "image/jpeg")}
    ok(http.post(f"{predict}/image", files=picture))
    ok(http.post(f"{predict}/image/nostore", files=picture))
    ok(http.post(f"{predict}/url", json={"url": image_url}))
    ok(http.post(f"{predict}/url/nostore", json={"url": image_url}))
    ok(http.post(f"{at}/quicktest/image", params={"iterationId": iteration.id}, files=picture))
    ok(http.post(f"{at}/quicktest/url", params={"iterationId": iteration.id}, json={"url": image_url}))
    stored = ok(http.post(f"{at}/predictions/query", json={"maxCount": 10})).json()

    ok(http.get(f"{at}/iterations"))
    ok(http.get(f"{at}/iterations/{iteration.id}"))
    ok(http.patch(f"{at}/iterations/{iteration.id}", json={"name": "renamed"}))
    # The iteration was written without an evaluation: performance answers the spec's error, validated as such.
    for endpoint in ("performance", "performance/images", "performance/images/count"):
        http.get(f"{at}/iterations/{iteration.id}/{endpoint}")

    # Errors: the body is a CustomVisionError with a spec code.
    assert http.get(f"{PROJECTS}/{uuid.uuid4()}").status_code == 404
    assert http.post(f"{at}/tags", params={"name": ""}).status_code == 400
    assert http.get(f"{at}/iterations/{uuid.uuid4()}").status_code == 404
    assert http.post(f"{predict}/url", json={"url": ""}).status_code == 400

    prediction_ids = [result["id"] for result in stored["results"]]
    if prediction_ids:
        ok(http.delete(f"{at}/predictions", params={"ids": ",".join(prediction_ids)}))
    ok(http.delete(f"{at}/iterations/{iteration.id}/publish"))
    ok(http.delete(f"{at}/iterations/{iteration.id}"))
    ok(http.delete(f"{at}/tags/{tags[1]['id']}"))
    ok(http.delete(f"{at}/images", params={"imageIds": ",".join(image_ids)}))
    ok(http.delete(od))
    ok(http.delete(at))

    assert {"ExportProject", "ImportProject"} <= recorder.succeeded, recorder.succeeded
    conformance_tally.add("in-process", recorder)
    recorder.assert_conforms()
