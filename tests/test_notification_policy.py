"""A project's notificationQueueUri goes through the outbound policy: refused on Seer's own storage account and,
unless private URLs are allowed, on private addresses, both when a project names it and when a notification is
sent; a user's SAS URI to their own queue gets the notification (the training job tests cover the whole path)."""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient

from pipeline.api.app import create_app
from pipeline.core.domains import DEFAULT_CLASSIFICATION_DOMAIN
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import IterationStatus
from pipeline.store import StorageAccount
from pipeline.store.projects import ProjectStore
from pipeline.store.records import IterationRecord, ProjectRecord
from tests.conftest import TRAINING_KEY
from tests.queues import received, sas_queue
from tests.serving import QuietHandler, handler_served
from training_job.notify import notify_training

PROJECTS = "/customvision/v3.3/training/projects"


def _iteration(project: ProjectRecord) -> IterationRecord:
    return IterationRecord(
        id=str(uuid.uuid4()),
        project_id=project.id,
        name="Iteration 1",
        status=IterationStatus.COMPLETED,
        domain_id=project.domain_id,
        training_set_fingerprint="",
    )


def _stored_project(account: StorageAccount, queue_uri: str) -> ProjectRecord:
    """A project row naming `queue_uri` as if it had been stored before the policy existed."""
    project = ProjectRecord(
        id=str(uuid.uuid4()),
        name=f"legacy-{uuid.uuid4()}",
        domain_id=DEFAULT_CLASSIFICATION_DOMAIN,
        notification_queue_uri=queue_uri,
    )
    return ProjectStore(account).create(project)


def test_a_queue_on_seers_own_account_is_refused_at_create_and_update(client: TestClient, account, project):
    internal = account.queue("training")
    for uri in (
        internal.url,
        f"{internal.url}?sv=2021-12-02&sig=forged",
        internal.url.replace("training", "other"),
    ):
        created = client.post(
            PROJECTS, params={"name": f"own-{uuid.uuid4()}"}, json={"notificationQueueUri": uri}
        )
        assert created.status_code == 400, created.text
        assert created.json()["code"] == "BadRequestInvalidUri"
        updated = client.patch(
            f"{PROJECTS}/{project['id']}", json={"settings": {"notificationQueueUri": uri}}
        )
        assert updated.status_code == 400, updated.text
        assert updated.json()["code"] == "BadRequestInvalidUri"
    assert client.get(f"{PROJECTS}/{project['id']}").json()["settings"].get("notificationQueueUri") is None


def test_update_sets_and_clears_a_users_queue(client: TestClient, tenant_account, project):
    _, uri = sas_queue(tenant_account)
    updated = client.patch(f"{PROJECTS}/{project['id']}", json={"settings": {"notificationQueueUri": uri}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["settings"]["notificationQueueUri"] == uri
    cleared = client.patch(f"{PROJECTS}/{project['id']}", json={"settings": {"notificationQueueUri": ""}})
    assert cleared.json()["settings"].get("notificationQueueUri") is None


def test_a_stored_uri_on_seers_own_account_is_never_posted_to(account, settings: Settings):
    """Checked again at send time: a bare URI is never signed with Seer's key, a SAS one never used."""
    internal = account.queue(f"training-{uuid.uuid4().hex[:8]}")
    for uri in (internal.url, f"{internal.url}?sv=2021-12-02&sig=forged"):
        project = _stored_project(account, uri)
        notify_training(account, settings, project, _iteration(project))
    assert internal.peek_messages() == []


def test_private_addresses_are_refused_unless_allowed(settings: Settings, account, tenant_account):
    strict = settings.model_copy(update={"allow_private_urls": False})
    strict_client = TestClient(create_app(strict, account), headers={"Training-Key": TRAINING_KEY})
    queue, uri = sas_queue(tenant_account)
    for private in (uri, "http://10.1.2.3/q?sig=x", "http://[::1]:10001/q", "ftp://example.com/q"):
        created = strict_client.post(
            PROJECTS, params={"name": f"private-{uuid.uuid4()}"}, json={"notificationQueueUri": private}
        )
        assert created.status_code == 400, created.text
        assert created.json()["code"] == "BadRequestInvalidUri"
    # A name stored while it resolved elsewhere is checked again when the notification is sent.
    project = _stored_project(account, uri)
    notify_training(account, strict, project, _iteration(project))
    assert received(queue) == []
    notify_training(account, settings, project, _iteration(project))
    assert [n["Content"]["projectId"] for n in received(queue)] == [project.id]


def test_a_users_sas_queue_gets_the_notification(client: TestClient, account, settings, tenant_account):
    queue, uri = sas_queue(tenant_account)
    created = client.post(
        PROJECTS, params={"name": f"notify-{uuid.uuid4()}"}, json={"notificationQueueUri": uri}
    )
    assert created.status_code == 200, created.text
    project = ProjectStore(account).get(created.json()["id"])
    iteration = _iteration(project)
    notify_training(account, settings, project, iteration)
    assert received(queue) == [
        {
            "version": "1.0",
            "type": "Training",
            "Content": {"projectId": project.id, "iterationId": iteration.id, "trainingStatus": "Completed"},
        }
    ]


@pytest.fixture()
def silent_queue() -> str:
    """A loopback 'queue' that accepts connections and never answers."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            time.sleep(5)

    with handler_served(Handler) as url:
        yield f"{url}/account/queue?sig=x"


def test_a_queue_that_never_answers_costs_only_the_timeout(account, settings: Settings, silent_queue: str):
    project = _stored_project(account, silent_queue)
    started = time.monotonic()
    notify_training(
        account,
        settings.model_copy(update={"notification_timeout_seconds": 0.5}),
        project,
        _iteration(project),
    )
    assert time.monotonic() - started < 2
