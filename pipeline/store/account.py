"""Clients for one storage account (Azurite locally, a Storage account on Azure), created once per process.

Access is chosen by the settings: a connection string (its account key authorises every call and signs the SAS
URLs the API hands out), or, when `SEER_DATA__accountName` is set, Azure AD with DefaultAzureCredential and URLs
signed with a user delegation key, so the account can refuse shared keys altogether."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.policies import RetryMode
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, ContainerClient, generate_blob_sas
from azure.storage.blob import LinearRetry as BlobRetry
from azure.storage.queue import LinearRetry as QueueRetry
from azure.storage.queue import QueueClient, QueueServiceClient

from pipeline.core.settings import Settings, StorageIdentity, get_settings
from pipeline.store.connections import environment_options, table_session
from pipeline.store.identity import DelegationKeys, identity_credential
from pipeline.store.queue_watch import QUEUE_WATCH, Listener

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
        `backoff_seconds` apart), and a new session that resends what a closed pooled connection never answered
        (`pipeline.store.connections`): one per call, for one client."""
        return {
            **self._transport(),
            "session": table_session(),
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


def _endpoints(connection: str | StorageIdentity) -> tuple[str, str, str]:
    """The account's table, blob and queue endpoints (a connection string's as its SDKs read it)."""
    if isinstance(connection, StorageIdentity):
        return connection.table_uri, connection.blob_uri, connection.queue_uri
    return (
        TableServiceClient.from_connection_string(connection).url,
        BlobServiceClient.from_connection_string(connection).url,
        QueueServiceClient.from_connection_string(connection).url,
    )


class StorageAccount:
    """Hands out table, container and queue clients, creating each resource the first time it is asked for."""

    def __init__(
        self,
        connection: str | StorageIdentity,
        policy: StoragePolicy | None = None,
        *,
        credential: TokenCredential | None = None,
        **client_options: Any,
    ) -> None:
        """`connection` is a connection string, or an identity-based account reached with `credential` (default:
        DefaultAzureCredential for the identity's client id). `policy` defaults to the process settings'
        (`SEER_STORAGE_*`); `client_options` go to every client (tests trust a self-signed Azurite with
        `connection_verify`)."""
        self.policy = policy or StoragePolicy.from_settings(get_settings())
        table_url, blob_url, queue_url = _endpoints(connection)
        table_environment = environment_options(table_url)

        def tables() -> dict[str, Any]:
            return {**self.policy.table_options(), **table_environment, **client_options}

        blobs = {
            **self.policy.storage_options(BlobRetry),
            **environment_options(blob_url),
            **client_options,
        }
        queues = {
            **self.policy.storage_options(QueueRetry),
            **environment_options(queue_url),
            **client_options,
        }
        if isinstance(connection, StorageIdentity):
            credential = credential or identity_credential(connection.client_id)
            self.tables = TableServiceClient(connection.table_uri, credential=credential, **tables())
            self._new_table_client = lambda name: TableClient(
                connection.table_uri, name, credential=credential, **tables()
            )
            self.blobs = BlobServiceClient(connection.blob_uri, credential=credential, **blobs)
            self.queues = QueueServiceClient(connection.queue_uri, credential=credential, **queues)
            self.account_name = connection.account_name
            self._delegation: DelegationKeys | None = DelegationKeys(self.blobs)
            log.info("storage: account %s with Azure AD (%s)", self.account_name, type(credential).__name__)
        else:
            self.tables = TableServiceClient.from_connection_string(connection, **tables())
            self._new_table_client = lambda name: TableClient.from_connection_string(
                connection, name, **tables()
            )
            self.blobs = BlobServiceClient.from_connection_string(connection, **blobs)
            self.queues = QueueServiceClient.from_connection_string(connection, **queues)
            self.account_name = self.blobs.account_name
            self._delegation = None
        self._ensured: set[str] = set()
        self._table_clients: dict[str, TableClient] = {}
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
        """The table's one client, with a pipeline of its own. Not `TableServiceClient.get_table_client`: that
        re-links the service client's shared policy objects into each new pipeline, and a request passing through
        them meanwhile can meet a half-linked chain (azure-core's "'_SansIOHTTPPolicyRunner' object has no attribute
        'next'", seen with sixteen concurrent tag writes)."""
        self._ensure(f"table:{name}", lambda: self.tables.create_table(name))
        client = self._table_clients.get(name)
        if client is None:
            with self._lock:
                if name not in self._table_clients:
                    self._table_clients[name] = self._new_table_client(name)
                client = self._table_clients[name]
        return client

    def container(self, name: str) -> ContainerClient:
        self._ensure(f"container:{name}", lambda: self.blobs.create_container(name))
        return self.blobs.get_container_client(name)

    def queue(self, name: str) -> QueueClient:
        self._ensure(f"queue:{name}", lambda: self.queues.create_queue(name))
        return self.queues.get_queue_client(name)

    def enqueue(self, name: str, content: str) -> None:
        """Send a message, then tell this process's listeners on the queue (`queue_watch`) to take it now."""
        queue = self.queue(name)
        queue.send_message(content)
        QUEUE_WATCH.announce(queue)

    def on_enqueue(self, name: str, listener: Listener) -> Callable[[], None]:
        """Call `listener` after each message this process sends to the queue; returns the call that stops it."""
        return QUEUE_WATCH.subscribe(self.queues.get_queue_client(name), listener)

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageAccount:
        """The data account the settings name: identity-based when `SEER_DATA__accountName` is set, else the
        connection string."""
        policy = StoragePolicy.from_settings(settings)
        return cls(settings.storage_identity or settings.connection_string, policy)

    @property
    def link_endpoints(self) -> list[str]:
        """Where the links `read_url` signs point (image URIs, exports, ExportProject tokens): users may give them
        back, so downloads from there pass the outbound rules at whatever address (pipeline.core.outbound)."""
        return [self.blobs.url]

    def read_url(self, container: str, blob: str, hours: int = 24) -> str:
        """A time-limited read-only SAS URL, as Custom Vision returns for image URIs: signed with the account key,
        or with a user delegation key when access is identity-based."""
        expiry = datetime.now(UTC) + timedelta(hours=hours)
        if self._delegation is None:
            signer = {"account_key": self.blobs.credential.account_key}
        else:
            signer = {"user_delegation_key": self._delegation.covering(expiry)}
        sas = generate_blob_sas(
            account_name=self.account_name,
            container_name=container,
            blob_name=blob,
            permission=BlobSasPermissions(read=True),
            expiry=expiry,
            **signer,
        )
        return f"{self.blobs.url.rstrip('/')}/{container}/{blob}?{sas}"


@lru_cache(maxsize=1)
def get_storage() -> StorageAccount:
    """The process's storage account (an explicit cache; tests call `get_storage.cache_clear()`), so its user
    delegation key is one per process."""
    return StorageAccount.from_settings(get_settings())
