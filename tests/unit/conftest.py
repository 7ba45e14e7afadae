"""The unit tier runs without Node: nothing here may start Azurite or talk to storage. These fixtures replace the
session's storage-backed ones, so a test that reaches for storage fails at once instead of starting an emulator
(or, through `settings`, connecting to one that is not there)."""

from __future__ import annotations

import pytest

from pipeline.core.settings import Settings
from pipeline.store import StorageAccount

NEEDS_STORAGE = "tests/unit runs without Azurite; a test that needs storage belongs in tests/"


@pytest.fixture(scope="session")
def storage_connection_string() -> str:
    pytest.fail(NEEDS_STORAGE)


@pytest.fixture(scope="session")
def account() -> StorageAccount:
    pytest.fail(NEEDS_STORAGE)


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The defaults: the limits and formats the unit tests check do not depend on storage or keys."""
    return Settings()
