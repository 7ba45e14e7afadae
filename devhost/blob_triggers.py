"""Blob triggers with the default source (LogsAndContainerScan), as the real host runs them on plans that poll:
scan the container, receipts by name+ETag, retries, poison."""

from __future__ import annotations

import enum
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobProperties

from devhost.app_loader import FunctionInfo
from devhost.blob_binding import POISON_QUEUE, BlobPath, BlobTriggerMessage, TriggerBlob, quoted_etag
from devhost.worker import PollingWorker
from pipeline.store import StorageAccount

log = logging.getLogger(__name__)

RECEIPTS_CONTAINER = "azure-webjobs-hosts"
RECEIPTS_DIRECTORY = "blobreceipts"
__all__ = ["POISON_QUEUE", "RECEIPTS_CONTAINER", "BlobTriggerDispatcher"]


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
        return cls(name=blob.name, etag=quoted_etag(blob.etag), blob_type=blob.blob_type.value)


class BlobTriggerDispatcher(PollingWorker):
    """Processes each blob version (name+ETag) once, like the real host's scan plus its internal retry queue.

    A failing blob is tried `poison_blob_threshold` times in all, on the next scans (host.json's
    `blobs.poisonBlobThreshold`); then a message goes to `webjobs-blobtrigger-poison` and a receipt is written so
    the blob is left alone until it changes. At most `parallelism` blobs run at once (`blobs.maxDegreeOfParallelism`).
    """

    def __init__(
        self,
        function: FunctionInfo,
        account: StorageAccount,
        *,
        host_id: str,
        poison_blob_threshold: int,
        parallelism: int,
        poll_interval: float,
    ) -> None:
        super().__init__(f"blob:{function.name}")
        self._function = function
        self._account = account
        self._path = BlobPath.parse(function.trigger["path"])
        self._receipt_prefix = f"{RECEIPTS_DIRECTORY}/{host_id}/{function.full_name}/"
        self._poison_blob_threshold = poison_blob_threshold
        self._poll_interval = poll_interval
        self._failures: dict[tuple[str, str], int] = {}  # (ETag, name) -> failed tries
        self._executor = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix=self.name)

    def receipt_name(self, blob_name: str, etag: str) -> str:
        """Where the real host keeps the receipt: the ETag before the name, since names contain slashes."""
        return f"{self._receipt_prefix}{etag}/{self._path.container}/{blob_name}"

    def poll(self) -> float:
        done = self._receipts()
        due: list[Candidate] = []
        container = self._account.container(self._path.container)
        for blob in container.list_blobs(name_starts_with=self._path.prefix or None):
            candidate = Candidate.of(blob)
            if (candidate.etag, candidate.name) not in done and self._path.matches(candidate.name):
                due.append(candidate)
        listed = {(blob.etag, blob.name) for blob in due}
        self._failures = {key: count for key, count in self._failures.items() if key in listed}
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
        try:
            read = TriggerBlob.read(self._account, self._path.container, blob.name, etag=blob.etag)
        except (ResourceModifiedError, ResourceNotFoundError):
            log.debug(
                "%s: %s changed or vanished before it was read; the next poll sees it", self.name, blob.name
            )
            return Outcome.SKIPPED
        try:
            read.invoke(self._function)
        except Exception:
            return Outcome.FAILED
        self._write_receipt(blob)
        return Outcome.SUCCEEDED

    def _failed(self, blob: Candidate) -> None:
        key = (blob.etag, blob.name)
        count = self._failures.get(key, 0) + 1
        if count < self._poison_blob_threshold:
            self._failures[key] = count
            log.warning(
                "%s: %s failed (try %d of %d)", self.name, blob.name, count, self._poison_blob_threshold
            )
            return
        log.error("%s: %s failed %d times; moving it to %s", self.name, blob.name, count, POISON_QUEUE)
        message = BlobTriggerMessage(
            function_id=self._function.full_name,
            blob_type=blob.blob_type,
            container_name=self._path.container,
            blob_name=blob.name,
            etag=blob.etag,
        )
        self._account.queue(POISON_QUEUE).send_message(message.encode())
        self._write_receipt(blob)
        self._failures.pop(key, None)

    def _write_receipt(self, blob: Candidate) -> None:
        receipts = self._account.container(RECEIPTS_CONTAINER)
        receipts.upload_blob(self.receipt_name(blob.name, blob.etag), b"", overwrite=True)
