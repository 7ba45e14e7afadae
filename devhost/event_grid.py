"""The Event Grid side of a blob trigger with `source="EventGrid"`: the storage account's system topic and the
subscription that delivers its BlobCreated events to the host's blob extension webhook.

Azurite has no Event Grid, so the topic is emulated: new blob versions are found by listing the container, and what
was published is checkpointed in the host's storage, so a restart publishes only what changed meanwhile (Event Grid
keeps retrying events raised while the app is down). With no checkpoint yet, every blob already there is published,
as if the subscription had always existed. Delivery is what Event Grid does: a validation handshake first, then one
HTTP POST per event (the default batch of one) in the Event Grid schema, at least once.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobProperties
from pydantic import BaseModel, ConfigDict, Field

from devhost.app_loader import FunctionInfo
from devhost.worker import PollingWorker
from pipeline.store import StorageAccount

log = logging.getLogger(__name__)

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
CHECKPOINT_CONTAINER = "azure-webjobs-hosts"
# Versions modified this long before the newest one seen are listed again each round, so a blob whose commit became
# visible after a later one was listed is still published once.
LOOKBACK = timedelta(seconds=5)


class EventGridEvent(BaseModel):
    """One event in the Event Grid schema (what the webhook receives, as a JSON array)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    topic: str = ""
    subject: str = ""
    event_type: str = Field(alias="eventType")
    event_time: datetime = Field(default_factory=lambda: datetime.now(UTC), alias="eventTime")
    data: dict[str, Any] = Field(default_factory=dict)
    data_version: str = Field(default="", alias="dataVersion")
    metadata_version: str = Field(default="1", alias="metadataVersion")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class BlobCreatedData(BaseModel):
    """The `data` of Microsoft.Storage.BlobCreated; the ETag is bare, as Event Grid sends it."""

    model_config = ConfigDict(populate_by_name=True)

    api: str = "PutBlob"
    e_tag: str = Field(alias="eTag")
    content_type: str | None = Field(default=None, alias="contentType")
    content_length: int = Field(alias="contentLength")
    blob_type: str = Field(alias="blobType")
    url: str
    sequencer: str = ""


class Checkpoint(BaseModel):
    """What the emulated topic has published: the newest modification time seen, and the versions (name to ETag)
    modified within LOOKBACK of it."""

    watermark: datetime | None = None
    recent: dict[str, str] = Field(default_factory=dict)


def blob_created(account: StorageAccount, container: str, blob: BlobProperties) -> EventGridEvent:
    """The event Azure Storage raises when `blob` is written."""
    data = BlobCreatedData(
        e_tag=blob.etag.strip('"'),
        content_type=blob.content_settings.content_type,
        content_length=blob.size,
        blob_type=blob.blob_type.value,
        url=account.container(container).get_blob_client(blob.name).url,
        sequencer=f"{int(blob.last_modified.timestamp() * 1_000_000):032x}",
    )
    return EventGridEvent(
        topic=f"/providers/Microsoft.Storage/storageAccounts/{account.container(container).account_name}",
        subject=f"/blobServices/default/containers/{container}/blobs/{blob.name}",
        event_type=BLOB_CREATED,
        event_time=blob.last_modified,
        data=data.model_dump(by_alias=True),
    )


class BlobCreatedTopic:
    """One container's BlobCreated events under a name prefix, found by listing and checkpointed by name."""

    def __init__(
        self, account: StorageAccount, container: str, prefix: str, checkpoints: StorageAccount, name: str
    ) -> None:
        self._account = account
        self._container = container
        self._prefix = prefix
        self._checkpoint_blob = checkpoints.container(CHECKPOINT_CONTAINER).get_blob_client(name)
        self._published: Checkpoint | None = None

    def pending(self) -> tuple[list[EventGridEvent], Checkpoint]:
        """Events for versions not yet published, oldest first, and the checkpoint once they are delivered."""
        published = self._load()
        floor = published.watermark - LOOKBACK if published.watermark else None
        listed = list(
            self._account.container(self._container).list_blobs(name_starts_with=self._prefix or None)
        )
        new = [
            blob
            for blob in listed
            if (floor is None or blob.last_modified >= floor) and published.recent.get(blob.name) != blob.etag
        ]
        newest = max(
            [b.last_modified for b in listed] + ([published.watermark] if published.watermark else []),
            default=None,
        )
        after = Checkpoint(
            watermark=newest,
            recent={b.name: b.etag for b in listed if newest and b.last_modified >= newest - LOOKBACK},
        )
        new.sort(key=lambda blob: blob.last_modified)
        return [blob_created(self._account, self._container, blob) for blob in new], after

    def commit(self, checkpoint: Checkpoint) -> None:
        if checkpoint != self._published:
            self._checkpoint_blob.upload_blob(checkpoint.model_dump_json(), overwrite=True)
            self._published = checkpoint

    def _load(self) -> Checkpoint:
        if self._published is None:
            try:
                self._published = Checkpoint.model_validate_json(
                    self._checkpoint_blob.download_blob().readall()
                )
            except ResourceNotFoundError:
                self._published = Checkpoint()
        return self._published


class EventGridSubscription(PollingWorker):
    """The subscription that feeds one Event Grid blob trigger: BlobCreated events under the trigger path's container
    and fixed prefix, POSTed to the host's blob extension webhook for that function."""

    def __init__(
        self, function: FunctionInfo, topic: BlobCreatedTopic, endpoint: str, *, poll_interval: float
    ) -> None:
        super().__init__(f"eventgrid:{function.name}")
        self._topic = topic
        self._endpoint = endpoint
        self._poll_interval = poll_interval
        self._client = httpx.Client(timeout=30.0)
        self._validated = False

    def poll(self) -> float:
        if not self._validated:
            self._validate()
        events, checkpoint = self._topic.pending()
        for event in events:
            self._post("Notification", [event])
        self._topic.commit(checkpoint)
        return self._poll_interval

    def close(self) -> None:
        self._client.close()

    def _validate(self) -> None:
        """Event Grid's handshake: the endpoint must echo the validation code before any event is delivered."""
        code = str(uuid.uuid4())
        event = EventGridEvent(event_type=SUBSCRIPTION_VALIDATION, data={"validationCode": code})
        answer = self._post("SubscriptionValidation", [event]).json()
        if answer.get("validationResponse") != code:
            raise RuntimeError(f"{self._endpoint} did not validate the subscription: {answer!r}")
        self._validated = True
        log.info("%s: subscription validated by %s", self.name, self._endpoint)

    def _post(self, kind: str, events: list[EventGridEvent]) -> httpx.Response:
        response = self._client.post(
            self._endpoint,
            json=[event.wire() for event in events],
            headers={
                "aeg-event-type": kind,
                "aeg-subscription-name": self.name.upper(),
                "aeg-delivery-count": "0",
            },
        )
        response.raise_for_status()
        return response
