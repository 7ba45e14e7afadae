"""Seer's `multipleTags` extension to GetImages and GetImageCount: the images with two tags or more, which a
Multiclass project cannot train on, found through the real app on real Azurite."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PROJECTS
from tests.images import make_image

# Each image's tags, by the name it is known by here.
TAGGING = {"none": [], "a": ["a"], "b": ["b"], "a+b": ["a", "b"], "b+c": ["b", "c"]}


@pytest.fixture()
def tagged(client: TestClient, project: dict) -> tuple[str, dict[str, str], dict[str, str]]:
    """The project id, image id -> name and tag name -> id, each image tagged as TAGGING says (CreateImageTags
    does not refuse a second tag in a Multiclass project: training does)."""
    pid = project["id"]
    tags = {name: client.post(f"{PROJECTS}/{pid}/tags", params={"name": name}).json()["id"] for name in "abc"}
    files = [("imageData", (f"{i}.jpg", make_image(seed=70 + i), "image/jpeg")) for i in range(len(TAGGING))]
    created = client.post(f"{PROJECTS}/{pid}/images", files=files).json()["images"]
    names = {}
    pairs = []
    for entry, (name, tag_names) in zip(created, TAGGING.items(), strict=True):
        names[entry["image"]["id"]] = name
        pairs += [{"imageId": entry["image"]["id"], "tagId": tags[t]} for t in tag_names]
    assert client.post(f"{PROJECTS}/{pid}/images/tags", json={"tags": pairs}).status_code == 200
    return pid, names, tags


def selected(client: TestClient, pid: str, names: dict[str, str], **params) -> set[str]:
    listed = client.get(f"{PROJECTS}/{pid}/images", params={"multipleTags": "true", **params})
    assert listed.status_code == 200, listed.text
    counted = client.get(f"{PROJECTS}/{pid}/images/count", params={"multipleTags": "true", **params})
    assert counted.status_code == 200, counted.text
    found = {names[image["id"]] for image in listed.json()}
    assert counted.json() == len(found)
    return found


def test_multiple_tags_selects_the_images_with_two_tags_or_more(client, tagged) -> None:
    pid, names, tags = tagged
    assert selected(client, pid, names) == {"a+b", "b+c"}
    assert selected(client, pid, names, tagIds=tags["c"]) == {"b+c"}
    assert selected(client, pid, names, tagIds=f"{tags['a']},{tags['c']}") == {"a+b", "b+c"}
    assert selected(client, pid, names, taggingStatus="Untagged") == set()
    newest = client.get(f"{PROJECTS}/{pid}/images", params={"multipleTags": "true", "take": 1}).json()
    second = client.get(
        f"{PROJECTS}/{pid}/images", params={"multipleTags": "true", "take": 1, "skip": 1}
    ).json()
    assert {names[newest[0]["id"]], names[second[0]["id"]]} == {"a+b", "b+c"}
    # Without the extension the answers are the spec's.
    assert len(client.get(f"{PROJECTS}/{pid}/images").json()) == len(TAGGING)


def test_training_a_multiclass_project_names_the_filter_that_finds_the_offenders(client, project) -> None:
    pid = project["id"]
    tags = [client.post(f"{PROJECTS}/{pid}/tags", params={"name": name}).json()["id"] for name in "ab"]
    files = [("imageData", (f"{i}.jpg", make_image(seed=80 + i), "image/jpeg")) for i in range(8)]
    images = [
        entry["image"]["id"]
        for entry in client.post(f"{PROJECTS}/{pid}/images", files=files).json()["images"]
    ]
    # Five images per tag, two of them with both.
    pairs = [(image, tags[0]) for image in images[:5]] + [(image, tags[1]) for image in images[3:]]
    body = {"tags": [{"imageId": image, "tagId": tag} for image, tag in pairs]}
    assert client.post(f"{PROJECTS}/{pid}/images/tags", json=body).status_code == 200
    refused = client.post(f"{PROJECTS}/{pid}/train")
    assert refused.status_code == 400
    error = refused.json()
    assert error["code"] == "BadRequestMultiClassClassificationTrainingValidationFailed"
    assert "2 images have more than one tag" in error["message"] and "multipleTags=true" in error["message"]
    offenders = client.get(f"{PROJECTS}/{pid}/images", params={"multipleTags": "true"}).json()
    assert {image["id"] for image in offenders} == set(images[3:5])
