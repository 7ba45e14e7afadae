"""ExportProject and ImportProject (issue 13 item 3): a token from one Seer imports the project, with its tags,
images (the same bytes), regions and metadata, into the same Seer and into another; a tampered, expired or foreign
token is refused with BadRequestInvalidImportToken and creates nothing; a failed import leaves no project, and one
whose process died is deleted by the sweeper."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from pipeline.api.app import create_app
from pipeline.contract.project_package import ImportToken
from pipeline.core.owners import this_process
from pipeline.core.settings import Settings
from pipeline.services.project_import import read_package
from pipeline.services.projects import create_project, delete_project
from pipeline.services.sweeper import SweepReport, sweep_project
from pipeline.store import StorageAccount
from pipeline.store.project_exports import CONTAINER
from pipeline.store.records import utcnow
from tests.conftest import PROJECTS
from tests.project_copies import IMAGES, contents, fill_project, find_project, second_seer, training_client
from tests.serving import served

IMPORT = f"{PROJECTS}/import"


@pytest.fixture(scope="module")
def other_seer() -> Iterator[str]:
    with second_seer() as seer:
        yield seer.url


@pytest.fixture(scope="module")
def http(live_url: str) -> Iterator[httpx.Client]:
    with training_client(live_url) as client:
        yield client


@pytest.fixture(scope="module")
def exported(http: httpx.Client) -> Iterator[tuple[dict, dict]]:
    """A detector with regions and metadata that publishes better retrains, and its ProjectExport."""
    project = fill_project(http, f"export-{uuid.uuid4()}", detection=True)
    better = {"settings": {"publishBetterRetrains": True}}
    assert http.patch(f"{PROJECTS}/{project['id']}", json=better).status_code == 200
    answer = http.get(f"{PROJECTS}/{project['id']}/export")
    assert answer.status_code == 200, answer.text
    yield project, answer.json()
    http.delete(f"{PROJECTS}/{project['id']}")


def _token(fields: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


def test_export_answers_the_counts_and_a_token(exported: tuple[dict, dict]) -> None:
    _, export = exported
    assert set(export) == {
        "iterationCount",
        "imageCount",
        "tagCount",
        "regionCount",
        "estimatedImportTimeInMS",
        "token",
    }
    regioned = len([s for s in range(IMAGES) if s % 3 != 2])
    assert (export["imageCount"], export["tagCount"], export["regionCount"]) == (IMAGES, 2, 2 * regioned)
    assert export["iterationCount"] == 0 and export["estimatedImportTimeInMS"] > 0
    pinned = ImportToken.decode(export["token"])
    assert "sig=" in pinned.url and "AccountKey" not in export["token"]


def test_import_into_the_same_seer_copies_everything(http: httpx.Client, exported: tuple[dict, dict]) -> None:
    project, export = exported
    name = f"imported-{uuid.uuid4()}"
    imported = http.post(IMPORT, params={"token": export["token"], "name": name})
    assert imported.status_code == 200, imported.text
    copy = imported.json()
    try:
        assert copy["name"] == name and copy["id"] != project["id"]
        assert contents(http, copy["id"]) == contents(http, project["id"])
        assert copy["settings"]["publishBetterRetrains"] is True
    finally:
        http.delete(f"{PROJECTS}/{copy['id']}")


def test_import_into_another_seer_keeps_the_name_and_numbers_it_when_taken(
    other_seer: str, http: httpx.Client, exported: tuple[dict, dict]
) -> None:
    project, export = exported
    expected = contents(http, project["id"])
    with training_client(other_seer) as other:
        first = other.post(IMPORT, params={"token": export["token"]})
        assert first.status_code == 200, first.text
        assert first.json()["name"] == project["name"]
        assert contents(other, first.json()["id"]) == expected
        second = other.post(IMPORT, params={"token": export["token"]})
        assert second.status_code == 200, second.text
        assert second.json()["name"] == f"{project['name']} (2)"
        taken = other.post(IMPORT, params={"token": export["token"], "name": project["name"]})
        assert taken.status_code == 400 and taken.json()["code"] == "BadRequestProjectNameNotUnique"


def test_with_private_urls_refused_this_seers_own_links_still_import_and_copy(
    other_seer: str, settings: Settings, account: StorageAccount
) -> None:
    """A Seer on Azurite (the README's run command) refuses private image URLs by default, yet its own export
    token and image URIs point at its loopback storage: it imports the one and copies images by the other, and
    still refuses another loopback Seer's token."""
    strict = settings.model_copy(update={"allow_private_urls": False})
    with served(create_app(strict, account)) as url, training_client(url) as http:
        project = fill_project(http, f"strict-{uuid.uuid4()}", images=4)
        try:
            token = http.get(f"{PROJECTS}/{project['id']}/export").json()["token"]
            imported = http.post(IMPORT, params={"token": token, "name": f"strict-copy-{uuid.uuid4()}"})
            assert imported.status_code == 200, imported.text
            assert contents(http, imported.json()["id"]) == contents(http, project["id"])
            http.delete(f"{PROJECTS}/{imported.json()['id']}")

            uris = [i["originalImageUri"] for i in http.get(f"{PROJECTS}/{project['id']}/images").json()]
            target = http.post(PROJECTS, params={"name": f"strict-urls-{uuid.uuid4()}"}).json()
            copied = http.post(
                f"{PROJECTS}/{target['id']}/images/urls", json={"images": [{"url": u} for u in uris]}
            )
            assert copied.status_code == 200 and copied.json()["isBatchSuccessful"], copied.text
            http.delete(f"{PROJECTS}/{target['id']}")

            with training_client(other_seer) as other:
                foreign = fill_project(other, f"foreign-{uuid.uuid4()}", images=2)
                foreign_token = other.get(f"{PROJECTS}/{foreign['id']}/export").json()["token"]
            refused = http.post(IMPORT, params={"token": foreign_token})
            assert refused.status_code == 400 and "SEER_ALLOW_PRIVATE_URLS" in refused.json()["message"], (
                refused.text
            )
        finally:
            http.delete(f"{PROJECTS}/{project['id']}")


def _tampered(token: str, account: StorageAccount) -> dict[str, str]:
    pinned = ImportToken.decode(token)
    fields = pinned.model_dump()
    other_hash = ("0" if pinned.sha256[0] != "0" else "1") + pinned.sha256[1:]
    package = urlsplit(pinned.url).path.split(f"/{CONTAINER}/", 1)[1]
    expired = account.read_url(CONTAINER, package, hours=-1)  # signed by the same key, an hour ago
    return {
        "not base64": "%%%not-base64%%%",
        "not JSON": base64.urlsafe_b64encode(b"{not json").decode(),
        "not a token": _token({"hello": "world"}),
        "changed hash": _token(fields | {"sha256": other_hash}),
        "changed URL": _token(fields | {"url": pinned.url.replace(".json", "x.json")}),
        "changed signature": _token(fields | {"url": pinned.url.replace("sig=", "sig=A")}),
        "expired link": _token(fields | {"url": expired}),
        "empty": "",
    }


def test_a_tampered_token_is_refused_and_creates_nothing(
    http: httpx.Client, account: StorageAccount, exported: tuple[dict, dict]
) -> None:
    _, export = exported
    before = {p["id"] for p in http.get(PROJECTS).json()}
    for what, token in _tampered(export["token"], account).items():
        answer = http.post(IMPORT, params={"token": token, "name": f"tampered-{uuid.uuid4()}"})
        assert answer.status_code == 400, (what, answer.text)
        assert answer.json()["code"] == "BadRequestInvalidImportToken", (what, answer.text)
    assert {p["id"] for p in http.get(PROJECTS).json()} == before


def test_an_import_whose_images_are_gone_leaves_no_project(other_seer: str, http: httpx.Client) -> None:
    """The package is read, the project and some images made, then an image link fails: the project goes."""
    source = fill_project(http, f"vanishing-{uuid.uuid4()}", images=4)
    token = http.get(f"{PROJECTS}/{source['id']}/export").json()["token"]
    last = http.get(f"{PROJECTS}/{source['id']}/images", params={"orderBy": "Newest", "take": 1}).json()[0]
    deleted = http.delete(f"{PROJECTS}/{source['id']}/images", params={"imageIds": last["id"]})
    assert deleted.status_code == 204
    name = f"half-{uuid.uuid4()}"
    with training_client(other_seer) as other:
        answer = other.post(IMPORT, params={"token": token, "name": name})
        assert answer.status_code == 400 and answer.json()["code"] == "BadRequestInvalidImportToken", (
            answer.text
        )
        assert find_project(other, name) is None
    http.delete(f"{PROJECTS}/{source['id']}")


def test_export_of_a_missing_project_is_not_found(http: httpx.Client) -> None:
    answer = http.get(f"{PROJECTS}/{uuid.uuid4()}/export")
    assert answer.status_code == 404 and answer.json()["code"] == "NotFoundProject"


def test_an_import_over_the_limit_is_refused_before_anything_is_made(http: httpx.Client) -> None:
    source = fill_project(http, f"large-{uuid.uuid4()}", images=4)
    token = http.get(f"{PROJECTS}/{source['id']}/export").json()["token"]
    with second_seer(max_import_images=3) as seer, training_client(seer.url) as other:
        answer = other.post(IMPORT, params={"token": token})
        assert answer.status_code == 400 and answer.json()["code"] == "BadRequestExceededQuota", answer.text
        assert other.get(PROJECTS).json() == []
    http.delete(f"{PROJECTS}/{source['id']}")


def test_deleting_the_project_deletes_its_packages(http: httpx.Client, account: StorageAccount) -> None:
    source = fill_project(http, f"deleted-{uuid.uuid4()}", images=2)
    token = http.get(f"{PROJECTS}/{source['id']}/export").json()["token"]
    packages = account.container(CONTAINER)
    assert [b.name for b in packages.list_blobs(name_starts_with=f"{source['id']}/")]
    assert http.delete(f"{PROJECTS}/{source['id']}").status_code == 204
    assert not [b.name for b in packages.list_blobs(name_starts_with=f"{source['id']}/")]
    answer = http.post(IMPORT, params={"token": token, "name": f"orphan-{uuid.uuid4()}"})
    assert answer.status_code == 400 and answer.json()["code"] == "BadRequestInvalidImportToken"


def test_an_import_whose_process_died_is_swept(
    http: httpx.Client, account: StorageAccount, settings: Settings, exported: tuple[dict, dict]
) -> None:
    """A project still marked as importing by a process that no longer runs is deleted by the sweeper; one that
    this (live) process is importing is left alone, and reports the status Importing meanwhile."""
    _, export = exported
    package = read_package(account, settings, export["token"])
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_owner = this_process().rpartition(":")[0] + ":" + finished.stdout.decode().strip()
    names = {owner: f"importing-{uuid.uuid4()}" for owner in (dead_owner, this_process())}
    projects = {
        owner: create_project(account, settings, name, domain_id=package.domain_id, importing_owner=owner)
        for owner, name in names.items()
    }
    for project in projects.values():
        assert http.get(f"{PROJECTS}/{project.id}").json()["status"] == "Importing"
    report = SweepReport()
    for project in projects.values():
        sweep_project(account, project.id, utcnow() - timedelta(hours=1), report)
    assert report.removed["abandoned imports"] == 1
    assert find_project(http, names[dead_owner]) is None
    assert find_project(http, names[this_process()]) is not None
    delete_project(account, projects[this_process()].id)


def test_an_imported_project_is_no_longer_importing(http: httpx.Client, exported: tuple[dict, dict]) -> None:
    _, export = exported
    imported = http.post(IMPORT, params={"token": export["token"], "name": f"settled-{uuid.uuid4()}"}).json()
    assert imported["status"] == "Succeeded"
    assert http.get(f"{PROJECTS}/{imported['id']}").json()["status"] == "Succeeded"
    http.delete(f"{PROJECTS}/{imported['id']}")


def test_an_import_keeps_seers_unknown_detection(http: httpx.Client) -> None:
    project = http.post(PROJECTS, params={"name": f"unknown-{uuid.uuid4()}"}).json()
    at = f"{PROJECTS}/{project['id']}"
    assert http.patch(at, json={"settings": {"unknownDetection": True}}).status_code == 200
    token = http.get(f"{at}/export").json()["token"]
    imported = http.post(IMPORT, params={"token": token, "name": f"unknown-copy-{uuid.uuid4()}"})
    assert imported.status_code == 200, imported.text
    copy = http.get(f"{PROJECTS}/{imported.json()['id']}").json()
    try:
        assert copy["settings"]["unknownDetection"] is True
    finally:
        http.delete(at)
        http.delete(f"{PROJECTS}/{copy['id']}")
