"""Unique names under races (pipeline/services/names.py): parallel creates and renames to one name over real HTTP
make exactly one winner; claims are released on delete and rename, and a claim left by a crash is taken over
once it is stale."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from pipeline.core.vocabulary import IterationStatus
from pipeline.services import names
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from pipeline.store.records import IterationRecord
from tests.conftest import TRAINING_KEY

TRAINING = "/customvision/v3.3/training"
PARALLEL = 16


def _race(live_url: str, requests: list[tuple[str, str, dict]]) -> Counter:
    """Send the requests (method, path, httpx keyword arguments) at once, one thread each; count the outcomes
    as `200` or the error code."""
    start = threading.Barrier(len(requests))

    def send(request: tuple[str, str, dict]) -> str:
        method, path, kwargs = request
        with httpx.Client(base_url=live_url, headers={"Training-Key": TRAINING_KEY}, timeout=60) as client:
            start.wait()
            response = client.request(method, f"{TRAINING}{path}", **kwargs)
        return "200" if response.status_code == 200 else f"{response.status_code} {response.json()['code']}"

    with ThreadPoolExecutor(len(requests)) as pool:
        return Counter(pool.map(send, requests))


def test_parallel_creates_of_one_project_name_make_one_project(live_url: str, client: TestClient):
    name = f"race-{uuid.uuid4()}"
    outcomes = _race(live_url, [("POST", "/projects", {"params": {"name": name}})] * PARALLEL)
    assert outcomes == {"200": 1, "400 BadRequestProjectNameNotUnique": PARALLEL - 1}
    assert [p["name"] for p in client.get(f"{TRAINING}/projects").json()].count(name) == 1


def test_parallel_creates_of_one_tag_name_make_one_tag(live_url: str, client: TestClient, project: dict):
    spellings = ["Caf\u00e9", "cafe\u0301", "CAF\u00c9"]  # one name: any case, composed or not
    requests = [
        ("POST", f"/projects/{project['id']}/tags", {"params": {"name": spellings[i % 3]}})
        for i in range(PARALLEL)
    ]
    outcomes = _race(live_url, requests)
    assert outcomes == {"200": 1, "400 BadRequestTagNameNotUnique": PARALLEL - 1}
    assert len(client.get(f"{TRAINING}/projects/{project['id']}/tags").json()) == 1


def test_parallel_renames_to_one_name_rename_one(live_url: str, client: TestClient, project: dict):
    projects = [
        client.post(f"{TRAINING}/projects", params={"name": f"rename-{uuid.uuid4()}"}).json()["id"]
        for _ in range(8)
    ]
    name = f"renamed-{uuid.uuid4()}"
    outcomes = _race(live_url, [("PATCH", f"/projects/{p}", {"json": {"name": name}}) for p in projects])
    assert outcomes == {"200": 1, "400 BadRequestProjectNameNotUnique": 7}

    tags = [
        client.post(f"{TRAINING}/projects/{project['id']}/tags", params={"name": f"tag {i}"}).json()["id"]
        for i in range(8)
    ]
    outcomes = _race(
        live_url, [("PATCH", f"/projects/{project['id']}/tags/{t}", {"json": {"name": "Same"}}) for t in tags]
    )
    assert outcomes == {"200": 1, "400 BadRequestTagNameNotUnique": 7}


def test_parallel_iteration_renames_to_one_name_rename_one(
    live_url: str, account: StorageAccount, project: dict
):
    store = IterationStore(account)
    iterations = [
        store.create(
            IterationRecord(
                id=str(uuid.uuid4()),
                project_id=project["id"],
                name=f"Iteration {i}",
                status=IterationStatus.COMPLETED,
                domain_id=project["settings"]["domainId"],
                training_set_fingerprint="",
            )
        ).id
        for i in range(1, 9)
    ]
    path = f"/projects/{project['id']}/iterations"
    outcomes = _race(live_url, [("PATCH", f"{path}/{i}", {"json": {"name": "Final"}}) for i in iterations])
    assert outcomes == {"200": 1, "400 BadRequestIterationNameNotUnique": 7}


def test_names_are_free_again_after_delete_and_rename(client: TestClient):
    name, other = f"again-{uuid.uuid4()}", f"other-{uuid.uuid4()}"
    first = client.post(f"{TRAINING}/projects", params={"name": name}).json()["id"]
    assert client.delete(f"{TRAINING}/projects/{first}").status_code == 204
    second = client.post(f"{TRAINING}/projects", params={"name": name})
    assert second.status_code == 200, second.text
    assert client.patch(f"{TRAINING}/projects/{second.json()['id']}", json={"name": other}).status_code == 200
    assert client.post(f"{TRAINING}/projects", params={"name": name}).status_code == 200
    taken = client.post(f"{TRAINING}/projects", params={"name": other})
    assert taken.json()["code"] == "BadRequestProjectNameNotUnique"

    tags = f"{TRAINING}/projects/{second.json()['id']}/tags"
    tag = client.post(tags, params={"name": "dog"}).json()["id"]
    assert client.patch(f"{tags}/{tag}", json={"name": "Dog"}).status_code == 200  # same name, other case
    assert client.delete(f"{tags}/{tag}").status_code == 204
    assert client.post(tags, params={"name": "DOG"}).status_code == 200


def test_a_claim_left_by_a_crash_blocks_only_until_it_is_stale(
    client: TestClient, account: StorageAccount, monkeypatch: pytest.MonkeyPatch
):
    """A create that died after its claim: the name counts as taken while the claim is young (a create may be
    in flight), and is taken over once it is older than CLAIM_GRACE."""
    name = f"crashed-{uuid.uuid4()}"
    assert (
        names.project_name_claims(account).claim(name, str(uuid.uuid4())) is None
    )  # its project row never came
    refused = client.post(f"{TRAINING}/projects", params={"name": name})
    assert refused.json()["code"] == "BadRequestProjectNameNotUnique"
    monkeypatch.setattr(names, "CLAIM_GRACE", timedelta(0))
    taken_over = client.post(f"{TRAINING}/projects", params={"name": name})
    assert taken_over.status_code == 200, taken_over.text
    assert names.project_name_claims(account).holder(name).owner == taken_over.json()["id"]
