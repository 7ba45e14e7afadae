"""What the project export/import and migration tests share: a second Seer on loopback (its own Azurite and app),
a small project with every kind of content, and a project's content in a comparable form."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from typing import NamedTuple

import httpx

from devhost.azurite import running_azurite
from pipeline.api.app import create_app
from pipeline.core.settings import Settings
from pipeline.store import StorageAccount, StoragePolicy
from tests.conftest import COMPACT_DETECTION_DOMAIN, PREDICTION_KEY, PROJECTS, TRAINING_KEY
from tests.images import make_image
from tests.serving import served

IMAGES = 12


class SecondSeer(NamedTuple):
    url: str
    account: StorageAccount


@contextlib.contextmanager
def second_seer(**overrides: object) -> Iterator[SecondSeer]:
    """Another Seer: its own in-memory Azurite and app (settings `overrides` applied), served by uvicorn on a free
    port; its URL and storage account."""
    with running_azurite() as connection_string:
        settings = Settings(
            storage_connection_string=connection_string,
            training_key=TRAINING_KEY,
            prediction_key=PREDICTION_KEY,
            allow_private_urls=True,
            training_queue="training-unattended",
            **overrides,
        )
        account = StorageAccount(settings.connection_string, StoragePolicy.from_settings(settings))
        with served(create_app(settings, account)) as url:
            yield SecondSeer(url, account)


def training_client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Training-Key": TRAINING_KEY}, timeout=60)


def _ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def fill_project(http: httpx.Client, name: str, detection: bool = False, images: int = IMAGES) -> dict:
    """A project with non-default augmentation methods, two described tags (one of them Negative for a classifier) and `images` small images:
    tagged, untagged, with regions on a detector, and two kinds of metadata. Returns the project."""
    params = {"name": name, "description": "copied around"}
    if detection:
        params["domainId"] = COMPACT_DETECTION_DOMAIN
    project = _ok(http.post(PROJECTS, params=params))
    at = f"{PROJECTS}/{project['id']}"
    augmentation = {
        "imageProcessingSettings": {"augmentationMethods": {"rotation": True, "color jitter": False}}
    }
    project = _ok(http.patch(at, json={"name": name, "settings": augmentation}))
    red = _ok(http.post(f"{at}/tags", params={"name": "red", "description": "warm things"}))
    other = {"name": "blue"} if detection else {"name": "nothing", "type": "Negative"}
    second = _ok(http.post(f"{at}/tags", params=other))
    for start, metadata in ((0, {"camera": "north"}), (images // 2, {"camera": "south", "shift": "night"})):
        entries = []
        for seed in range(start, start + images // 2):
            entry: dict = {
                "name": f"{seed}.jpg",
                "contents": base64.b64encode(make_image(seed=seed)).decode(),
            }
            tag = (red, second, None)[seed % 3]
            if tag is not None and detection:
                entry["regions"] = [
                    {"tagId": tag["id"], "left": 0.1, "top": 0.2, "width": 0.3, "height": 0.25},
                    {"tagId": red["id"], "left": 0.5, "top": 0.5, "width": 0.25, "height": 0.4},
                ]
            elif tag is not None:
                entry["tagIds"] = [tag["id"]]
            entries.append(entry)
        summary = _ok(http.post(f"{at}/images/files", json={"images": entries, "metadata": metadata}))
        assert summary["isBatchSuccessful"], summary
    return project


def find_project(http: httpx.Client, name: str) -> dict | None:
    return next((p for p in _ok(http.get(PROJECTS)) if p["name"] == name), None)


def contents(http: httpx.Client, project_id: str) -> dict:
    """A project as comparable data: settings, tags by name, and images by the sha256 of their original bytes
    (with tag names, regions and metadata); asserts no two images have the same bytes."""
    at = f"{PROJECTS}/{project_id}"
    project = _ok(http.get(at))
    tags = {
        t["name"]: (t["type"], t["description"] or "", t["imageCount"]) for t in _ok(http.get(f"{at}/tags"))
    }
    images: dict[str, tuple] = {}
    listed = _ok(http.get(f"{at}/images", params={"take": 256}))
    for image in listed:
        original = httpx.get(image["originalImageUri"], timeout=30)
        assert original.status_code == 200
        regions = sorted(
            (
                r["tagName"],
                round(r["left"], 4),
                round(r["top"], 4),
                round(r["width"], 4),
                round(r["height"], 4),
            )
            for r in image["regions"]
        )
        digest = hashlib.sha256(original.content).hexdigest()
        images[digest] = (sorted(t["tagName"] for t in image["tags"]), regions, image["metadata"])
    assert len(images) == len(listed), "two images have the same bytes"
    settings = project["settings"]
    return {
        "description": project["description"],
        "domain": settings["domainId"],
        "classification": settings["classificationType"],
        "augmentation": settings["imageProcessingSettings"]["augmentationMethods"],
        "tags": tags,
        "images": images,
    }
