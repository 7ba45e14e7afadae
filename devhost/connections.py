"""Resolve a binding's `connection` setting name to a storage connection string, as the real host does."""

from __future__ import annotations

import os

from pipeline.core.settings import dev_storage_connection_string, get_settings

DEFAULT_CONNECTION = "AzureWebJobsStorage"
DEVELOPMENT_STORAGE = "usedevelopmentstorage=true"


def is_development_storage(value: str) -> bool:
    """True for the `UseDevelopmentStorage=true` shorthand, which means Azurite on its default ports."""
    return value.strip().rstrip(";").lower() == DEVELOPMENT_STORAGE


def resolve_connection_string(setting_name: str | None) -> str:
    """Look the setting up as `NAME`, then `AzureWebJobsNAME`; an empty name means AzureWebJobsStorage."""
    name = setting_name or DEFAULT_CONNECTION
    value = os.environ.get(name) or os.environ.get(f"AzureWebJobs{name}")
    if not value and name == DEFAULT_CONNECTION:
        value = get_settings().storage_connection_string
    if not value:
        raise ValueError(f"connection setting {name!r} is not set (nor AzureWebJobs{name})")
    return dev_storage_connection_string() if is_development_storage(value) else value
