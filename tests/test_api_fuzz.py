"""Property-based fuzzing of every operation in Seer's OpenAPI description (schemathesis over real HTTP, real
Azurite): whatever the request, the answer is never a 5xx, and every error is a Custom Vision error body.

Path ids are drawn from real resources as well as arbitrary strings, so the fuzzer reaches the code behind the
lookups: "keep" resources for reading and writing, separate "victim" resources for the delete operations (a
deleted project would turn every later case into a plain 404).
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from pipeline.api.app import create_app
from pipeline.api.routing import API_VERSIONS, PREDICTION_API_VERSIONS
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.settings import Settings
from tests.conftest import PREDICTION_KEY, TRAINING_KEY
from tests.images import make_image
from tests.published import published_iteration, tiny_classifier

EXAMPLES_PER_OPERATION = 12
_ID_PARAMETERS = ("project_id", "tag_id", "image_id", "iteration_id", "published_name")
_TRAINING = "/customvision/v3.3/training"


def _seed(client, account, count: int = 1) -> dict[str, list[str]]:
    """Projects with two tags, a tagged image and a published iteration each (a tiny model written to storage);
    returns their ids by path parameter name."""
    ids: dict[str, list[str]] = {name: [] for name in _ID_PARAMETERS}
    for _ in range(count):
        project = client.post(f"{_TRAINING}/projects", params={"name": f"fuzz-{uuid.uuid4()}"}).json()
        tags = [
            client.post(f"{_TRAINING}/projects/{project['id']}/tags", params={"name": n}).json() for n in "ab"
        ]
        upload = client.post(
            f"{_TRAINING}/projects/{project['id']}/images",
            params={"tagIds": tags[0]["id"]},
            files={"imageData": make_image(seed=len(ids["image_id"]))},
        )
        model = tiny_classifier([ModelLabel(t["id"], t["name"]) for t in tags])
        iteration = published_iteration(account, project, f"fuzz{len(ids['published_name'])}", model)
        ids["project_id"].append(project["id"])
        ids["tag_id"].append(tags[0]["id"])
        ids["image_id"].append(upload.json()["images"][0]["image"]["id"])
        ids["iteration_id"].append(iteration.id)
        ids["published_name"].append(iteration.publish_name)
    return ids


# Query parameters that name resources, and the path parameter whose ids they take.
_ID_QUERIES = {"tagIds": "tag_id", "imageIds": "image_id", "ids": "image_id", "iterationId": "iteration_id"}


def _draw_ids_from(operation: dict[str, Any], ids: dict[str, list[str]]) -> None:
    """Valid requests name real resources; the negative phase still sends ids outside the enum."""
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "path" and ids.get(name):
            parameter["schema"] = {"enum": ids[name]}
        elif parameter["in"] == "query" and ids.get(_ID_QUERIES.get(name, "")):
            parameter["schema"] = {"anyOf": [{"enum": ids[_ID_QUERIES[name]]}, parameter["schema"]]}


def _fuzzable(description: dict[str, Any], keep: dict[str, list[str]], victims: dict[str, list[str]]) -> dict:
    """The description with valid API versions and real ids offered for the path parameters."""
    described = copy.deepcopy(description)
    for path, operations in described["paths"].items():
        versions = PREDICTION_API_VERSIONS if "/prediction/" in path else API_VERSIONS
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "version":
                    parameter["schema"] = {"enum": sorted(versions)}
            _draw_ids_from(operation, victims if method == "delete" else keep)
    return described


def _operation_labels() -> list[str]:
    """Every operation in the description, known at collection time (building the app touches no storage)."""
    description = create_app(Settings(storage_connection_string="UseDevelopmentStorage=true")).openapi()
    return [
        f"{method.upper()} {path}"
        for path, operations in description["paths"].items()
        for method in operations
    ]


@pytest.fixture(scope="module")
def api_description(app, account):
    client = TestClient(app, headers={"Training-Key": TRAINING_KEY})
    return schemathesis.openapi.from_dict(
        _fuzzable(app.openapi(), keep=_seed(client, account), victims=_seed(client, account, 2))
    )


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value
)
@pytest.mark.parametrize("label", _operation_labels())
def test_no_request_gets_a_server_error(
    api_description, live_url: str, label: str, mode: GenerationMode
) -> None:
    operation = api_description.find_operation_by_label(label)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_without_a_server_error(case) -> None:
        response = case.call(
            base_url=live_url,
            headers={"Training-Key": TRAINING_KEY, "Prediction-Key": PREDICTION_KEY},
            timeout=30,
        )
        request = f"{case.method} {case.formatted_path} {case.query} -> {response.status_code} {response.text[:300]}"
        assert response.status_code < 500, request
        if response.status_code >= 400:
            error = json.loads(response.text)
            assert set(error) == {"code", "message"} and error["code"] and error["message"], request

    answers_without_a_server_error()
