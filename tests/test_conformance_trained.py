"""Seer against the official REST descriptions on trained iterations (issue 11): a session against the whole
service (function_app.py on the local host, the training job in its own process) that really trains a classifier,
and uses the suite's shared trained detector, with every response validated like tests/test_conformance.py's
session: training, evaluation, publishing, the Prediction API through its `v3.0` prefix, stored predictions, the
labelling help and quick tests on a detector. The last test asserts that the two sessions together reach every
routed operation with a successful response."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conformance import Recorder, Tally, needs_specs, ok, recorded_client, routed_operations
from tests.conftest import COMPACT_DOMAIN, DETECTOR_PUBLISHED, PREDICTION_KEY, PROJECTS, TRAINING_KEY
from tests.images import detection_scene, jpeg, pattern_image

PREVIEW = "/customvision/v3.4-preview/training/projects"  # the SDK's Training version
PREDICTION_V30 = "/customvision/v3.0/prediction"  # the oldest Prediction version still served
SESSIONS = ("in-process", "trained")


@pytest.fixture()
def service_session(service: str) -> Iterator[tuple[httpx.Client, Recorder]]:
    with recorded_client(service, TRAINING_KEY, PREDICTION_KEY) as pair:
        yield pair


def trained(http: httpx.Client, at: str, iteration_id: str, timeout: float = 240.0) -> dict:
    """The quickstart's loop: GetIteration until training ends."""
    deadline = time.monotonic() + timeout
    while True:
        iteration = ok(http.get(f"{at}/iterations/{iteration_id}")).json()
        if iteration["status"] != "Training":
            return iteration
        assert time.monotonic() < deadline, "training did not finish in time"
        time.sleep(0.5)


def error_code(response: httpx.Response) -> str:
    assert response.status_code >= 400, response.text
    return response.json()["code"]


def classifier_session(http: httpx.Client, image_url: str) -> None:
    """Train, evaluate, publish, predict, store and take back predictions, unpublish and delete; through the
    SDK's Training version (v3.4-preview), but for a train request through v3.3 that is refused."""
    project = ok(
        http.post(PREVIEW, params={"name": f"conformance-trained-{uuid.uuid4()}", "domainId": COMPACT_DOMAIN})
    ).json()
    pid = project["id"]
    at = f"{PREVIEW}/{pid}"
    tags = [ok(http.post(f"{at}/tags", params={"name": f"kind {kind}"})).json() for kind in (0, 1)]
    for kind, tag in enumerate(tags):
        files = [("imageData", (f"{kind}-{i}.jpg", pattern_image(kind, i), "image/jpeg")) for i in range(5)]
        ok(http.post(f"{at}/images", params={"tagIds": tag["id"]}, files=files))

    started = ok(
        http.post(
            f"{at}/train",
            params={"trainingType": "Regular", "forceTrain": "false"},
            json={"selectedTags": [tag["id"] for tag in tags]},
        )
    ).json()
    assert started["status"] == "Training" and "publishName" not in started
    iteration = trained(http, at, started["id"])
    assert iteration["status"] == "Completed", iteration
    assert error_code(http.post(f"{PROJECTS}/{pid}/train")) == "BadRequestTrainingNotNeeded"
    it = f"{at}/iterations/{iteration['id']}"

    performance = ok(http.get(f"{it}/performance", params={"threshold": 0.5})).json()
    assert {t["name"] for t in performance["perTagPerformance"]} == {"kind 0", "kind 1"}
    assert len(ok(http.get(f"{it}/performance/images", params={"take": 20})).json()) == 10
    assert ok(http.get(f"{it}/performance/images/count")).json() == 10
    by_iteration = {"iterationId": iteration["id"]}
    assert [t["imageCount"] for t in ok(http.get(f"{at}/tags", params=by_iteration)).json()] == [5, 5]
    ok(http.get(f"{at}/tags/{tags[0]['id']}", params=by_iteration))
    assert len(ok(http.get(f"{at}/images/tagged", params=by_iteration)).json()) == 10
    assert ok(http.get(f"{at}/images/tagged/count", params=by_iteration)).json() == 10

    name = f"conformance{uuid.uuid4().hex[:8]}"
    assert ok(http.post(f"{it}/publish", params={"publishName": name, "predictionId": "any string"})).json()
    ok(http.get(f"{at}/iterations"))
    predict = f"{PREDICTION_V30}/{pid}/classify/iterations/{name}"
    picture = {"imageData": ("p.jpg", pattern_image(1, 1000), "image/jpeg")}
    stored = ok(http.post(f"{predict}/image", files=picture)).json()
    assert stored["predictions"][0]["tagName"] == "kind 1"
    ok(http.post(f"{predict}/image/nostore", files=picture))
    ok(http.post(f"{predict}/url", json={"url": image_url}))
    ok(http.post(f"{predict}/url/nostore", json={"url": image_url}))

    first = ok(http.post(f"{at}/predictions/query", json={"maxCount": 1})).json()
    assert first["token"]["continuation"]  # two stored, one per page
    rest = ok(http.post(f"{at}/predictions/query", json=first["token"])).json()
    assert [p["id"] for p in rest["results"]] == [stored["id"]]  # newest first: the URL's came back first
    assert "continuation" not in rest["token"] and "application" not in rest["token"]
    suggested = ok(http.post(f"{at}/predictions/query", json={"orderBy": "Suggested", "maxCount": 5})).json()
    assert len(suggested["results"]) == 2

    created = ok(
        http.post(
            f"{at}/images/predictions", json={"images": [{"id": stored["id"], "tagIds": [tags[1]["id"]]}]}
        )
    ).json()
    assert created["isBatchSuccessful"], created
    added = [created["images"][0]["image"]["id"]]
    suggestions = ok(
        http.post(
            f"{at}/tagsandregions/suggestions",
            params={"iterationId": iteration["id"], "imageIds": ",".join(added)},
        )
    ).json()
    assert [s["id"] for s in suggestions] == added
    assert suggestions[0]["predictions"][0]["tagName"] == "kind 1"
    suggested_images(http, at, iteration["id"], tags[1]["id"])

    ok(http.delete(f"{it}/publish"))
    assert "publishName" not in ok(http.get(it)).json()
    exported = exported_onnx(http, it)
    path = urlsplit(exported["downloadUri"]).path.split(f"/{pid}/", 1)[1]
    artifact = ok(http.get(f"{at}/artifacts", params={"path": path}))
    assert artifact.content == httpx.get(exported["downloadUri"]).content
    ok(http.delete(it))
    ok(http.delete(at))


def suggested_images(http: httpx.Client, at: str, iteration_id: str, tag_id: str) -> None:
    """An untagged image gets a stored suggestion through SuggestTagsAndRegions, then QuerySuggestedImages lists it
    and QuerySuggestedImageCount counts it."""
    files = [("imageData", ("untagged.jpg", pattern_image(1, 1002), "image/jpeg"))]
    untagged = ok(http.post(f"{at}/images", files=files)).json()["images"][0]["image"]["id"]
    by_iteration = {"iterationId": iteration_id}
    ok(http.post(f"{at}/tagsandregions/suggestions", params=by_iteration | {"imageIds": untagged}))
    wanted = {"tagIds": [tag_id], "threshold": 0.0}
    found = ok(http.post(f"{at}/images/suggested", params=by_iteration, json=wanted | {"maxCount": 5})).json()
    assert [r["id"] for r in found["results"]] == [untagged]
    assert ok(http.post(f"{at}/images/suggested/count", params=by_iteration, json=wanted)).json() == {
        tag_id: 1
    }


def exported_onnx(http: httpx.Client, it: str, timeout: float = 240.0) -> dict:
    """ExportIteration, then GetExports until the export is Done."""
    assert ok(http.post(f"{it}/export", params={"platform": "ONNX"})).json()["status"] == "Exporting"
    deadline = time.monotonic() + timeout
    while True:
        [export] = ok(http.get(f"{it}/export")).json()
        if export["status"] != "Exporting":
            assert export["status"] == "Done", export
            return export
        assert time.monotonic() < deadline, "the export did not finish in time"
        time.sleep(0.5)


def detector_session(http: httpx.Client, detector: dict, image_url: str) -> None:
    """Labelling help, evaluation at an overlap threshold, detection through the Prediction API and quick tests
    on the suite's shared detector (read-only: its images, tags and iteration stay as they are)."""
    pid, iteration_id = detector["project"].id, detector["iteration"].id
    at = f"{PROJECTS}/{pid}"
    it = f"{at}/iterations/{iteration_id}"
    images = [image["id"] for image in ok(http.get(f"{at}/images/tagged", params={"take": 2})).json()]
    proposals = ok(http.post(f"{at}/images/{images[0]}/regionproposals")).json()
    assert proposals["proposals"]
    suggestions = ok(
        http.post(
            f"{at}/tagsandregions/suggestions",
            params={"iterationId": iteration_id, "imageIds": ",".join(images)},
        )
    ).json()
    assert [s["id"] for s in suggestions] == images
    performance = ok(http.get(f"{it}/performance", params={"threshold": 0.5, "overlapThreshold": 0.3})).json()
    assert performance["averagePrecision"] > 0.5
    assert ok(http.get(f"{it}/performance/images", params={"take": 2})).json()[0]["regions"]

    detect = f"{PREDICTION_V30}/{pid}/detect/iterations/{DETECTOR_PUBLISHED}"
    picture = {"imageData": ("scene.jpg", jpeg(detection_scene(1001)[0]), "image/jpeg")}
    stored = ok(http.post(f"{detect}/image", files=picture)).json()
    assert stored["predictions"][0]["boundingBox"]
    ok(http.post(f"{detect}/image/nostore", files=picture))
    ok(http.post(f"{detect}/url", json={"url": image_url}))
    ok(http.post(f"{detect}/url/nostore", json={"url": image_url}))
    by_iteration = {"iterationId": iteration_id}
    ok(http.post(f"{at}/quicktest/image", params=by_iteration | {"store": "false"}, files=picture))
    ok(http.post(f"{at}/quicktest/url", params=by_iteration, json={"url": image_url}))
    page = ok(http.post(f"{at}/predictions/query", json={"maxCount": 3, "iterationId": iteration_id})).json()
    assert page["results"][0]["predictions"][0]["boundingBox"]


@needs_specs
def test_a_trained_session_validates(
    service_session: tuple[httpx.Client, Recorder],
    trained_detector: dict,
    image_server: tuple[str, dict[str, bytes]],
    conformance_tally: Tally,
) -> None:
    http, recorder = service_session
    base, served = image_server
    served["/conformance-trained.jpg"] = pattern_image(1, 1001)
    served["/conformance-scene.jpg"] = jpeg(detection_scene(1002)[0])

    classifier_session(http, f"{base}/conformance-trained.jpg")
    detector_session(http, trained_detector, f"{base}/conformance-scene.jpg")

    conformance_tally.add("trained", recorder)
    recorder.assert_conforms()


@needs_specs
def test_the_sessions_cover_every_routed_operation(conformance_tally: Tally) -> None:
    """Both validated sessions together answered every routed operation (all but KNOWN_MISSING) with a success.
    Needs both sessions in this run (tests/test_conformance*.py)."""
    missing = [name for name in SESSIONS if name not in conformance_tally.sessions]
    if missing:
        pytest.skip(f"the {' and '.join(missing)} session did not run to its end in this run")
    assert conformance_tally.uncovered() == [], f"of {len(routed_operations())} routed operations"
