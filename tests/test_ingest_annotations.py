"""Boxes through the drop folder: an image with a Pascal VOC or COCO file beside it becomes an image with regions
(tags created by name), whichever of the two blobs arrives first; unreadable annotations are set aside."""

from __future__ import annotations

import json
import time

import pytest

from pipeline.services.ingest import ingest_blob
from pipeline.store.images import UploadStore
from tests.annotations import VOC, coco
from tests.images import make_image

BASE = "/customvision/v3.3/training"


@pytest.fixture()
def uploads(account) -> UploadStore:
    return UploadStore(account)


def drop(uploads: UploadStore, name: str, data: bytes) -> None:
    uploads.put(name, data)
    ingest_blob(f"uploads/{name}", data)


def regions(client, project_id: str) -> list[tuple]:
    [image] = client.get(f"{BASE}/projects/{project_id}/images").json()
    return sorted(
        (r["tagName"], round(r["left"], 4), round(r["top"], 4), round(r["width"], 4), round(r["height"], 4))
        for r in image["regions"]
    )


def test_voc_beside_the_image_gives_regions(client, project, uploads) -> None:
    drop(uploads, f"{project['id']}/one.xml", VOC)  # the annotation first: it waits
    assert client.get(f"{BASE}/projects/{project['id']}/images/untagged/count").json() == 0
    drop(uploads, f"{project['id']}/one.jpg", make_image(seed=11))
    assert regions(client, project["id"]) == [
        ("raccoon", 0.1, 0.1, 0.5, 0.5),
        ("raccoon", 0.625, 0.5, 0.375, 0.5),
    ]
    tags = client.get(f"{BASE}/projects/{project['id']}/tags").json()
    assert [(t["name"], t["imageCount"]) for t in tags] == [("raccoon", 1)]  # "Raccoon" matched by name


def test_coco_after_the_image_adds_regions_once(client, project, uploads) -> None:
    drop(uploads, f"{project['name']}/photo.jpg", make_image(seed=12))  # the image first: untagged
    assert client.get(f"{BASE}/projects/{project['id']}/images/untagged/count").json() == 1
    drop(uploads, f"{project['name']}/photo.json", coco("photo.jpg"))
    drop(uploads, f"{project['name']}/photo.json", coco("photo.jpg"))  # delivered twice
    assert regions(client, project["id"]) == [("fork", 0.5, 0.25, 0.25, 0.5)]


def test_unreadable_annotation_is_set_aside(client, project, uploads) -> None:
    uploads.put(f"{project['id']}/bad.jpg", make_image(seed=13))
    drop(uploads, f"{project['id']}/bad.xml", b"<not xml")
    reason = json.loads(uploads.read(f"rejected/{project['id']}/bad.xml.reason.json"))
    assert reason["code"] == "BadRequestImageRegions"
    assert client.get(f"{BASE}/projects/{project['id']}/images/untagged/count").json() == 0


def test_rejected_image_leaves_no_tag_from_its_annotation(client, project, uploads) -> None:
    drop(uploads, f"{project['id']}/broken.xml", VOC)  # waits for its image
    drop(uploads, f"{project['id']}/broken.jpg", b"not a picture")
    reason = json.loads(uploads.read(f"rejected/{project['id']}/broken.jpg.reason.json"))
    assert reason["code"] == "ErrorImageFormat"
    # The session's running service watches the same drop folder, so its own trigger may be handling these two
    # files at this moment, with a tag it will delete again: no tag must be left once it has finished.
    deadline = time.monotonic() + 30
    while (
        tags := client.get(f"{BASE}/projects/{project['id']}/tags").json()
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tags == []
