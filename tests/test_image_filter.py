"""GetImages and GetImageCount's `$filter` on image metadata (Training v3.4-preview), through the real app on real
Azurite: eq, ne, and, or and parentheses, and a malformed filter answered with a spec code."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TRAINING_KEY
from tests.images import make_image

TRAINING = "/customvision/v3.4-preview/training"

# Each image's metadata, by the name it is known by here.
METADATA = {
    "red-day": {"colour": "red", "shot": "day"},
    "red-night": {"colour": "red", "shot": "night"},
    "blue-day": {"colour": "blue", "shot": "day"},
    "bare": {},
    "quoted": {"colour": "it's red"},
}


@pytest.fixture(scope="module")
def named_images(app) -> tuple[str, dict[str, str]]:
    """A project's id and image id -> name, each image carrying METADATA[name] (set by UpdateImageMetadata); one
    project for the module, which only reads it."""
    client = TestClient(app, headers={"Training-Key": TRAINING_KEY})
    project = client.post(f"{TRAINING}/projects", params={"name": f"filter-{uuid.uuid4()}"})
    assert project.status_code == 200, project.text
    pid = project.json()["id"]
    files = [("imageData", (f"{i}.jpg", make_image(seed=40 + i), "image/jpeg")) for i in range(len(METADATA))]
    created = client.post(f"{TRAINING}/projects/{pid}/images", files=files)
    assert created.status_code == 200, created.text
    names = {}
    for entry, (name, metadata) in zip(created.json()["images"], METADATA.items(), strict=True):
        image_id = entry["image"]["id"]
        names[image_id] = name
        if metadata:
            updated = client.post(
                f"{TRAINING}/projects/{pid}/images/metadata", params={"imageIds": image_id}, json=metadata
            )
            assert updated.status_code == 200, updated.text
    return pid, names


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("colour eq 'red'", {"red-day", "red-night"}),
        ("colour ne 'red'", {"blue-day", "bare", "quoted"}),  # no key: unequal to every value
        ("colour eq 'red' and shot ne 'night'", {"red-day"}),
        ("colour eq 'blue' or shot eq 'night'", {"blue-day", "red-night"}),
        # `and` binds tighter than `or`; parentheses change that.
        ("shot eq 'night' or colour eq 'blue' and shot eq 'night'", {"red-night"}),
        ("(shot eq 'night' or colour eq 'blue') and shot eq 'day'", {"blue-day"}),
        ("colour EQ 'it''s red'", {"quoted"}),
        ("colour eq 'RED'", set()),  # values compare exactly
        ("  ", set(METADATA)),
    ],
)
def test_filter_selects_images_by_metadata(client, named_images, expression, expected):
    pid, names = named_images
    listed = client.get(f"{TRAINING}/projects/{pid}/images", params={"$filter": expression})
    assert listed.status_code == 200, listed.text
    assert {names[image["id"]] for image in listed.json()} == expected
    counted = client.get(f"{TRAINING}/projects/{pid}/images/count", params={"$filter": expression})
    assert (counted.status_code, counted.json()) == (200, len(expected))


def test_filter_combines_with_the_other_filters(client, named_images):
    pid, names = named_images
    oldest = client.get(f"{TRAINING}/projects/{pid}/images", params={"orderBy": "Oldest"}).json()
    reds = [image["id"] for image in oldest if names[image["id"]].startswith("red-")]
    params = {"$FILTER": "colour eq 'red'", "orderBy": "Oldest", "skip": 1, "take": 1}
    assert [i["id"] for i in client.get(f"{TRAINING}/projects/{pid}/images", params=params).json()] == reds[
        1:
    ]
    tagged_reds = {"$filter": "colour eq 'red'", "taggingStatus": "Tagged"}
    assert client.get(f"{TRAINING}/projects/{pid}/images/count", params=tagged_reds).json() == 0


@pytest.mark.parametrize(
    "expression",
    [
        "colour eq",
        "colour eq red",
        "colour eq 'red",
        "colour lt 'red'",
        "colour eq 'red' shot",
        "colour eq 'red' or",
        "(colour eq 'red'",
        "colour eq 'red')",
        "__import__('os') eq 'x'",
        "(" * 40 + "colour eq 'red'" + ")" * 40,
        "colour eq '" + "x" * 3000 + "'",
    ],
)
def test_malformed_filter_is_a_bad_request(client, project, expression):
    for path in ("", "/count"):
        response = client.get(
            f"{TRAINING}/projects/{project['id']}/images{path}", params={"$filter": expression}
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "BadRequestInvalid"
        assert "$filter" in response.json()["message"]
