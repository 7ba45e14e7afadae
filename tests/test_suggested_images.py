"""QuerySuggestedImages and QuerySuggestedImageCount through the real app on real Azurite. Most tests store
suggestions of known probabilities for a completed iteration row (querying never loads its model), so the filter,
threshold, order and paging are exact; one test has the shared trained detector store real ones through
SuggestTagsAndRegions."""

from __future__ import annotations

import pytest

from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import IterationStatus, new_id
from pipeline.services.sweeper import SweepReport, sweep_project
from pipeline.store.iterations import IterationStore
from pipeline.store.records import IterationRecord, PredictedTag, SuggestionRecord, utcnow
from pipeline.store.suggestions import SuggestionStore
from tests.conftest import PROJECTS
from tests.images import make_image, pattern_image
from tests.published import published_iteration, tiny_classifier

# Image name -> probabilities its suggestion gives tags "a" and "b"; uncertainty is 1 minus the larger.
SUGGESTED = {
    "a-sure": (0.95, 0.05),  # 0.05
    "a-likely": (0.70, 0.20),  # 0.30
    "b-likely": (0.10, 0.80),  # 0.20
    "split": (0.45, 0.40),  # 0.55
    "tagged": (0.90, 0.10),  # an image tagged by hand: never suggested
}


@pytest.fixture()
def suggested(client, account, project: dict) -> dict:
    """The project with tags a and b, an image per SUGGESTED entry (the last tagged), a completed iteration whose
    stored suggestions are SUGGESTED, and a second iteration still training."""
    pid = project["id"]
    tags = {n: client.post(f"{PROJECTS}/{pid}/tags", params={"name": n}).json()["id"] for n in ("a", "b")}
    images = {}
    for seed, name in enumerate(SUGGESTED):
        params = {"tagIds": tags["a"]} if name == "tagged" else {}
        files = [("imageData", (f"{name}.jpg", pattern_image(0, seed), "image/jpeg"))]
        response = client.post(f"{PROJECTS}/{pid}/images", params=params, files=files)
        assert response.status_code == 200, response.text
        images[name] = response.json()["images"][0]["image"]["id"]
    iterations = IterationStore(account)
    domain = project["settings"]["domainId"]
    completed, training = (
        iterations.create(
            IterationRecord(
                id=new_id(),
                project_id=pid,
                name=name,
                domain_id=domain,
                training_set_fingerprint="-",
                status=status,
                model_blob=f"{pid}/{name}/model.onnx" if status == IterationStatus.COMPLETED else None,
            )
        )
        for name, status in (("done", IterationStatus.COMPLETED), ("busy", IterationStatus.TRAINING))
    )
    for name, probabilities in SUGGESTED.items():
        SuggestionStore(account).put(
            SuggestionRecord(
                project_id=pid,
                iteration_id=completed.id,
                image_id=images[name],
                predictions=[
                    PredictedTag(tag_id=tags[t], tag_name=t, probability=p)
                    for t, p in zip("ab", probabilities, strict=True)
                ],
                uncertainty=1 - max(probabilities),
            )
        )
    names = {image_id: name for name, image_id in images.items()}
    return {
        "pid": pid,
        "tags": tags,
        "images": images,
        "names": names,
        "it": completed.id,
        "busy": training.id,
    }


def _query(client, s: dict, body: dict, iteration: str | None = None, status: int = 200) -> dict:
    response = client.post(
        f"{PROJECTS}/{s['pid']}/images/suggested", params={"iterationId": iteration or s["it"]}, json=body
    )
    assert response.status_code == status, response.text
    return response.json()


def _count(client, s: dict, body: dict, iteration: str | None = None, status: int = 200) -> dict:
    response = client.post(
        f"{PROJECTS}/{s['pid']}/images/suggested/count",
        params={"iterationId": iteration or s["it"]},
        json=body,
    )
    assert response.status_code == status, response.text
    return response.json()


def _names(s: dict, answer: dict) -> list[str]:
    return [s["names"][r["id"]] for r in answer["results"]]


def test_untagged_images_with_a_wanted_tag_at_the_threshold(client, suggested):
    s = suggested
    answer = _query(client, s, {"tagIds": [s["tags"]["a"]], "threshold": 0.7})
    assert _names(s, answer) == ["a-likely", "a-sure"]  # most uncertain first by default; "tagged" never
    result = answer["results"][1]
    assert result["iteration"] == s["it"] and result["project"] == s["pid"]
    assert result["predictionUncertainty"] == pytest.approx(0.05)
    assert {p["tagName"] for p in result["predictions"]} == {"a", "b"}
    assert result["width"] and result["thumbnailUri"].startswith("http") and result["domain"]
    assert answer["token"]["threshold"] == 0.7 and answer["token"]["session"]
    assert "continuation" not in answer["token"]

    assert _names(s, _query(client, s, {"threshold": 0.4})) == ["split", "a-likely", "b-likely", "a-sure"]
    assert _names(s, _query(client, s, {"tagIds": [s["tags"]["b"]], "threshold": 0.4})) == [
        "split",
        "b-likely",
    ]
    assert _query(client, s, {"threshold": 0.99})["results"] == []


def test_sorted_by_uncertainty_either_way_and_paged(client, suggested):
    s = suggested
    body = {"threshold": 0.0, "sortBy": "UncertaintyAscending", "maxCount": 3}
    first = _query(client, s, body)
    assert first["token"]["continuation"] and first["token"]["sortBy"] == "UncertaintyAscending"
    assert "tagIds" not in first["token"]  # none given: every tag, and no null for a list
    second = _query(client, s, first["token"])
    assert second["token"]["session"] == first["token"]["session"]
    assert "continuation" not in second["token"]
    assert _names(s, first) + _names(s, second) == ["a-sure", "b-likely", "a-likely", "split"]
    descending = _query(client, s, {"threshold": 0.0, "sortBy": "uncertaintydescending"})
    assert _names(s, descending) == ["split", "a-likely", "b-likely", "a-sure"]


def test_counts_per_tag_at_the_threshold(client, suggested):
    s = suggested
    a, b = s["tags"]["a"], s["tags"]["b"]
    assert _count(client, s, {"tagIds": [a, b], "threshold": 0.4}) == {a: 3, b: 2}
    assert _count(client, s, {"threshold": 0.75}) == {a: 1, b: 1}
    assert _count(client, s, {"tagIds": [b.upper()], "threshold": 0.9}) == {b: 0}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "BadRequestRequiredParamIsNull"),
        ({"threshold": "high"}, "BadRequestInvalid"),
        ({"threshold": 1.5}, "BadRequestInvalid"),
        ({"threshold": 0.5, "maxCount": 0}, "BadRequestInvalid"),
        ({"threshold": 0.5, "maxCount": 257}, "BadRequestInvalid"),
        ({"threshold": 0.5, "sortBy": "Newest"}, "BadRequestInvalid"),
        ({"threshold": 0.5, "continuation": "not one"}, "BadRequestInvalid"),
    ],
)
def test_bad_bodies_are_refused(client, suggested, body, code):
    assert _query(client, suggested, body, status=400)["code"] == code
    if set(body) <= {"threshold"}:
        assert _count(client, suggested, body, status=400)["code"] == code


def test_unknown_or_untrained_owners_are_refused_and_nothing_changes(client, account, suggested):
    s = suggested
    before = sorted(r.image_id for r in SuggestionStore(account).of_iteration(s["pid"], s["it"]))
    body = {"threshold": 0.5}
    for ask in (_query, _count):
        assert ask(client, s, body, iteration=new_id(), status=404)["code"] == "NotFoundIteration"
        # Characters storage refuses in keys (the API fuzzer sent "/"): unknown, not a server error.
        for bad in ("/", "a#b", "x?y", "back\\slash"):
            assert ask(client, s, body, iteration=bad, status=404)["code"] == "NotFoundIteration"
        assert (
            ask(client, s, body, iteration=s["busy"], status=400)["code"] == "BadRequestIterationIsNotTrained"
        )
        assert ask(client, s, {**body, "tagIds": [new_id()]}, status=404)["code"] == "NotFoundTag"
        assert ask(client, {**s, "pid": new_id()}, body, status=404)["code"] == "NotFoundProject"
    missing = client.post(f"{PROJECTS}/{s['pid']}/images/suggested", json=body)
    assert missing.status_code == 400 and missing.json()["code"] == "BadRequestRequiredParamIsNull"
    assert sorted(r.image_id for r in SuggestionStore(account).of_iteration(s["pid"], s["it"])) == before


def test_deleting_an_image_or_the_iteration_removes_its_suggestions(client, account, suggested):
    s = suggested
    store = SuggestionStore(account)
    response = client.delete(f"{PROJECTS}/{s['pid']}/images", params={"imageIds": s["images"]["split"]})
    assert response.status_code == 204, response.text
    assert len(list(store.of_iteration(s["pid"], s["it"]))) == len(SUGGESTED) - 1
    assert client.delete(f"{PROJECTS}/{s['pid']}/iterations/{s['it']}").status_code == 204
    assert list(store.keys(s["pid"])) == []


def test_the_sweeper_removes_suggestions_whose_image_is_gone(account, settings: Settings, suggested):
    s = suggested
    store = SuggestionStore(account)
    store.put(SuggestionRecord(project_id=s["pid"], iteration_id=s["it"], image_id=new_id(), uncertainty=1.0))
    report = SweepReport()
    sweep_project(account, s["pid"], utcnow(), report)
    assert report.removed["stored suggestions"] == 1
    assert len(list(store.of_iteration(s["pid"], s["it"]))) == len(SUGGESTED)


def test_suggest_tags_and_regions_stores_what_it_answers(client, account, trained_detector: dict):
    """Real suggestions from the shared detector on two of its (tagged) images are stored with their uncertainty;
    being tagged, the images are neither listed nor counted."""
    pid, iteration = trained_detector["project"].id, trained_detector["iteration"].id
    images = [i["id"] for i in client.get(f"{PROJECTS}/{pid}/images/tagged", params={"take": 2}).json()]
    response = client.post(
        f"{PROJECTS}/{pid}/tagsandregions/suggestions",
        params={"iterationId": iteration, "imageIds": ",".join(images)},
    )
    assert response.status_code == 200, response.text
    answered = {a["id"]: a for a in response.json()}
    stored = {
        r.image_id: r for r in SuggestionStore(account).of_iteration(pid, iteration) if r.image_id in answered
    }
    assert set(stored) == set(images)
    for image_id, record in stored.items():
        assert record.uncertainty == pytest.approx(answered[image_id]["predictionUncertainty"])
        assert len(record.predictions) == len(answered[image_id]["predictions"])
        assert all(p.width is not None for p in record.predictions)  # a detector's: boxes
    body = {"threshold": 0.0}
    assert _query(client, {"pid": pid, "it": iteration}, body)["results"] == []
    assert set(_count(client, {"pid": pid, "it": iteration}, body).values()) == {0}


def test_label_first_orders_unlike_uncertain_images_first_and_pages(client, account, project: dict):
    """Real suggestions from a classifier whose features are the mean colour: three near-identical green pictures
    and a magenta one that the model cannot decide on (red = blue), two red ones that it is sure of. Uncertainty
    alone lists the greens and the magenta first; labelFirst lists one picture of each colour before any
    near-duplicate, and pages through all of them once."""
    pid = project["id"]
    tags = [client.post(f"{PROJECTS}/{pid}/tags", params={"name": n}).json() for n in ("a", "b")]
    model = tiny_classifier([ModelLabel(t["id"], t["name"]) for t in tags], scale=0.01)
    iteration = published_iteration(account, project, "label-first", model)
    colours = {"green": (120, 200, 120), "magenta": (130, 40, 130), "red": (250, 10, 10)}
    pictures = [("green", 0), ("green", 1), ("green", 2), ("magenta", 3), ("red", 4), ("red", 5)]
    names = {}
    for colour, seed in pictures:
        files = [("imageData", (f"{colour}.jpg", make_image(color=colours[colour], seed=seed), "image/jpeg"))]
        response = client.post(f"{PROJECTS}/{pid}/images", params={}, files=files)
        assert response.status_code == 200, response.text
        names[response.json()["images"][0]["image"]["id"]] = colour
    response = client.post(
        f"{PROJECTS}/{pid}/tagsandregions/suggestions",
        params={"iterationId": iteration.id, "imageIds": ",".join(names)},
    )
    assert response.status_code == 200, response.text
    assert all(r.embedding for r in SuggestionStore(account).of_iteration(pid, iteration.id))

    s = {"pid": pid, "it": iteration.id}
    first = _query(client, s, {"threshold": 0.0, "labelFirst": True, "maxCount": 3})
    assert sorted(names[r["id"]] for r in first["results"]) == ["green", "magenta", "red"]
    assert first["token"]["labelFirst"] is True and first["token"]["continuation"] == "3"
    listed, token = [r["id"] for r in first["results"]], first["token"]
    while "continuation" in token:
        page = _query(client, s, token)
        listed, token = listed + [r["id"] for r in page["results"]], page["token"]
    assert sorted(listed) == sorted(names) and "tagIds" not in token
    plain = _query(client, s, {"threshold": 0.0, "maxCount": 4})
    assert "labelFirst" not in plain["token"]  # the spec's shape unless asked for
    assert sorted(names[r["id"]] for r in plain["results"]) == ["green", "green", "green", "magenta"]
    assert (
        _query(client, s, {"threshold": 0.0, "labelFirst": True, "continuation": "x"}, status=400)["code"]
        == "BadRequestInvalid"
    )
