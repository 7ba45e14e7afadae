"""Clients for one storage account (Azurite locally, a Storage account on Azure), created once per process."""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, ContainerClient, generate_blob_sas
from azure.storage.queue import QueueClient, QueueServiceClient

from pipeline.core.settings import get_settings

log = logging.getLogger(__name__)


class StorageAccount:
    """Hands out table, container and queue clients, creating each resource the first time it is asked for."""

    def __init__(self, connection_string: str) -> None:
        self.connection_string = connection_string
        self.tables = TableServiceClient.from_connection_string(connection_string)
        self.blobs = BlobServiceClient.from_connection_string(connection_string)
        self.queues = QueueServiceClient.from_connection_string(connection_string)
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
