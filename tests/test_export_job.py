"""The export job's queue handling on real Azurite (training_job/exports/job.py): a message that is not an export
request goes to the poison queue, a request asked for again since is dropped, an export whose job died on every try
ends Failed with the reason, and one that cannot be made fails at once. (Exports that succeed: test_export_service.)"""

from __future__ import annotations

import time
import uuid

import pytest

from pipeline.contract.exports import ExportFlavor, ExportPlatform, ExportPrecision
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import ExportStatus
from pipeline.services.exports import export_message
from pipeline.store import StorageAccount
from pipeline.store.exports import ExportStore
from pipeline.store.records import ExportRecord
from training_job.exports.job import handle


@pytest.fixture()
def queue_name() -> str:
    return f"exports-{uuid.uuid4().hex[:12]}"


@pytest.fixture()
def record(account: StorageAccount) -> ExportRecord:
    """An Exporting row for an iteration that has no row (nor model)."""
    exporting = ExportRecord(
        project_id=str(uuid.uuid4()),
        iteration_id=str(uuid.uuid4()),
        platform=ExportPlatform.ONNX,
        flavor=ExportFlavor.ONNX12,
        precision=ExportPrecision.FP32,
        request_id=str(uuid.uuid4()),
    )
    assert ExportStore(account).create(exporting)
    return exporting


def message_for(record: ExportRecord, request_id: str | None = None) -> str:
    return export_message(record.model_copy(update={"request_id": request_id or record.request_id})).encode()


def received(account: StorageAccount, queue_name: str, visibility: int = 30):
    [message] = account.queue(queue_name).receive_messages(max_messages=1, visibility_timeout=visibility)
    return message


def stored(account: StorageAccount, record: ExportRecord) -> ExportRecord:
    found = ExportStore(account).get(record.project_id, record.row_key)
    assert found is not None
    return found


def test_a_message_that_is_no_export_request_is_poisoned(
    account: StorageAccount, settings: Settings, queue_name: str
) -> None:
    account.queue(queue_name).send_message("not base64 json")
    assert handle(account, settings, queue_name, received(account, queue_name)) == 0
    assert [m.content for m in account.queue(f"{queue_name}-poison").peek_messages()] == ["not base64 json"]
    assert list(account.queue(queue_name).peek_messages()) == []


def test_a_request_asked_for_again_since_is_dropped(
    account: StorageAccount, settings: Settings, queue_name: str, record: ExportRecord
) -> None:
    account.queue(queue_name).send_message(message_for(record, request_id=str(uuid.uuid4())))
    assert handle(account, settings, queue_name, received(account, queue_name)) == 0
    assert stored(account, record) == record  # untouched: the newer request's job owns it
    assert list(account.queue(queue_name).peek_messages()) == []


def test_an_export_that_cannot_be_made_fails_at_once_with_its_reason(
    account: StorageAccount, settings: Settings, queue_name: str, record: ExportRecord
) -> None:
    account.queue(queue_name).send_message(message_for(record))
    assert handle(account, settings, queue_name, received(account, queue_name)) == 0
    failed = stored(account, record)
    assert failed.status == ExportStatus.FAILED and failed.reason == "The iteration or its model is gone."
    assert failed.blob is None and failed.finished is not None
    assert list(account.queue(f"{queue_name}-poison").peek_messages()) == []


def test_after_the_last_try_the_export_fails_and_its_message_is_poisoned(
    account: StorageAccount, settings: Settings, queue_name: str, record: ExportRecord
) -> None:
    one_try = settings.model_copy(update={"export_max_attempts": 1})
    account.queue(queue_name).send_message(message_for(record))
    received(account, queue_name, visibility=1)  # a job that died holding it
    time.sleep(1.5)
    message = received(account, queue_name)
    assert message.dequeue_count == 2
    assert handle(account, one_try, queue_name, message) == 0
    failed = stored(account, record)
    assert failed.status == ExportStatus.FAILED and "each of its 1 tries" in (failed.reason or "")
    assert len(list(account.queue(f"{queue_name}-poison").peek_messages())) == 1
