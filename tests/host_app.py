"""A small Functions app for the local host's tests: one trigger of each kind (blob with both sources), each call
recorded in a table.

Names carry a per-session suffix so tests sharing the session's Azurite never see each other's data.
"""

from __future__ import annotations

import uuid

import azure.functions as func
from fastapi import FastAPI

from pipeline.store import get_storage

SUFFIX = uuid.uuid4().hex[:8]
UPLOADS = f"lh-uploads-{SUFFIX}"
EVENTS = f"lh-events-{SUFFIX}"
WORK_QUEUE = f"lh-work-{SUFFIX}"
RECORDS_TABLE = f"lhrecords{SUFFIX}"

api = FastAPI()


@api.get("/api/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}


app = func.AsgiFunctionApp(app=api, http_auth_level=func.AuthLevel.ANONYMOUS)


def record(kind: str, **fields: object) -> None:
    """One row per invocation, so tests can count calls and read what the function was given."""
    entity = {"PartitionKey": kind, "RowKey": uuid.uuid4().hex, **fields}
    get_storage().table(RECORDS_TABLE).create_entity(entity)


@app.function_name("on_upload")
@app.blob_trigger(arg_name="upload", path=UPLOADS + "/{name}", connection="AzureWebJobsStorage")
def on_upload(upload: func.InputStream) -> None:
    data = upload.read()
    record("blob", name=upload.name, length=upload.length, size=len(data), uri=upload.uri)
    if "fail" in upload.name:
        raise RuntimeError(f"refusing {upload.name}")


@app.function_name("on_event")
@app.blob_trigger(
    arg_name="blob", path=EVENTS + "/in/{name}", connection="LH_DATA", source=func.BlobSource.EVENT_GRID
)
def on_event(blob: func.InputStream) -> None:
    """Event Grid source; LH_DATA is not set, so locally it is the host's storage (AzureWebJobsStorage)."""
    data = blob.read()
    record("event", name=blob.name, size=len(data))
    if "fail" in (blob.name or ""):
        raise RuntimeError(f"refusing {blob.name}")


@app.function_name("on_work")
@app.queue_trigger(arg_name="message", queue_name=WORK_QUEUE, connection="AzureWebJobsStorage")
def on_work(message: func.QueueMessage) -> None:
    body = message.get_body()
    record("queue", body=body.decode("utf-8"), dequeue_count=message.dequeue_count, id=message.id)
    if body == b"boom":
        raise RuntimeError("boom")


@app.function_name("every_second")
@app.timer_trigger(arg_name="timer", schedule="* * * * * *")
def every_second(timer: func.TimerRequest) -> None:
    record("timer", past_due=timer.past_due)


@app.function_name("yearly")
@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *")
def yearly(timer: func.TimerRequest) -> None:
    """Due once a year: it runs in the tests only when asked for through the admin API."""
    record("yearly", past_due=timer.past_due)
