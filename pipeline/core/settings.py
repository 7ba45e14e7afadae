"""Service settings, read from the environment (Functions app settings on Azure, env vars locally)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Seer's documented development keys, used only when bound to loopback with no key configured.
DEV_TRAINING_KEY = "seer-dev-training-key"
DEV_PREDICTION_KEY = "seer-dev-prediction-key"

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def dev_storage_connection_string(
    host: str = "127.0.0.1", blob: int = 10000, queue: int = 10001, table: int = 10002
) -> str:
    """The full connection string for Azurite; the SDKs do not all understand `UseDevelopmentStorage=true`."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{DEV_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{DEV_ACCOUNT};"
    )


@dataclass(frozen=True)
class StorageIdentity:
    """Seer's data account reached with Azure AD instead of a key: the service endpoints and, for a user-assigned
    managed identity, its client id (None: DefaultAzureCredential's own choice)."""

    account_name: str
    blob_uri: str
    queue_uri: str
    table_uri: str
    client_id: str | None = None

    @classmethod
    def for_account(
        cls,
        account_name: str,
        *,
        blob_uri: str | None = None,
        queue_uri: str | None = None,
        table_uri: str | None = None,
        client_id: str | None = None,
    ) -> StorageIdentity:
        """Endpoints not given are the public cloud's for the account, as the Functions host derives them."""
        return cls(
            account_name,
            blob_uri or f"https://{account_name}.blob.core.windows.net",
            queue_uri or f"https://{account_name}.queue.core.windows.net",
            table_uri or f"https://{account_name}.table.core.windows.net",
            client_id,
        )


def _data(name: str) -> AliasChoices:
    """A `SEER_DATA__*` setting: the Functions host's identity-based connection names for a connection called
    SEER_DATA, so the blob trigger and Seer's own code read the same app settings."""
    return AliasChoices(f"SEER_DATA__{name}")


TrainingDeviceChoice = Literal["auto", "cpu", "cuda"]


class Settings(BaseSettings):
    """Everything configurable. Limits default to Custom Vision's S0 tier."""

    model_config = SettingsConfigDict(env_prefix="SEER_", extra="ignore", populate_by_name=True)

    storage_connection_string: str = Field(
        default="UseDevelopmentStorage=true",
        validation_alias=AliasChoices("AzureWebJobsStorage", "SEER_STORAGE_CONNECTION_STRING"),
    )
    # Identity-based access to the data account (Azure AD; no key anywhere): an account name selects it, and then
    # `storage_connection_string` is only the Functions host's own storage. The URIs default to the public cloud's.
    data_account_name: str | None = Field(default=None, validation_alias=_data("accountName"))
    data_blob_service_uri: str | None = Field(default=None, validation_alias=_data("blobServiceUri"))
    data_queue_service_uri: str | None = Field(default=None, validation_alias=_data("queueServiceUri"))
    data_table_service_uri: str | None = Field(default=None, validation_alias=_data("tableServiceUri"))
    data_client_id: str | None = Field(default=None, validation_alias=_data("clientId"))
    training_key: str | None = None
    prediction_key: str | None = None
    bind_host: str = "127.0.0.1"

    max_training_image_bytes: int = 6 * 1024 * 1024
    max_prediction_image_bytes: int = 4 * 1024 * 1024
    min_image_side: int = 256
    max_image_side: int = 10240
    max_image_pixels: int = 10240 * 10240
    stored_image_max_side: int = 1600
    thumbnail_max_side: int = 256
    # Bytes all image decodes in the process may hold at once (the largest allowed image needs about 600 MiB),
    # and how long a decode waits for its share before answering 503.
    decode_memory_budget_bytes: int = 1024 * 1024 * 1024
    decode_wait_seconds: float = 10.0
    max_images_per_batch: int = 64
    max_tags_per_project: int = 500
    max_images_per_project: int = 100_000
    max_regions_per_image: int = 300
    # Request bodies (pipeline/api/body_limit.py). Image uploads: the largest legitimate one is CreateImagesFromFiles
    # with 64 images of 6 MiB as base64 (64 x 8 MiB), plus 8 MiB for names, regions and framing. Every other
    # request: a 4 MiB prediction or quick-test image with its multipart framing, far more than any JSON batch needs.
    max_request_bytes: int = 520 * 1024 * 1024
    max_other_request_bytes: int = 8 * 1024 * 1024
    min_images_per_tag_classification: int = 5
    min_images_per_tag_detection: int = 15
    max_iterations_per_project: int = 20
    # ImportProject runs within its request (services.project_import): about 52 ms per image on 2 cores
    # (bench/project_import.py), so 2000 images take under two minutes, well inside the 230 s Azure's front end
    # gives a request. Larger projects move with `python -m pipeline.migrate`.
    max_import_images: int = 2000

    training_queue: str = "training"
    training_visibility_timeout_seconds: int = 120
    training_max_attempts: int = 5
    # Where the training job trains (training_job/device.py): auto takes a CUDA GPU when torch sees one.
    training_device: TrainingDeviceChoice = "auto"
    # The export job's queue (training_job/exports), its visibility timeout (kept extended while a job runs) and
    # the tries before an export is marked Failed.
    export_queue: str = "exports"
    export_visibility_timeout_seconds: int = 120
    export_max_attempts: int = 3
    max_advanced_budget_hours: int = 24
    retrain_min_new_images: int = 10

    # The sweeper (services.sweeper) removes blobs and claims without rows only once they are older than this, so it
    # never races an upload whose row is about to be written; and it stops starting projects after max seconds.
    sweep_grace_seconds: int = 3600
    sweep_max_seconds: float = 600.0

    url_fetch_timeout_seconds: float = 10.0
    allow_private_urls: bool = False
    notification_timeout_seconds: float = 10.0  # posting a training notification to a project's queue
    # The mail server the training job sends TrainProject's notificationEmailAddress messages through (operator
    # configuration, so not subject to the outbound URL policy). No host or no from address: no mail is sent.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_from_address: str | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_timeout_seconds: float = 10.0
    # Requests that fetch image URLs run on their own threads, at most this many at once; one that waits longer than
    # `url_fetch_queue_seconds` for a turn answers 503 (pipeline/api/pools.py).
    max_concurrent_url_fetches: int = 32
    url_fetch_queue_seconds: float = 10.0
    # Decoding, resizing and running models is CPU work: at most this many requests do it at once (0 = two per core),
    # so listing still gets the interpreter between them; one that waits longer than `image_work_queue_seconds`
    # answers 503.
    image_work_threads: int = 0
    image_work_queue_seconds: float = 30.0
    # Threads for every other blocking route (anyio's default is 40): enough that requests stuck on slow storage
    # until their timeout do not hold up the rest.
    http_threads: int = 128
    # FastAPI's own OpenTelemetry spans and metrics for every request, through the process's global providers (an
    # OpenTelemetry distro the deployment configures in the worker). Off unless asked for: even with no provider,
    # looking for one costs the event loop 10 to 25 us a request, next to a compact prediction's 0.25 ms there.
    http_telemetry: bool = False

    # Every storage attempt waits at most this long to connect and for each socket read (not for a whole transfer,
    # so large blobs still work), and is retried `storage_retries` times: a call against dead or frozen storage
    # fails within `StoragePolicy.bound_seconds` (pipeline/store/account.py), about 31 s with these defaults.
    storage_timeout_seconds: float = 10.0
    storage_retries: int = 2
    storage_retry_backoff_seconds: float = 0.5

    model_cache_size: int = 8
    published_cache_seconds: float = 2.0

    @model_validator(mode="after")
    def _data_endpoints_need_an_account(self) -> Settings:
        """Service URIs or a client id without the account name would silently fall back to the connection
        string: refuse that configuration instead."""
        if self.data_account_name is None:
            orphans = [
                name
                for name, value in (
                    ("blobServiceUri", self.data_blob_service_uri),
                    ("queueServiceUri", self.data_queue_service_uri),
                    ("tableServiceUri", self.data_table_service_uri),
                    ("clientId", self.data_client_id),
                )
                if value
            ]
            if orphans:
                names = ", ".join(f"SEER_DATA__{name}" for name in orphans)
                raise ValueError(f"{names} set without SEER_DATA__accountName")
        return self

    @property
    def storage_identity(self) -> StorageIdentity | None:
        """The data account to reach with Azure AD, or None to use the connection string (and its key)."""
        if self.data_account_name is None:
            return None
        return StorageIdentity.for_account(
            self.data_account_name,
            blob_uri=self.data_blob_service_uri,
            queue_uri=self.data_queue_service_uri,
            table_uri=self.data_table_service_uri,
            client_id=self.data_client_id,
        )

    @property
    def connection_string(self) -> str:
        if self.storage_connection_string.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
            return dev_storage_connection_string()
        return self.storage_connection_string

    @property
    def mail_configured(self) -> bool:
        return bool(self.smtp_host and self.smtp_from_address)

    @property
    def on_loopback(self) -> bool:
        return self.bind_host in LOOPBACK_HOSTS

    @property
    def effective_training_key(self) -> str | None:
        if self.training_key:
            return self.training_key
        return DEV_TRAINING_KEY if self.on_loopback else None

    @property
    def effective_prediction_key(self) -> str | None:
        if self.prediction_key:
            return self.prediction_key
        return DEV_PREDICTION_KEY if self.on_loopback else None

    def describe_keys(self) -> list[str]:
        """Start-up lines that say where the keys come from (never the configured keys themselves)."""
        lines = []
        for label, configured, dev in (
            ("training", self.training_key, DEV_TRAINING_KEY),
            ("prediction", self.prediction_key, DEV_PREDICTION_KEY),
        ):
            if configured:
                lines.append(f"{label} key: from settings")
            elif self.on_loopback:
                lines.append(
                    f"{label} key: none configured; using the development key '{dev}' (loopback only)"
                )
            else:
                lines.append(f"{label} key: none configured; every {label} request will be refused")
        return lines


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (an explicit cache; tests call `get_settings.cache_clear()`)."""
    return Settings()
