"""Session fixtures: a real Azurite, the app on it, and a live HTTP server for the official SDK."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient

from pipeline.api.app import create_app
from pipeline.settings import Settings
from pipeline.store import StorageAccount
from tests.azurite import free_port, running_azurite

TRAINING_KEY = "test-training-key"
PREDICTION_KEY = "test-prediction-key"


@pytest.fixture(scope="session")
def storage_connection_string() -> Iterator[str]:
    with running_azurite() as connection_string:
        yield connection_string


@pytest.fixture(scope="session")
def settings(storage_connection_string: str) -> Settings:
    return Settings(
        storage_connection_string=storage_connection_string,
        training_key=TRAINING_KEY,
        prediction_key=PREDICTION_KEY,
        allow_private_urls=True,
    )


@pytest.fixture(scope="session", autouse=True)
def _process_settings(settings: Settings, storage_connection_string: str) -> Iterator[None]:
    """Point code that reads the process settings (triggers, the local host) at the test Azurite."""
    from pipeline.settings import get_settings
    from pipeline.store import get_storage

    patch = pytest.MonkeyPatch()
    patch.setenv("AzureWebJobsStorage", storage_connection_string)
    patch.setenv("SEER_TRAINING_KEY", TRAINING_KEY)
    patch.setenv("SEER_PREDICTION_KEY", PREDICTION_KEY)
    patch.setenv("SEER_ALLOW_PRIVATE_URLS", "true")
    get_settings.cache_clear()
    get_storage.cache_clear()
    yield
    patch.undo()
    get_settings.cache_clear()
    get_storage.cache_clear()


@pytest.fixture(scope="session")
def account(settings: Settings) -> StorageAccount:
    return StorageAccount(settings.connection_string)


@pytest.fixture(scope="session")
def app(settings: Settings, account: StorageAccount):
    return create_app(settings, account)


@pytest.fixture()
def client(app) -> TestClient:
    """An in-process client for the real app (real Azurite underneath), with the training key set."""
    return TestClient(app, headers={"Training-Key": TRAINING_KEY})


@pytest.fixture(scope="session")
def live_url(app) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, for real HTTP clients such as the SDK."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def trainer(live_url: str):
    """The official Custom Vision training client, pointed at Seer."""
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from msrest.authentication import ApiKeyCredentials

    return CustomVisionTrainingClient(live_url, ApiKeyCredentials(in_headers={"Training-key": TRAINING_KEY}))


@pytest.fixture()
def project(client: TestClient) -> dict:
    """A fresh classification project (unique name) created through the API."""
    response = client.post("/customvision/v3.3/training/projects", params={"name": f"test-{uuid.uuid4()}"})
    assert response.status_code == 200, response.text
    return response.json()
