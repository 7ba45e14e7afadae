"""The blob drop folder: files put into the test Azurite's `uploads` container and handed to `ingest_blob`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pytest

from pipeline.services.ingest import ingest_blob
from pipeline.store.images import UploadStore
from tests.images import make_image

BASE = "/customvision/v3.3/training"


@pytest.fixture()
def uploads(account) -> UploadStore:
    return UploadStore(account)


def drop(uploads: UploadStore, name: str, data: bytes, *, with_container: bool = True) -> None:
    """What the blob trigger does: the file lands in `uploads`, then the function gets its path and bytes."""
    uploads.put(name, data)
    ingest_blob(f"uploads/{name}" if with_container else name, data)


def images(client, project_id: str, **params) -> list[dict]:
    return client.get(f"{BASE}/projects/{project_id}/images", params=params).json()


def _eventually(condition: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def tag_counts(client, project_id: str) -> dict[str, int]:
    return {t["name"]: t["imageCount"] for t in client.get(f"{BASE}/projects/{project_id}/tags").json()}


def test_tagged_by_project_name_creates_the_tag(client, project, uploads):
    drop(uploads, f"{project['name']}/Cats/cat1.jpg", make_image(seed=1))
    [image] = images(client, project["id"])
    assert [t["tagName"] for t in image["tags"]] == ["Cats"]
    assert tag_counts(client, project["id"]) == {"Cats": 1}


def test_untagged_by_project_id_without_container_prefix(client, project, uploads):
    drop(uploads, f"{project['id']}/loose.png", make_image(fmt="PNG"), with_container=False)
    assert client.get(f"{BASE}/projects/{project['id']}/images/untagged/count").json() == 1
    assert tag_counts(client, project["id"]) == {}


def test_existing_tag_is_matched_case_insensitively(client, project, uploads):
    client.post(f"{BASE}/projects/{project['id']}/tags", params={"name": "Dogs"})
    drop(uploads, f"{project['id']}/dogs/d.jpg", make_image(seed=2))
    assert tag_counts(client, project["id"]) == {"Dogs": 1}


def test_reprocessing_is_idempotent_and_adds_a_new_tag(client, project, uploads):
    data = make_image(seed=3)
    name = f"{project['id']}/a/x.jpg"
    drop(uploads, name, data)
    ingest_blob(f"uploads/{name}", data)  # the host may deliver a blob twice
    [image] = images(client, project["id"])
    drop(uploads, f"{project['id']}/b/same-bytes.jpg", data)
    [again] = images(client, project["id"])
    assert again["id"] == image["id"]
    assert sorted(t["tagName"] for t in again["tags"]) == ["a", "b"]
    assert tag_counts(client, project["id"]) == {"a": 1, "b": 1}
    assert name in uploads.names(project["id"])  # ingested files stay where they were dropped


def test_ingested_image_is_the_same_as_an_api_upload(client, project, uploads):
    data = make_image(500, 400, seed=4)
    drop(uploads, f"{project['id']}/t/p.jpg", data)
    response = client.post(f"{BASE}/projects/{project['id']}/images", content=data)
    [result] = response.json()["images"]
    assert result["status"] == "OKDuplicate"
    assert (result["image"]["width"], result["image"]["height"]) == (500, 400)


@pytest.mark.parametrize(
    ("path", "data", "code"),
    [
        ("{project}/t/truncated.jpg", make_image(800, 600)[:2500], "ErrorImageFormat"),
        ("{project}/t/notes.jpg", b"plain text\n", "ErrorImageFormat"),
        ("no-such-project-{uuid}/t/x.jpg", make_image(seed=5), "NotFoundProject"),
        ("{project}/a/b/too-deep.jpg", make_image(seed=6), "BadRequest"),
        ("just-a-file-{uuid}.jpg", make_image(seed=7), "BadRequest"),
    ],
    ids=["truncated", "text", "unknown project", "too deep", "no project folder"],
)
def test_bad_file_is_moved_to_rejected_with_a_reason(client, project, uploads, path, data, code):
    name = path.format(project=project["name"], uuid=uuid.uuid4())
    drop(uploads, name, data)  # must not raise
    assert name not in uploads.names(name)
    assert uploads.read(f"rejected/{name}") == data
    reason = json.loads(uploads.read(f"rejected/{name}.reason.json"))
    assert reason["code"] == code
    assert reason["source"] == f"uploads/{name}"
    assert reason["message"]
    assert images(client, project["id"]) == []
    # The rejected file's folder leaves no tag behind. When the session's whole service runs, its blob trigger
    # handles the same drop too, and may hold a tag of its own for a moment before deleting it.
    _eventually(lambda: tag_counts(client, project["id"]) == {}, "the new tag to go")


def test_rejected_file_keeps_an_existing_tag(client, project, uploads):
    client.post(f"{BASE}/projects/{project['id']}/tags", params={"name": "Kept"})
    drop(uploads, f"{project['id']}/kept/notes.jpg", b"plain text\n")
    assert uploads.read(f"rejected/{project['id']}/kept/notes.jpg") == b"plain text\n"
    assert tag_counts(client, project["id"]) == {"Kept": 0}


def test_rejected_folder_is_ignored(client, project, uploads):
    name = f"rejected/{project['id']}/t/x.jpg"
    drop(uploads, name, make_image(seed=8))
    assert images(client, project["id"]) == []
    assert uploads.names(f"rejected/rejected/{project['id']}") == []
