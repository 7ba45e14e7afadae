"""Resolve a binding's `connection` setting name to a storage connection string, as the real host does."""

from __future__ import annotations

import logging
import os

from pipeline.core.settings import dev_storage_connection_string, get_settings

log = logging.getLogger(__name__)

DEFAULT_CONNECTION = "AzureWebJobsStorage"
DEVELOPMENT_STORAGE = "usedevelopmentstorage=true"
# The settings of an identity-based connection (`NAME__accountName`, ...), which the real host accepts instead.
IDENTITY_SETTINGS = ("accountName", "serviceUri", "blobServiceUri", "queueServiceUri", "tableServiceUri")


def is_development_storage(value: str) -> bool:
    """True for the `UseDevelopmentStorage=true` shorthand, which means Azurite on its default ports."""
    return value.strip().rstrip(";").lower() == DEVELOPMENT_STORAGE


def resolve_connection_string(setting_name: str | None) -> str:
    """Look the setting up as `NAME`, then `AzureWebJobsNAME`; an empty name means AzureWebJobsStorage.

    A name with no setting at all falls back to AzureWebJobsStorage, with a warning: locally one Azurite holds
    everything, as Seer's own settings fall back to AzureWebJobsStorage when SEER_DATA__accountName is absent. (The
    real host refuses such a function.) Identity-based settings are refused: the local host needs a key.
    """
    name = setting_name or DEFAULT_CONNECTION
    value = os.environ.get(name) or os.environ.get(f"AzureWebJobs{name}")
    if not value and name == DEFAULT_CONNECTION:
        value = get_settings().storage_connection_string
    if not value:
        identity = [f"{name}__{key}" for key in IDENTITY_SETTINGS if f"{name}__{key}" in os.environ]
        if identity:
            raise ValueError(
                f"connection {name!r} is identity-based ({identity[0]}); the local host needs a connection "
                f"string in {name} or AzureWebJobs{name}"
            )
        log.warning(
            "connection setting %r is not set (nor AzureWebJobs%s); using %s", name, name, DEFAULT_CONNECTION
        )
        return resolve_connection_string(DEFAULT_CONNECTION)
    return dev_storage_connection_string() if is_development_storage(value) else value
