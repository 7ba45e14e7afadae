"""Blob triggers with the real host's semantics: poll the container, receipts by name+ETag, retries, poison."""

from __future__ import annotations

import base64
import enum
import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.functions.blob import InputStream
from azure.storage.blob import BlobProperties

from devhost.app_loader import FunctionInfo
from devhost.invocation import convert_payload, invoke
from devhost.worker import PollingWorker
from pipeline.store import StorageAccount

log = logging.getLogger(__name__)

RECEIPTS_CONTAINER = "azure-webjobs-hosts"
RECEIPTS_DIRECTORY = "blobreceipts"
POISON_QUEUE = "webjobs-blobtrigger-poison"


@dataclass(frozen=True)
class BlobPath:
    """A trigger path such as `uploads/{name}`: the container, and a pattern whose {params} may span slashes."""

    container: str
    pattern: re.Pattern[str]
    prefix: str

    @classmethod
    def parse(cls, path: str) -> BlobPath:
        container, _, blob = path.partition("/")
        parts = re.split(r"(\{[^{}]+\})", blob or "{name}")
        regex = "".join(".+?" if part.startswith("{") else re.escape(part) for part in parts)
        return cls(container=container, pattern=re.compile(regex), prefix=parts[0])

    def matches(self, blob_name: str) -> bool:
        return self.pattern.fullmatch(blob_name) is not None


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # changed or deleted since it was listed: the next poll sees its new state


@dataclass(frozen=True)
class Candidate:
    """A listed blob version. The ETag is in its header form (quoted), as the real host writes it in receipts
    and poison messages; listings return it bare.
    """

    name: str
    etag: str
    blob_type: str

    @classmethod
    def of(cls, blob: BlobProperties) -> Candidate:
        etag = blob.etag if blob.etag.startswith('"') else f'"{blob.etag}"'
        return cls(name=blob.name, etag=etag, blob_type=blob.blob_type.value)


@dataclass(frozen=True)
class _Failure:
    count: int
    retry_at: float


class BlobTriggerDispatcher(PollingWorker):
    """Processes each blob version (name+ETag) once, like the real host's scan plus its internal retry queue.

    A failing blob is tried `max_dequeue_count` times in all, `retry_delay` apart (host.json's queue settings,
    which the real host also applies to blobs); then a message goes to `webjobs-blobtrigger-poison` and a
    receipt is written so the blob is left alone until it changes.
    """

    def __init__(
        self,
        function: FunctionInfo,
        account: StorageAccount,
        *,
        host_id: str,
        max_dequeue_count: int,
        retry_delay: float,
        batch_size: int,
        poll_interval: float,
    ) -> None:
        super().__init__(f"blob:{function.name}")
        self._function = function
        self._account = account
        self._path = BlobPath.parse(function.trigger["path"])
        self._receipt_prefix = f"{RECEIPTS_DIRECTORY}/{host_id}/{function.full_name}/"
        self._max_dequeue_count = max_dequeue_count
        self._retry_delay = retry_delay
        self._poll_interval = poll_interval
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._executor = ThreadPoolExecutor(max_workers=batch_size, thread_name_prefix=self.name)

    def receipt_name(self, blob_name: str, etag: str) -> str:
        """Where the real host keeps the receipt: the ETag before the name, since names contain slashes."""
        return f"{self._receipt_prefix}{etag}/{self._path.container}/{blob_name}"

    def poll(self) -> float:
        done = self._receipts()
        now = time.monotonic()
        seen: set[tuple[str, str]] = set()
        due: list[Candidate] = []
        container = self._account.container(self._path.container)
        for blob in container.list_blobs(name_starts_with=self._path.prefix or None):
            candidate = Candidate.of(blob)
            key = (candidate.etag, candidate.name)
            if key in done or not self._path.matches(candidate.name):
                continue
            seen.add(key)
            failure = self._failures.get(key)
            if failure is None or failure.retry_at <= now:
                due.append(candidate)
        self._failures = {key: failure for key, failure in self._failures.items() if key in seen}
        for blob, outcome in zip(due, self._executor.map(self._process, due), strict=True):
            if outcome is Outcome.FAILED:
                self._failed(blob)
        return self._poll_interval

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _receipts(self) -> set[tuple[str, str]]:
        """(ETag, blob name) of every completed receipt; listed each poll so a deleted receipt forces a rerun."""
        done = set()
        receipts = self._account.container(RECEIPTS_CONTAINER)
        for item in receipts.list_blobs(name_starts_with=self._receipt_prefix, include=["metadata"]):
            if (item.metadata or {}).get("Incomplete"):
                continue
            etag, _, rest = item.name[len(self._receipt_prefix) :].partition("/")
            container, _, blob_name = rest.partition("/")
            if container == self._path.container and blob_name:
                done.add((etag, blob_name))
        return done

    def _process(self, blob: Candidate) -> Outcome:
        container = self._path.container
        client = self._account.container(container).get_blob_client(blob.name)
        try:
            downloader = client.download_blob(etag=blob.etag, match_condition=MatchConditions.IfNotModified)
            data = downloader.readall()
        except (ResourceModifiedError, ResourceNotFoundError):
            log.debug(
                "%s: %s changed or vanished before it was read; the next poll sees it", self.name, blob.name
            )
            return Outcome.SKIPPED
        properties = downloader.properties
        stream = InputStream(
            data=data,
            name=f"{container}/{blob.name}",
            uri=client.url,
            length=properties.size,
            blob_properties={
                "ContentLength": properties.size,
                "ContentType": properties.content_settings.content_type,
                "ETag": properties.etag,
                "LastModified": properties.last_modified.isoformat() if properties.last_modified else None,
                "BlobType": properties.blob_type.value,
            },
            metadata=dict(properties.metadata or {}),
        )
        try:
            invoke(
                self._function,
                convert_payload(self._function, data, stream),
                reason=f"New blob detected({container}/{blob.name})",
            )
        except Exception:
            return Outcome.FAILED
        self._write_receipt(blob)
        return Outcome.SUCCEEDED

    def _failed(self, blob: Candidate) -> None:
        key = (blob.etag, blob.name)
        previous = self._failures.get(key)
        count = (previous.count if previous else 0) + 1
        if count < self._max_dequeue_count:
            self._failures[key] = _Failure(count, time.monotonic() + self._retry_delay)
            log.warning("%s: %s failed (try %d of %d)", self.name, blob.name, count, self._max_dequeue_count)
            return
        log.error("%s: %s failed %d times; moving it to %s", self.name, blob.name, count, POISON_QUEUE)
        self._send_poison_message(blob)
        self._write_receipt(blob)
        self._failures.pop(key, None)

    def _write_receipt(self, blob: Candidate) -> None:
        receipts = self._account.container(RECEIPTS_CONTAINER)
        receipts.upload_blob(self.receipt_name(blob.name, blob.etag), b"", overwrite=True)

    def _send_poison_message(self, blob: Candidate) -> None:
        """The real host's BlobTriggerMessage JSON, base64-encoded like all its queue messages."""
        payload = {
            "Type": "BlobTrigger",
            "FunctionId": self._function.full_name,
            "BlobType": blob.blob_type,
            "ContainerName": self._path.container,
            "BlobName": blob.name,
            "ETag": blob.etag,
        }
        encoded = base64.b64encode(json.dumps(payload).encode("utf-8")).decode("ascii")
        self._account.queue(POISON_QUEUE).send_message(encoded)
