"""The local Functions host on the session's Azurite: HTTP, blob (polling and Event Grid), queue and timer triggers,
and the job launcher."""

from __future__ import annotations

import base64
import json
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from devhost.admin import AdminFunctions
from devhost.app_loader import FunctionInfo
from devhost.blob_binding import BlobTriggerMessage
from devhost.blob_queue import blob_trigger_queue_name
from devhost.blob_triggers import POISON_QUEUE, RECEIPTS_CONTAINER
from devhost.blob_webhook import WEBHOOK_PATH
from devhost.event_grid import BLOB_CREATED, BlobCreatedTopic, EventGridEvent
from devhost.host import LocalHost
from devhost.host_config import HostConfig
from devhost.jobs import JobSpec
from devhost.ports import free_port
from pipeline.store import StorageAccount
from tests import host_app

HOST_ID = f"localhost-tests-{host_app.SUFFIX}"
JOB_QUEUE = f"lh-job-{host_app.SUFFIX}"
IDLE_QUEUE = f"lh-idle-{host_app.SUFFIX}"
STANDBY_QUEUE = f"lh-standby-{host_app.SUFFIX}"
MASTER_KEY = uuid.uuid4().hex

# The job dequeues its own message, as a Container Apps Job does, and leaves a marker with its content.
JOB_SCRIPT = """
import os, pathlib, sys
from azure.storage.queue import QueueClient
queue = QueueClient.from_connection_string(os.environ["AzureWebJobsStorage"], sys.argv[1])
message = queue.receive_message()
if message is not None:
    queue.delete_message(message)
    pathlib.Path(sys.argv[2]).write_text(message.content)
"""

# A standby execution: started with the queue empty, it notes its start, waits for a message and notes who took it.
STANDBY_SCRIPT = """
import os, pathlib, sys, time
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient
notes = pathlib.Path(sys.argv[2])
def note(line):
    with notes.open("a") as file:
        file.write(line + "\\n")
note(f"started {os.getpid()} {time.time()}")
queue = QueueClient.from_connection_string(os.environ["AzureWebJobsStorage"], sys.argv[1])
try:
    queue.create_queue()
except ResourceExistsError:
    pass
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    message = queue.receive_message()
    if message is not None:
        queue.delete_message(message)
        note(f"took {os.getpid()} {message.content}")
        break
    time.sleep(0.1)
"""


def wait_for(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.1)


def encode(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("job-markers")


@pytest.fixture(scope="module")
def host(storage_connection_string: str, markers: Path) -> Iterator[LocalHost]:
    """One host for the module: the app object allows indexing its functions only once."""
    jobs = [
        JobSpec.parse(
            f"{queue}={shlex.join([sys.executable, '-c', JOB_SCRIPT, queue, str(markers / queue)])}"
        )
        for queue in (JOB_QUEUE, IDLE_QUEUE)
    ]
    jobs.append(
        JobSpec.parse(
            f"{STANDBY_QUEUE}={shlex.join([sys.executable, '-c', STANDBY_SCRIPT, STANDBY_QUEUE, str(markers / STANDBY_QUEUE)])}",
            standby=True,
        )
    )
    local = LocalHost(
        host_app.app,
        host_config=HostConfig(visibility_timeout=0),
        port=free_port(),
        blob_poll_interval=0.2,
        queue_poll_interval=0.2,
        job_poll_interval=0.2,
        jobs=jobs,
        host_id=HOST_ID,
        master_key=MASTER_KEY,
    )
    local.start()
    yield local
    local.stop()


def records(account: StorageAccount, kind: str, **match: Any) -> list[dict[str, Any]]:
    rows = account.table(host_app.RECORDS_TABLE).query_entities(
        "PartitionKey eq @kind", parameters={"kind": kind}
    )
    return [row for row in rows if all(row.get(key) == value for key, value in match.items())]


def test_http_is_served_under_the_route_prefix(host: LocalHost) -> None:
    assert httpx.get(f"{host.url}/api/hello").json() == {"hello": "world"}
    assert httpx.get(f"{host.url}/hello").status_code == 404


def test_blob_processed_once_with_a_receipt(host: LocalHost, account: StorageAccount) -> None:
    name = f"photos/{uuid.uuid4()}.jpg"
    etag = account.container(host_app.UPLOADS).upload_blob(name, b"12345").get_blob_properties().etag
    bound_name = f"{host_app.UPLOADS}/{name}"
    calls = wait_for(lambda: records(account, "blob", name=bound_name))
    assert calls[0]["length"] == 5 and calls[0]["size"] == 5 and calls[0]["uri"].endswith(name)
    time.sleep(1.0)  # five more polls
    assert len(records(account, "blob", name=bound_name)) == 1
    receipt = f"blobreceipts/{HOST_ID}/Host.Functions.on_upload/{etag}/{host_app.UPLOADS}/{name}"
    assert account.container(RECEIPTS_CONTAINER).get_blob_client(receipt).exists()


def test_overwritten_blob_processed_again(host: LocalHost, account: StorageAccount) -> None:
    name = f"{uuid.uuid4()}.txt"
    container = account.container(host_app.UPLOADS)
    container.upload_blob(name, b"first")
    wait_for(lambda: records(account, "blob", name=f"{host_app.UPLOADS}/{name}"))
    container.upload_blob(name, b"second version", overwrite=True)
    bound_name = f"{host_app.UPLOADS}/{name}"
    wait_for(lambda: len(records(account, "blob", name=bound_name)) == 2)
    assert sorted(call["size"] for call in records(account, "blob", name=bound_name)) == [5, 14]


def poison_blob_message(account: StorageAccount, name: str) -> dict[str, Any] | None:
    for message in account.queue(POISON_QUEUE).peek_messages(max_messages=32):
        payload = json.loads(base64.b64decode(message.content))
        if payload["BlobName"] == name:
            return payload
    return None


def test_failing_blob_tried_five_times_then_poisoned(host: LocalHost, account: StorageAccount) -> None:
    name = f"{uuid.uuid4()}-fail.txt"
    etag = account.container(host_app.UPLOADS).upload_blob(name, b"bad").get_blob_properties().etag
    payload = wait_for(lambda: poison_blob_message(account, name))
    assert payload == {
        "Type": "BlobTrigger",
        "FunctionId": "Host.Functions.on_upload",
        "BlobType": "BlockBlob",
        "ContainerName": host_app.UPLOADS,
        "BlobName": name,
        "ETag": etag,
    }
    time.sleep(0.6)
    assert len(records(account, "blob", name=f"{host_app.UPLOADS}/{name}")) == 5


def event_calls(account: StorageAccount, name: str) -> list[dict[str, Any]]:
    return records(account, "event", name=f"{host_app.EVENTS}/in/{name}")


def test_event_grid_blob_delivered_once_per_write(host: LocalHost, account: StorageAccount) -> None:
    """Each write is one BlobCreated event and one invocation: no receipts, and no ETag check."""
    name = f"{uuid.uuid4()}.bin"
    container = account.container(host_app.EVENTS)
    container.upload_blob(f"in/{name}", b"123")
    wait_for(lambda: event_calls(account, name))
    container.upload_blob(f"in/{name}", b"12345678", overwrite=True)
    wait_for(lambda: len(event_calls(account, name)) == 2)
    container.upload_blob(f"out/{name}", b"not under the trigger's path")
    time.sleep(1.0)  # five more listings
    assert sorted(call["size"] for call in event_calls(account, name)) == [3, 8]
    assert not records(account, "event", name=f"{host_app.EVENTS}/out/{name}")
    receipts = account.container(RECEIPTS_CONTAINER).list_blobs(name_starts_with=f"blobreceipts/{HOST_ID}/")
    assert not [r.name for r in receipts if "on_event" in r.name]


def test_event_grid_failure_tried_poison_threshold_times(host: LocalHost, account: StorageAccount) -> None:
    name = f"{uuid.uuid4()}-fail.bin"
    etag = account.container(host_app.EVENTS).upload_blob(f"in/{name}", b"bad").get_blob_properties().etag
    payload = wait_for(lambda: poison_blob_message(account, f"in/{name}"))
    assert payload == {
        "Type": "BlobTrigger",
        "FunctionId": "Host.Functions.on_event",
        "BlobType": "BlockBlob",
        "ContainerName": host_app.EVENTS,
        "BlobName": f"in/{name}",
        "ETag": etag,
    }
    time.sleep(0.6)
    assert len(event_calls(account, name)) == host.config.poison_blob_threshold == 5


def test_emulated_topic_publishes_each_version_once_across_restarts(account: StorageAccount) -> None:
    container = f"lh-topic-{uuid.uuid4().hex[:8]}"
    checkpoint = f"devhost/eventgrid/tests/{container}.json"
    blobs = account.container(container)
    for name in ("a/1.bin", "a/2.bin", "b/3.bin"):
        blobs.upload_blob(name, name.encode())
    topic = BlobCreatedTopic(account, container, "a/", account, checkpoint)
    events, after = topic.pending()
    assert [e.subject.rsplit("/blobs/", 1)[1] for e in events] == ["a/1.bin", "a/2.bin"]
    assert events[0].event_type == BLOB_CREATED and events[0].data["url"].endswith(f"{container}/a/1.bin")
    topic.commit(after)
    restarted = BlobCreatedTopic(account, container, "a/", account, checkpoint)
    assert restarted.pending()[0] == []
    blobs.upload_blob("a/2.bin", b"changed", overwrite=True)
    (event,), _ = restarted.pending()
    assert event.subject.endswith("/a/2.bin") and event.data["contentLength"] == 7


def webhook(host: LocalHost, kind: str, events: list[EventGridEvent], function: str) -> httpx.Response:
    return httpx.post(
        f"{host.url}{WEBHOOK_PATH}",
        params={"functionName": function},
        headers={"aeg-event-type": kind},
        json=[event.wire() for event in events],
    )


def test_webhook_handshake_and_delivery(host: LocalHost, account: StorageAccount) -> None:
    """What Event Grid sends the host: the handshake, then a BlobCreated event that becomes a queue message."""
    validation = EventGridEvent(
        event_type="Microsoft.EventGrid.SubscriptionValidationEvent", data={"validationCode": "c0de"}
    )
    answer = webhook(host, "SubscriptionValidation", [validation], "Host.Functions.on_event")
    assert answer.status_code == 200 and answer.json() == {"validationResponse": "c0de"}
    assert (
        webhook(host, "SubscriptionValidation", [validation], "Host.Functions.on_upload").status_code == 404
    )

    name = f"in/{uuid.uuid4()}.bin"
    blob = account.container(host_app.EVENTS).get_blob_client(name)
    blob.upload_blob(b"sent by hand")
    properties = blob.get_blob_properties()
    event = EventGridEvent(
        event_type=BLOB_CREATED,
        subject=f"/blobServices/default/containers/{host_app.EVENTS}/blobs/{name}",
        data={
            "api": "PutBlob",
            "eTag": properties.etag.strip('"'),
            "contentLength": properties.size,
            "blobType": "BlockBlob",
            "url": blob.url,
        },
    )
    assert webhook(host, "Notification", [event], "Host.Functions.on_event").status_code == 202
    # The emulated subscription delivers the same blob too: Event Grid delivers at least once.
    wait_for(lambda: len(records(account, "event", name=f"{host_app.EVENTS}/{name}")) == 2)
    assert webhook(host, "Nonsense", [event], "Host.Functions.on_event").status_code == 400


def test_blob_queue_ignores_gone_blobs_and_unknown_functions(
    host: LocalHost, account: StorageAccount
) -> None:
    queue = account.queue(blob_trigger_queue_name(HOST_ID))
    for function, blob_name in (
        ("Host.Functions.on_event", "in/never-written.bin"),
        ("Host.Functions.gone", "in/x"),
    ):
        message = BlobTriggerMessage(
            function_id=function,
            blob_type="BlockBlob",
            container_name=host_app.EVENTS,
            blob_name=blob_name,
            etag='"0x1"',
        )
        queue.send_message(message.encode())
    wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0)
    assert not records(account, "event", name=f"{host_app.EVENTS}/in/never-written.bin")


def test_queue_message_processed_and_deleted(host: LocalHost, account: StorageAccount) -> None:
    body = f"hello-{uuid.uuid4()}"
    sent = account.queue(host_app.WORK_QUEUE).send_message(encode(body))
    calls = wait_for(lambda: records(account, "queue", body=body))
    assert calls[0]["dequeue_count"] == 1 and calls[0]["id"] == sent.id
    queue = account.queue(host_app.WORK_QUEUE)
    wait_for(lambda: all(message.id != sent.id for message in queue.peek_messages(max_messages=32)))
    wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0)


def poison_contents(account: StorageAccount) -> list[str]:
    poison = account.queue(f"{host_app.WORK_QUEUE}-poison")
    return [message.content for message in poison.peek_messages(max_messages=32)]


def test_failing_message_dequeued_five_times_then_poisoned(host: LocalHost, account: StorageAccount) -> None:
    account.queue(host_app.WORK_QUEUE).send_message(encode("boom"))
    wait_for(lambda: encode("boom") in poison_contents(account))
    calls = records(account, "queue", body="boom")
    assert sorted(call["dequeue_count"] for call in calls) == [1, 2, 3, 4, 5]


def test_message_that_is_not_base64_goes_to_poison(host: LocalHost, account: StorageAccount) -> None:
    garbage = f"not base64! {uuid.uuid4()}"
    account.queue(host_app.WORK_QUEUE).send_message(garbage)
    wait_for(lambda: garbage in poison_contents(account))
    assert not records(account, "queue", body=garbage)
    body = f"after-{uuid.uuid4()}"
    account.queue(host_app.WORK_QUEUE).send_message(encode(body))
    wait_for(lambda: records(account, "queue", body=body))


def test_timer_fires_every_second(host: LocalHost, account: StorageAccount) -> None:
    wait_for(lambda: len(records(account, "timer")) >= 2, timeout=5)


def test_job_launched_for_a_message_and_not_for_an_empty_queue(
    host: LocalHost, account: StorageAccount, markers: Path
) -> None:
    account.queue(IDLE_QUEUE)
    account.queue(JOB_QUEUE).send_message("train project 42")
    marker = markers / JOB_QUEUE
    wait_for(marker.exists, timeout=20)
    assert marker.read_text() == "train project 42"
    wait_for(lambda: account.queue(JOB_QUEUE).get_queue_properties().approximate_message_count == 0)
    assert not (markers / IDLE_QUEUE).exists()


def test_a_standby_job_is_started_before_its_message_and_replaced_after_it(
    host: LocalHost, markers: Path, account: StorageAccount
) -> None:
    notes = markers / STANDBY_QUEUE
    wait_for(lambda: notes.exists() and "started" in notes.read_text(), timeout=20)
    sent_at = time.time()
    account.queue(STANDBY_QUEUE).send_message("train project 7")
    taker = wait_for(lambda: [line.split()[1] for line in notes.read_text().splitlines() if "took" in line])
    started = {
        line.split()[1]: float(line.split()[2])
        for line in notes.read_text().splitlines()
        if "started" in line
    }
    assert started[taker[0]] < sent_at, "the message went to an execution started for it, not to the standby"
    assert taker == [taker[0]] and notes.read_text().count(" train project 7") == 1
    wait_for(lambda: notes.read_text().splitlines()[-1].startswith("started"), timeout=20)  # the next standby


def test_admin_api_runs_a_timer_function_on_demand(host: LocalHost, account: StorageAccount) -> None:
    """`POST /admin/functions/{name}` with the master key, as the Functions host serves it: 202 and the function
    runs; the name matches in any case."""
    response = httpx.post(
        f"{host.url}/admin/functions/Yearly", headers={"x-functions-key": MASTER_KEY}, json={"input": ""}
    )
    assert response.status_code == 202
    [call] = wait_for(lambda: records(account, "yearly"))
    assert call["past_due"] is False


def test_admin_api_runs_a_queue_function_with_the_input(host: LocalHost, account: StorageAccount) -> None:
    text = f"on demand {uuid.uuid4()}"
    response = httpx.post(
        f"{host.url}/admin/functions/on_work", params={"code": MASTER_KEY}, json={"input": text}
    )
    assert response.status_code == 202
    wait_for(lambda: records(account, "queue", body=text))


def test_admin_api_runs_a_blob_function_on_the_blob_named(host: LocalHost, account: StorageAccount) -> None:
    """The input is `{container}/{blob name}`: a blob its trigger already processed runs again on demand (the
    way to re-ingest an upload); a missing blob or a path without a container fails that run, logged, and runs
    nothing."""
    name = f"again-{uuid.uuid4().hex}.bin"
    path = f"{host_app.UPLOADS}/{name}"
    account.container(host_app.UPLOADS).upload_blob(name, b"seer")
    wait_for(lambda: records(account, "blob", name=path))
    missing = f"{host_app.UPLOADS}/missing-{uuid.uuid4().hex}"
    for input_ in (missing, "no-container", path):
        response = httpx.post(
            f"{host.url}/admin/functions/on_upload",
            headers={"x-functions-key": MASTER_KEY},
            json={"input": input_},
        )
        assert response.status_code == 202
    wait_for(lambda: len(records(account, "blob", name=path)) == 2)
    assert not records(account, "blob", name=missing)


@pytest.mark.parametrize(
    ("name", "headers", "status"),
    [
        ("yearly", {}, 401),
        ("yearly", {"x-functions-key": "not the key"}, 401),
        ("no_such_function", {"x-functions-key": "not the key"}, 401),
        ("no_such_function", {"x-functions-key": MASTER_KEY}, 404),
        ("http_app_func", {"x-functions-key": MASTER_KEY}, 404),
    ],
)
def test_admin_api_refuses(host: LocalHost, name: str, headers: dict[str, str], status: int) -> None:
    """The key is checked first, so an unknown name is 401 without it and 404 with it; HTTP functions are not
    run this way."""
    response = httpx.post(f"{host.url}/admin/functions/{name}", headers=headers, json={"input": ""})
    assert response.status_code == status


def test_admin_api_without_a_master_key_refuses_everything() -> None:
    function = FunctionInfo("tick", {"type": "timerTrigger", "name": "timer"}, lambda timer: None, None)
    admin = AdminFunctions([function], master_key=None)
    try:
        response = TestClient(admin).post("/admin/functions/tick", headers={"x-functions-key": ""}, json={})
        assert response.status_code == 401
    finally:
        admin.close()
