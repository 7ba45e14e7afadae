"""The training job as its own process (`python -m training_job`), as the queue starts it: a job killed
mid-training is retried through the queue's visibility timeout, and the run that finds the message past the
last try records the iteration as Failed, so no iteration stays Training forever. Training notifications are
posted to the project's queue at the end."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from pipeline.core.settings import Settings
from pipeline.services import training
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from tests.conftest import TRAINING_KEY
from tests.images import pattern_image
from tests.queues import received

TRAINING = "/customvision/v3.3/training"
VISIBILITY_SECONDS = 2


class JobProcess:
    """One `python -m training_job` run on its own queue, with its log lines readable as they come."""

    def __init__(self, connection_string: str, queue_name: str, max_attempts: int) -> None:
        env = {
            **os.environ,
            "AzureWebJobsStorage": connection_string,
            "SEER_TRAINING_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_SECONDS),
            "SEER_TRAINING_MAX_ATTEMPTS": str(max_attempts),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "training_job", "--queue", queue_name],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if text in self.lines.get(timeout=0.5):
                    return
            except queue.Empty:
                assert self.process.poll() is None, (
                    f"the job exited ({self.process.returncode}) before {text!r}"
                )
        raise AssertionError(f"the job never logged {text!r}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def finish(self, timeout: float = 120.0) -> int:
        return self.process.wait(timeout)


def request_training(account: StorageAccount, settings: Settings, project_id: str) -> tuple[str, str]:
    queue_name = f"training-{uuid.uuid4().hex[:12]}"
    iteration = training.request_training(
        account, settings.model_copy(update={"training_queue": queue_name}), project_id
    )
    return iteration.id, queue_name


def test_killed_job_is_retried_and_completes(
    project_with_images, account: StorageAccount, settings: Settings, storage_connection_string: str
) -> None:
    project_id, notify_queue = project_with_images
    iteration_id, queue_name = request_training(account, settings, project_id)

    first = JobProcess(storage_connection_string, queue_name, max_attempts=3)
    first.wait_for_log("training iteration")
    first.kill()
    assert IterationStore(account).get(project_id, iteration_id).status == "Training"

    time.sleep(VISIBILITY_SECONDS + 0.5)  # the killed job's message becomes visible again
    second = JobProcess(storage_connection_string, queue_name, max_attempts=3)
    second.wait_for_log("(try 2 of 3)")
    assert second.finish() == 0

    iteration = IterationStore(account).get(project_id, iteration_id)
    assert iteration.status == "Completed", iteration.training_error_details
    assert account.queue(queue_name).peek_messages() == []
    assert received(notify_queue) == [
        {
            "version": "1.0",
            "type": "Training",
            "Content": {"projectId": project_id, "iterationId": iteration_id, "trainingStatus": "Completed"},
        }
    ]


def test_job_killed_on_its_last_try_ends_failed(
    project_with_images, account: StorageAccount, settings: Settings, storage_connection_string: str
) -> None:
    project_id, notify_queue = project_with_images
    iteration_id, queue_name = request_training(account, settings, project_id)

    only_try = JobProcess(storage_connection_string, queue_name, max_attempts=1)
    only_try.wait_for_log("training iteration")
    only_try.kill()

    time.sleep(VISIBILITY_SECONDS + 0.5)
    after = JobProcess(storage_connection_string, queue_name, max_attempts=1)
    assert after.finish() == 0

    iteration = IterationStore(account).get(project_id, iteration_id)
    assert iteration.status == "Failed"
    assert "stopped before finishing" in iteration.training_error_details
    assert account.queue(queue_name).peek_messages() == []
    assert len(account.queue(f"{queue_name}-poison").peek_messages()) == 1
    assert [n["Content"]["trainingStatus"] for n in received(notify_queue)] == ["Failed"]


def test_malformed_message_goes_to_poison_without_crashing(
    account: StorageAccount, storage_connection_string: str
) -> None:
    queue_name = f"training-{uuid.uuid4().hex[:12]}"
    account.queue(queue_name).send_message("this is not base64 json")
    job = JobProcess(storage_connection_string, queue_name, max_attempts=3)
    assert job.finish() == 0
    assert account.queue(queue_name).peek_messages() == []
    assert [m.content for m in account.queue(f"{queue_name}-poison").peek_messages()] == [
        "this is not base64 json"
    ]


def test_multilabel_validation_code_is_spelled_as_the_spec(client: TestClient) -> None:
    project = client.post(
        f"{TRAINING}/projects", params={"name": f"ml-{uuid.uuid4()}", "classificationType": "Multilabel"}
    ).json()
    refused = client.post(f"{TRAINING}/projects/{project['id']}/train")
    assert refused.status_code == 400
    assert refused.json()["code"] == "BadRequestMultiLabelClassificationTrainingValidationFailed"


def test_training_request_validation(client: TestClient, project: dict) -> None:
    project_id = project["id"]
    no_tags = client.post(f"{TRAINING}/projects/{project_id}/train")
    assert no_tags.status_code == 400
    assert no_tags.json()["code"] == "BadRequestMultiClassClassificationTrainingValidationFailed"
    for kind in (0, 1):
        tag = client.post(f"{TRAINING}/projects/{project_id}/tags", params={"name": f"t{kind}"}).json()
        files = [("imageData", (f"{i}.jpg", pattern_image(kind, i), "image/jpeg")) for i in range(4)]
        client.post(f"{TRAINING}/projects/{project_id}/images", params={"tagIds": tag["id"]}, files=files)
    too_few = client.post(f"{TRAINING}/projects/{project_id}/train")
    assert too_few.status_code == 400
    assert "at least 5 images" in too_few.json()["message"]
    bad_type = client.post(f"{TRAINING}/projects/{project_id}/train", params={"trainingType": "Turbo"})
    assert bad_type.json()["code"] == "BadRequestInvalid"
    assert client.get(f"{TRAINING}/projects/{project_id}/iterations").json() == []


def test_parallel_train_requests_make_one_iteration(app, project_with_images: tuple[str, str]) -> None:
    """Eight clients press Train at once: one iteration trains, the others hear it is already training."""
    project_id, _ = project_with_images
    clients = [TestClient(app, headers={"Training-Key": TRAINING_KEY}) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda c: c.post(f"{TRAINING}/projects/{project_id}/train"), clients))
    codes = sorted(a.json().get("code", "OK") if a.status_code != 200 else "OK" for a in answers)
    assert codes == ["BadRequestTrainingAlreadyInProgress"] * 7 + ["OK"]
    listed = clients[0].get(f"{TRAINING}/projects/{project_id}/iterations").json()
    assert [(i["name"], i["status"]) for i in listed] == [("Iteration 1", "Training")]
