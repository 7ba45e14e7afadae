"""Clients for one storage account (Azurite locally, a Storage account on Azure), created once per process."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.policies import RetryMode
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, ContainerClient, generate_blob_sas
from azure.storage.blob import LinearRetry as BlobRetry
from azure.storage.queue import LinearRetry as QueueRetry
from azure.storage.queue import QueueClient, QueueServiceClient

from pipeline.core.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoragePolicy:
    """Timeouts and retries for every storage client, so a call against dead or frozen storage ends within a known
    time instead of the SDKs' defaults (tables: 300 s reads and 10 retries; blobs and queues: 60 s reads and
    back-offs of 15 s and more).

    Each attempt waits at most `timeout_seconds` to connect and for each socket read or write: that bounds a
    stalled transfer, not a long one, so multi-megabyte blobs still move. A failed attempt is retried `retries`
    times, `backoff_seconds` apart.
    """

    timeout_seconds: float
    retries: int
    backoff_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> StoragePolicy:
        return cls(
            settings.storage_timeout_seconds, settings.storage_retries, settings.storage_retry_backoff_seconds
        )

    @property
    def bound_seconds(self) -> float:
        """How long one call may take before it raises when storage accepts connections but never answers (a frozen
        process: the kernel still completes the handshake) or refuses them (a stopped one). A host that silently
        drops connection attempts can add one more timeout per attempt."""
        return (self.retries + 1) * self.timeout_seconds + self.retries * self.backoff_seconds

    def _transport(self) -> dict[str, Any]:
        return {"connection_timeout": self.timeout_seconds, "read_timeout": self.timeout_seconds}

    def table_options(self) -> dict[str, Any]:
        """azure-data-tables takes azure-core's retry settings (Fixed mode: the first retry at once, then
        `backoff_seconds` apart)."""
        return {
            **self._transport(),
            "retry_total": self.retries,
            "retry_connect": self.retries,
            "retry_read": self.retries,
            "retry_status": self.retries,
            "retry_mode": RetryMode.Fixed,
            "retry_backoff_factor": self.backoff_seconds,
            "retry_backoff_max": self.backoff_seconds,
        }

    def storage_options(self, retry: type[BlobRetry] | type[QueueRetry]) -> dict[str, Any]:
        """azure-storage-blob and -queue take a retry policy object of their own package."""
        policy = retry(backoff=self.backoff_seconds, retry_total=self.retries, random_jitter_range=0)  # type: ignore[arg-type]
        return {**self._transport(), "retry_policy": policy}


class StorageAccount:
    """Hands out table, container and queue clients, creating each resource the first time it is asked for."""

    def __init__(self, connection_string: str, policy: StoragePolicy | None = None) -> None:
        """`policy` defaults to the process settings' (`SEER_STORAGE_*`)."""
        self.connection_string = connection_string
        self.policy = policy or StoragePolicy.from_settings(get_settings())
        self.tables = TableServiceClient.from_connection_string(
            connection_string, **self.policy.table_options()
        )
        self.blobs = BlobServiceClient.from_connection_string(
            connection_string, **self.policy.storage_options(BlobRetry)
        )
        self.queues = QueueServiceClient.from_connection_string(
            connection_string, **self.policy.storage_options(QueueRetry)
        )
        self._ensured: set[str] = set()
        self._lock = threading.Lock()

    def _ensure(self, key: str, create) -> None:
        if key in self._ensured:
            return
        with self._lock:
            if key in self._ensured:
                return
            with contextlib.suppress(ResourceExistsError):
                create()
            self._ensured.add(key)

    def table(self, name: str) -> TableClient:
        self._ensure(f"table:{name}", lambda: self.tables.create_table(name))
        return self.tables.get_table_client(name)

    def container(self, name: str) -> ContainerClient:
        self._ensure(f"container:{name}", lambda: self.blobs.create_container(name))
        return self.blobs.get_container_client(name)

    def queue(self, name: str) -> QueueClient:
        self._ensure(f"queue:{name}", lambda: self.queues.create_queue(name))
        return self.queues.get_queue_client(name)

    def read_url(self, container: str, blob: str, hours: int = 24) -> str:
        """A time-limited read-only SAS URL, as Custom Vision returns for image URIs."""
        credential = self.blobs.credential
        sas = generate_blob_sas(
            account_name=self.blobs.account_name,
            container_name=container,
            blob_name=blob,
            account_key=credential.account_key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(UTC) + timedelta(hours=hours),
        )
        return f"{self.blobs.url.rstrip('/')}/{container}/{blob}?{sas}"


@lru_cache(maxsize=1)
def get_storage() -> StorageAccount:
    """The process's storage account (an explicit cache; tests call `get_storage.cache_clear()`)."""
    return StorageAccount(get_settings().connection_string)
