"""TrainProject's customBaseModelInfo (v3.4-preview, issue 14): a base iteration is checked before anything is
written; the iteration it starts reports its base. Training itself is tests/test_incremental_training.py's."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from pipeline.core.vocabulary import IterationStatus
from pipeline.services.training import request_training
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from pipeline.store.projects import ProjectStore
from pipeline.store.records import IterationRecord
from tests.conftest import COMPACT_DETECTION_DOMAIN, COMPACT_DOMAIN, PROJECTS

PREVIEW = "/customvision/v3.4-preview/training/projects"


def _iteration(
    account: StorageAccount,
    project_id: str,
    status: IterationStatus,
    domain_id: str = COMPACT_DOMAIN,
    classification_type: str | None = "Multiclass",
) -> str:
    """An iteration row as the training job leaves it (a Completed one names its model)."""
    iteration = IterationRecord(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name=f"Iteration {uuid.uuid4().hex[:8]}",
        status=status,
        domain_id=domain_id,
        classification_type=classification_type,
        training_set_fingerprint="-",
        model_blob=f"{project_id}/x/model.onnx" if status == IterationStatus.COMPLETED else None,
    )
    IterationStore(account).create(iteration)
    return iteration.id


def _train(client: TestClient, project_id: str, base: dict, prefix: str = PREVIEW):
    return client.post(
        f"{prefix}/{project_id}/train", params={"forceTrain": "true"}, json={"customBaseModelInfo": base}
    )


def _other_project(client: TestClient, **params: str) -> str:
    created = client.post(PROJECTS, params={"name": f"base-{uuid.uuid4()}", **params})
    assert created.status_code == 200, created.text
    return created.json()["id"]


@pytest.fixture()
def trainable(project_with_images) -> str:
    """A compact Multiclass project that can train (two tags of five images)."""
    return project_with_images[0]


def _refused(
    client: TestClient, account: StorageAccount, project_id: str, base: dict, status: int, code: str
):
    """The request is refused with `code` and leaves the project's iterations and training claim as they were."""
    before = [i.id for i in IterationStore(account).list(project_id)]
    claim = ProjectStore(account).get(project_id).training_iteration_id
    response = _train(client, project_id, base)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert [i.id for i in IterationStore(account).list(project_id)] == before
    assert ProjectStore(account).get(project_id).training_iteration_id == claim


def test_a_base_that_is_not_completed_is_refused(client, account, trainable) -> None:
    elsewhere = _other_project(client, domainId=COMPACT_DOMAIN)
    for owner, status in ((trainable, IterationStatus.FAILED), (elsewhere, IterationStatus.TRAINING)):
        base = {"projectId": owner, "iterationId": _iteration(account, owner, status)}
        _refused(
            client, account, trainable, base, 400, "BadRequestCustomBaseModelIterationStatusNotCompleted"
        )


def test_a_base_that_does_not_exist_where_named_is_404(client, account, trainable) -> None:
    elsewhere = _other_project(client, domainId=COMPACT_DOMAIN)
    theirs = _iteration(account, elsewhere, IterationStatus.COMPLETED)
    cases = [
        ({"projectId": trainable, "iterationId": str(uuid.uuid4())}, "NotFoundIteration"),
        ({"projectId": trainable, "iterationId": theirs}, "NotFoundIteration"),  # another project's iteration
        ({"projectId": str(uuid.uuid4()), "iterationId": theirs}, "NotFoundProject"),
    ]
    for base, code in cases:
        _refused(client, account, trainable, base, 404, code)
    for malformed in (
        {"projectId": "not/a 'uuid'#?", "iterationId": theirs},
        {"projectId": elsewhere, "iterationId": "x"},
    ):
        _refused(client, account, trainable, malformed, 400, "BadRequestInvalid")


def test_a_base_trained_for_another_kind_of_model_is_refused(client, account, trainable) -> None:
    general = client.get("/customvision/v3.3/training/domains").json()[0]["id"]  # efficientnet-lite2
    cases = {
        "larger backbone": ({}, general, "Multiclass"),
        "detector": ({"domainId": COMPACT_DETECTION_DOMAIN}, COMPACT_DETECTION_DOMAIN, None),
        "multilabel": (
            {"domainId": COMPACT_DOMAIN, "classificationType": "Multilabel"},
            COMPACT_DOMAIN,
            "Multilabel",
        ),
    }
    for params, domain_id, classification_type in cases.values():
        owner = _other_project(client, **params)
        iteration_id = _iteration(account, owner, IterationStatus.COMPLETED, domain_id, classification_type)
        base = {"projectId": owner, "iterationId": iteration_id}
        _refused(client, account, trainable, base, 400, "BadRequestCustomBaseModelDomainNotCompatible")


def test_a_base_without_both_ids_is_refused(client, account, trainable) -> None:
    _refused(client, account, trainable, {"projectId": trainable}, 400, "BadRequestRequiredParamIsNull")


@pytest.mark.parametrize("prefix", [PREVIEW, PROJECTS])
def test_the_iteration_reports_its_base(client, account, trainable, prefix: str) -> None:
    """Accepted from this project or a compatible other one; v3.4-preview's Iteration has customBaseModelInfo, and
    v3.3 answers it as an extra field."""
    elsewhere = _other_project(client, domainId=COMPACT_DOMAIN)
    for owner in (trainable, elsewhere):
        base = {"projectId": owner, "iterationId": _iteration(account, owner, IterationStatus.COMPLETED)}
        response = _train(client, trainable, base, prefix)
        assert response.status_code == 200, response.text
        started = response.json()
        assert started["customBaseModelInfo"] == base
        assert "warmStart" not in started  # until the training job says what it reused
        got = client.get(f"{prefix}/{trainable}/iterations/{started['id']}").json()
        assert got["customBaseModelInfo"] == base
        IterationStore(account).update(
            trainable, started["id"], lambda i: i.model_copy(update={"status": IterationStatus.FAILED})
        )


def test_making_room_for_the_new_iteration_keeps_its_base(account, settings, trainable) -> None:
    """At the iteration limit the oldest unpublished iteration goes, unless it is the base the new one starts
    from."""
    oldest, _newer = (_iteration(account, trainable, IterationStatus.COMPLETED) for _ in range(2))
    full = settings.model_copy(update={"max_iterations_per_project": 2})
    started = request_training(account, full, trainable, force_train=True, base_model=(trainable, oldest))
    assert {i.id for i in IterationStore(account).list(trainable)} == {oldest, started.id}  # not `newer`
