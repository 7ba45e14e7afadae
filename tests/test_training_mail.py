"""TrainProject's `notificationEmailAddress`: validated when training is requested (one plain address, nothing that
could add a header or a recipient), and, when Seer has SMTP settings, mailed by the training job when the run
completes or fails. The mail goes to a real SMTP server (aiosmtpd) on loopback; no SMTP settings means no mail, and
a server that cannot be reached never fails training."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from azure.cognitiveservices.vision.customvision.training.models import CustomVisionErrorException
from azure.storage.queue import QueueClient
from fastapi.testclient import TestClient

from devhost.ports import free_port
from pipeline.api.app import create_app
from pipeline.core.domains import DEFAULT_CLASSIFICATION_DOMAIN
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import IterationStatus
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from pipeline.store.records import IterationRecord, ProjectRecord
from tests.conftest import PROJECTS, TRAINING_KEY
from tests.queues import received
from training_job.job import handle
from training_job.notify import notify_training

RECIPIENT = "owner@example.com"
SENDER = "seer@example.org"


class Inbox:
    """An aiosmtpd handler that keeps what it is sent: (envelope recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


@pytest.fixture()
def inbox(smtp_server: tuple[int, Inbox]) -> Inbox:
    smtp_server[1].messages.clear()
    return smtp_server[1]


def with_smtp(settings: Settings, port: int) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_from_address": SENDER,
            "smtp_security": "none",
            "smtp_timeout_seconds": 2.0,
        }
    )


def train_and_run(
    account: StorageAccount, settings: Settings, project_id: str, *, remove_images: bool = False
) -> dict:
    """Press Train with the address (through the API, on a queue of its own), then run the training job on that
    queue in process; `remove_images` deletes the images in between, so the run fails at once."""
    queue_name = f"training-{uuid.uuid4().hex[:12]}"
    app = create_app(settings.model_copy(update={"training_queue": queue_name}), account)
    client = TestClient(app, headers={"Training-Key": TRAINING_KEY})
    trained = client.post(f"{PROJECTS}/{project_id}/train", params={"notificationEmailAddress": RECIPIENT})
    assert trained.status_code == 200, trained.text
    assert "notificationEmailAddress" not in trained.json()
    if remove_images:
        removed = client.delete(f"{PROJECTS}/{project_id}/images", params={"allImages": "true"})
        assert removed.status_code < 300, removed.text
    message = next(iter(account.queue(queue_name).receive_messages(max_messages=1, visibility_timeout=60)))
    assert handle(account, settings, queue_name, message) == 0
    assert account.queue(queue_name).peek_messages() == []
    return client.get(f"{PROJECTS}/{project_id}/iterations/{trained.json()['id']}").json()


def test_a_completed_run_mails_the_address(
    project_with_images: tuple[str, QueueClient], account, settings: Settings, smtp_server, inbox: Inbox
) -> None:
    project_id, notify_queue = project_with_images
    project_name = (
        TestClient(create_app(settings, account), headers={"Training-Key": TRAINING_KEY})
        .get(f"{PROJECTS}/{project_id}")
        .json()["name"]
    )
    iteration = train_and_run(account, with_smtp(settings, smtp_server[0]), project_id)
    assert iteration["status"] == "Completed"
    assert IterationStore(account).get(project_id, iteration["id"]).notification_email_address == RECIPIENT
    [(recipients, mail)] = inbox.messages
    assert recipients == [RECIPIENT]
    assert mail["To"] == RECIPIENT
    assert mail["From"] == SENDER
    # strip(): the stdlib folds a long subject right after "Subject:", and parsing keeps the fold's space.
    assert mail["Subject"].strip() == f"Training Completed: {project_name}, {iteration['name']}"
    body = mail.get_content()
    assert f"Project: {project_name}" in body
    assert f"Iteration: {iteration['name']}" in body
    assert "Status: Completed" in body
    assert "Reason" not in body
    # The queue notification is still posted next to the mail.
    assert [n["Content"]["trainingStatus"] for n in received(notify_queue)] == ["Completed"]


def test_a_failed_run_mails_the_reason(
    project_with_images, account, settings: Settings, smtp_server, inbox: Inbox
) -> None:
    project_id, _ = project_with_images
    iteration = train_and_run(account, with_smtp(settings, smtp_server[0]), project_id, remove_images=True)
    assert iteration["status"] == "Failed"
    [(recipients, mail)] = inbox.messages
    assert recipients == [RECIPIENT]
    assert mail["Subject"].strip().startswith("Training Failed: ")
    body = mail.get_content()
    assert "Status: Failed" in body
    assert f"Reason: {iteration['trainingErrorDetails']}" in body
    assert "no tagged images" in body


def test_no_smtp_settings_means_no_mail(
    project_with_images, account, settings: Settings, inbox: Inbox
) -> None:
    project_id, notify_queue = project_with_images
    iteration = train_and_run(account, settings, project_id, remove_images=True)
    assert iteration["status"] == "Failed"
    assert inbox.messages == []
    assert [n["Content"]["trainingStatus"] for n in received(notify_queue)] == ["Failed"]


def test_an_unreachable_smtp_server_never_fails_training(
    project_with_images, account, settings: Settings, caplog
) -> None:
    """Nothing listens on the port: the run records its own outcome, consumes its message (train_and_run checks
    both) and still posts the queue notification; the mail failure is only logged."""
    project_id, notify_queue = project_with_images
    iteration = train_and_run(account, with_smtp(settings, free_port()), project_id, remove_images=True)
    assert iteration["status"] == "Failed"
    assert "no tagged images" in iteration["trainingErrorDetails"]
    assert [n["Content"]["trainingStatus"] for n in received(notify_queue)] == ["Failed"]
    assert "could not mail the training notification" in caplog.text


@pytest.mark.parametrize(
    "address",
    [
        "not-an-address",
        "owner@localhost",
        "owner@example.com\r\nBcc: victim@example.com",
        "owner@example.com\nSubject: hi",
        "owner@example.com, other@example.com",
        "owner@example.com;other@example.com",
        "Owner <owner@example.com>",
        "<owner@example.com>",
        "own er@example.com",
        "owner@@example.com",
        "owner@-example.com",
        "owner..x@example.com",
        "x" * 65 + "@example.com",
        "owner@" + "a" * 250 + ".com",
    ],
)
def test_train_refuses_an_address_that_is_not_one_plain_address(client: TestClient, project, address) -> None:
    refused = client.post(f"{PROJECTS}/{project['id']}/train", params={"notificationEmailAddress": address})
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "BadRequestInvalidEmailAddress"
    assert client.get(f"{PROJECTS}/{project['id']}/iterations").json() == []


def test_the_sdk_hears_the_invalid_address_code(trainer, project) -> None:
    with pytest.raises(CustomVisionErrorException) as refused:
        trainer.train_project(
            project["id"], notification_email_address="owner@example.com\r\nBcc: x@example.com"
        )
    assert refused.value.error.code == "BadRequestInvalidEmailAddress"


def _finished(project_id: str, address: str) -> tuple[ProjectRecord, IterationRecord]:
    project = ProjectRecord(id=project_id, name="stored", domain_id=DEFAULT_CLASSIFICATION_DOMAIN)
    iteration = IterationRecord(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name="Iteration 1",
        status=IterationStatus.COMPLETED,
        domain_id=project.domain_id,
        training_set_fingerprint="",
        notification_email_address=address,
    )
    return project, iteration


def test_starttls_is_never_skipped(account, settings: Settings, smtp_server, inbox: Inbox) -> None:
    """The default security is STARTTLS: a server that does not offer it gets nothing in the clear."""
    mail = with_smtp(settings, smtp_server[0]).model_copy(update={"smtp_security": "starttls"})
    notify_training(account, mail, *_finished(str(uuid.uuid4()), RECIPIENT))
    assert inbox.messages == []


def test_a_stored_address_is_checked_again_when_mailing(
    account, settings: Settings, smtp_server, inbox: Inbox
) -> None:
    """A row written before the rule (or by hand) never adds a header or a recipient."""
    mail = with_smtp(settings, smtp_server[0])
    notify_training(account, mail, *_finished(str(uuid.uuid4()), f"{RECIPIENT}\r\nBcc: victim@example.com"))
    notify_training(account, mail, *_finished(str(uuid.uuid4()), f"{RECIPIENT}, victim@example.com"))
    assert inbox.messages == []
