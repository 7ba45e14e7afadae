"""Session fixtures: a real Azurite, the app on it, and a live HTTP server for the official SDK."""

from __future__ import annotations

import base64
import contextlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient
from fastapi.testclient import TestClient

from devhost.azurite import running_azurite
from devhost.ports import free_port
from pipeline.api.app import create_app
from pipeline.core.settings import DEV_ACCOUNT, DEV_ACCOUNT_KEY, Settings, get_settings
from pipeline.store import StorageAccount, StoragePolicy, get_storage
from tests.conformance import Tally
from tests.images import detection_scene, jpeg, pattern_image
from tests.queues import sas_queue
from tests.serving import QuietHandler, handler_served, served

TRAINING_KEY = "test-training-key"
PREDICTION_KEY = "test-prediction-key"
MASTER_KEY = uuid.uuid4().hex  # the `service` host's admin key (POST /admin/functions/{name})
# A second account on the tests' Azurite, standing for a user's own storage: a project's notification queue lives
# there (Seer refuses to post to its own account).
TENANT_ACCOUNT = "tenantaccount"
TENANT_KEY = base64.b64encode(b"seer tests: the tenant's account key").decode()
PROJECTS = "/customvision/v3.3/training/projects"
COMPACT_DOMAIN = "0732100f-1a38-4e49-a514-c9b44c697ab5"  # General (compact): the fastest to train
COMPACT_DETECTION_DOMAIN = "a27d5ca5-bb19-49d8-a70a-fec086c47f5b"  # General (compact): EfficientNet-Lite0
DETECTOR_PUBLISHED = "detector"  # the publish name of `trained_detector`'s iteration
_CONFORMANCE = pytest.StashKey[Tally]()


@contextlib.contextmanager
def _process_settings(storage_connection_string: str) -> Iterator[None]:
    """Point code that reads the process settings (triggers, the local host) at the test Azurite."""
    patch = pytest.MonkeyPatch()
    patch.setenv("AzureWebJobsStorage", storage_connection_string)
    patch.setenv("SEER_TRAINING_KEY", TRAINING_KEY)
    patch.setenv("SEER_PREDICTION_KEY", PREDICTION_KEY)
    patch.setenv("SEER_ALLOW_PRIVATE_URLS", "true")
    get_settings.cache_clear()
    get_storage.cache_clear()
    try:
        yield
    finally:
        patch.undo()
        get_settings.cache_clear()
        get_storage.cache_clear()


@pytest.fixture(scope="session")
def storage_connection_string() -> Iterator[str]:
    """One in-memory Azurite for the session, started by the first test that needs storage (none in
    tests/unit); the process settings point at it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AZURITE_ACCOUNTS", f"{DEV_ACCOUNT}:{DEV_ACCOUNT_KEY};{TENANT_ACCOUNT}:{TENANT_KEY}")
        with running_azurite() as connection_string, _process_settings(connection_string):
            yield connection_string


@pytest.fixture(scope="session")
def settings(storage_connection_string: str) -> Settings:
    return Settings(
        storage_connection_string=storage_connection_string,
        training_key=TRAINING_KEY,
        prediction_key=PREDICTION_KEY,
        allow_private_urls=True,
        # Requests to the in-process app queue here, where no job listens; the `service` runs the real jobs.
        training_queue="training-unattended",
        export_queue="exports-unattended",
    )


@pytest.fixture(scope="session")
def account(settings: Settings) -> StorageAccount:
    return StorageAccount(settings.connection_string, StoragePolicy.from_settings(settings))


@pytest.fixture(scope="session")
def tenant_account(storage_connection_string: str) -> StorageAccount:
    """The user's storage account (same Azurite, another account), where notification queues live."""
    return StorageAccount(
        storage_connection_string.replace(DEV_ACCOUNT_KEY, TENANT_KEY).replace(DEV_ACCOUNT, TENANT_ACCOUNT)
    )


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
    with served(app) as url:
        yield url


@pytest.fixture()
def trainer(live_url: str):
    """The official Custom Vision training client, pointed at Seer."""
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from msrest.authentication import ApiKeyCredentials

    return CustomVisionTrainingClient(live_url, ApiKeyCredentials(in_headers={"Training-key": TRAINING_KEY}))


@pytest.fixture()
def project(client: TestClient) -> dict:
    """A fresh classification project (unique name) created through the API."""
    response = client.post(PROJECTS, params={"name": f"test-{uuid.uuid4()}"})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture()
def project_with_images(client: TestClient, tenant_account: StorageAccount) -> tuple[str, QueueClient]:
    """A compact project with two tags of five images each, notifying a queue in its user's account (the
    smallest project the training job trains)."""
    notifications, queue_uri = sas_queue(tenant_account)
    created = client.post(
        PROJECTS,
        params={"name": f"job-{uuid.uuid4()}", "domainId": COMPACT_DOMAIN},
        json={"notificationQueueUri": queue_uri},
    )
    assert created.status_code == 200, created.text
    project_id = created.json()["id"]
    for kind in (0, 1):
        tag = client.post(f"{PROJECTS}/{project_id}/tags", params={"name": f"kind {kind}"}).json()
        files = [("imageData", (f"{i}.jpg", pattern_image(kind, i), "image/jpeg")) for i in range(5)]
        uploaded = client.post(
            f"{PROJECTS}/{project_id}/images",
            params={"tagIds": tag["id"]},
            files=files,
        )
        assert uploaded.status_code == 200, uploaded.text
    return project_id, notifications


@pytest.fixture(scope="session")
def service(storage_connection_string: str) -> Iterator[str]:
    """The whole service as `scripts/run.sh` starts it: function_app.py on the local host (HTTP, blob, queue and
    timer triggers) with the training job launched as a separate process per queued training request (one kept
    started, waiting for the next), and the export job per queued export."""
    import function_app
    from devhost.host import LocalHost
    from devhost.host_config import HostConfig
    from devhost.jobs import JobSpec

    host = LocalHost(
        function_app.app,
        host_config=HostConfig.from_directory(Path(function_app.__file__).parent),
        port=free_port(),
        blob_poll_interval=0.3,
        queue_poll_interval=0.2,
        jobs=[
            JobSpec(
                queue=get_settings().training_queue,
                command=(sys.executable, "-m", "training_job", "--wait", "600"),
                standby=True,
            ),
            JobSpec(
                queue=get_settings().export_queue, command=(sys.executable, "-m", "training_job.exports")
            ),
        ],
        job_poll_interval=0.2,
        host_id=f"tests-{uuid.uuid4().hex[:8]}",
        master_key=MASTER_KEY,
    )
    host.start()
    yield host.url
    host.stop()


def detection_entries(seeds: range, tags: list) -> list:
    """The object detection quickstart's upload: each `detection_scene` with its regions, normalised to the
    image (SDK `ImageFileCreateEntry`s; `tags` are SDK tags, index = the scene's tag)."""
    from azure.cognitiveservices.vision.customvision.training.models import ImageFileCreateEntry, Region

    uploads = []
    for seed in seeds:
        image, boxes = detection_scene(seed)
        width, height = image.size
        regions = [
            Region(tag_id=tags[tag].id, left=x / width, top=y / height, width=w / width, height=h / height)
            for tag, x, y, w, h in boxes
        ]
        uploads.append(ImageFileCreateEntry(name=f"scene-{seed}.jpg", contents=jpeg(image), regions=regions))
    return uploads


@pytest.fixture(scope="session")
def trained_detector(service: str) -> dict:
    """One compact detector (two tags, 24 scenes) trained by the whole service through the SDK and published as
    DETECTOR_PUBLISHED, shared by every test that needs a real one (training it is the dearest step of the
    suite). Its users may predict with it but must leave its images, tags and iteration as they are."""
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from azure.cognitiveservices.vision.customvision.training.models import (
        CustomVisionErrorException,
        ImageFileCreateBatch,
    )
    from msrest.authentication import ApiKeyCredentials

    from tests.test_service import wait_until_trained

    trainer = CustomVisionTrainingClient(
        service, ApiKeyCredentials(in_headers={"Training-key": TRAINING_KEY})
    )
    domain = next(
        d for d in trainer.get_domains() if d.type == "ObjectDetection" and d.name == "General (compact)"
    )
    assert domain.id == COMPACT_DETECTION_DOMAIN
    project = trainer.create_project(f"detection-{uuid.uuid4()}", domain_id=domain.id)
    tags = [trainer.create_tag(project.id, "red block"), trainer.create_tag(project.id, "blue block")]
    summary = trainer.create_images_from_files(
        project.id, ImageFileCreateBatch(images=detection_entries(range(20), tags))
    )
    assert summary.is_batch_successful
    with pytest.raises(CustomVisionErrorException) as refused:
        trainer.train_project(project.id)  # 13 and 14 images per tag: Custom Vision wants 15
    assert refused.value.error.code == "BadRequestDetectionTrainingValidationFailed"
    summary = trainer.create_images_from_files(
        project.id, ImageFileCreateBatch(images=detection_entries(range(20, 24), tags))
    )
    assert summary.is_batch_successful
    iteration = trainer.train_project(project.id)
    iteration = wait_until_trained(trainer, project.id, iteration.id, timeout=300)
    assert iteration.status == "Completed", iteration.training_error_details
    trainer.publish_iteration(project.id, iteration.id, DETECTOR_PUBLISHED, "seer-prediction-resource")
    return {"project": project, "iteration": iteration, "tags": tags}


@pytest.fixture()
def service_trainer(service: str):
    """The official training client pointed at the whole service (where training really runs)."""
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from msrest.authentication import ApiKeyCredentials

    return CustomVisionTrainingClient(service, ApiKeyCredentials(in_headers={"Training-key": TRAINING_KEY}))


@pytest.fixture()
def service_predictor(service: str):
    """The official prediction client pointed at the whole service."""
    from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
    from msrest.authentication import ApiKeyCredentials

    return CustomVisionPredictionClient(
        service, ApiKeyCredentials(in_headers={"Prediction-key": PREDICTION_KEY})
    )


@pytest.fixture(scope="session")
def image_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A loopback HTTP server serving the bytes put in its dict (path -> body); 404 for anything else."""
    files: dict[str, bytes] = {}

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    with handler_served(Handler) as url:
        yield url, files


@pytest.fixture(scope="session")
def conformance_tally(request: pytest.FixtureRequest) -> Tally:
    """The validated conformance sessions of this run (tests/test_conformance*.py), printed at the end."""
    tally = Tally()
    request.config.stash[_CONFORMANCE] = tally
    return tally


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    tally = config.stash.get(_CONFORMANCE, None)
    if tally is not None and tally.sessions:
        terminalreporter.section("conformance against the Custom Vision REST descriptions")
        for line in tally.lines():
            terminalreporter.write_line(line)
