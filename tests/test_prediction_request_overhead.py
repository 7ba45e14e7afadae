"""What a prediction request costs the event loop besides the prediction (issue 16, item 5: the HTTP service against
its in-process floor).

- Route dependencies run on the event loop. FastAPI runs a plain `def` dependency on a worker thread, and the
  prediction route's four such hops (the API version, the settings, the predictor, the work pool) were a third of its
  overhead over the in-process floor.
- A prediction URL is matched against the Prediction API's routes only, each at most once. With the Training API's
  routes first, each prediction was first tried against every one of them, a third of the event loop's time per
  request; in a router of their own, FastAPI matched them twice (the branch, then the route).
- FastAPI's own OpenTelemetry is off unless `SEER_HTTP_TELEMETRY` asks for it: looking for a configured provider
  cost every request 10 to 25 us of the event loop.
- The image routes skip FastAPI's per-request machinery (dependency solving, parameter and answer validation),
  which cost about 0.45 ms of CPU per request there."""

from __future__ import annotations

import uuid

import anyio.to_thread
import fastapi.routing
import opentelemetry.trace
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from pipeline.api.app import PREDICTION_PREFIX, create_app
from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.vocabulary import new_id
from tests.conftest import PREDICTION_KEY
from tests.images import make_image
from tests.published import published_iteration, tiny_classifier


@pytest.fixture()
def worker_thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions handed to a worker thread while the test runs."""
    calls: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func, *args, **kwargs):
        calls.append(getattr(func, "__qualname__", None) or getattr(func.func, "__qualname__", repr(func)))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return calls


def test_a_prediction_request_hops_to_a_thread_only_to_read_storage(client, worker_thread_calls) -> None:
    """An unpublished name: the only blocking work is looking it up in Table storage."""
    response = client.post(
        f"/customvision/v3.0/prediction/{uuid.uuid4()}/classify/iterations/nowhere/image/nostore",
        content=b"not read: the lookup fails first",
        headers={"Prediction-Key": PREDICTION_KEY},
    )
    assert response.status_code == 404, response.text
    assert worker_thread_calls == ["PublishedIterations.get"]


def test_a_prediction_url_is_matched_once_against_the_prediction_routes_alone(client, monkeypatch) -> None:
    """Only the Prediction API's routes (classify and detect, image and url, stored and nostore) may be tried, and
    none twice."""
    tried: list[str] = []
    matches = APIRoute.matches

    def counted(route: APIRoute, scope):
        tried.append(route.path)
        return matches(route, scope)

    monkeypatch.setattr(APIRoute, "matches", counted)
    response = client.post(
        f"/customvision/v3.0/prediction/{uuid.uuid4()}/detect/iterations/nowhere/url/nostore",
        json={"url": "http://127.0.0.1/unread.jpg"},
        headers={"Prediction-Key": PREDICTION_KEY},
    )
    assert response.status_code == 404, response.text
    assert tried and all(path.startswith(PREDICTION_PREFIX + "/") for path in tried), tried
    assert len(tried) == len(set(tried)), tried


@pytest.mark.parametrize("wanted", [False, True])
def test_fastapis_telemetry_looks_for_a_provider_only_when_asked_to(
    settings, account, monkeypatch, wanted
) -> None:
    looked: list[str] = []
    get_tracer_provider = opentelemetry.trace.get_tracer_provider

    def counted():
        looked.append("tracer")
        return get_tracer_provider()

    monkeypatch.setattr(opentelemetry.trace, "get_tracer_provider", counted)
    app = create_app(settings.model_copy(update={"http_telemetry": wanted}), account)
    answer = TestClient(app).post(f"/customvision/v3.0/prediction/{uuid.uuid4()}/classify/iterations/x/image")
    assert answer.status_code == 401
    assert bool(looked) == wanted


def test_an_image_prediction_skips_fastapis_dependency_solving(app, account, project, monkeypatch):
    """The image routes are DirectRoutes (pipeline.api.direct_route): FastAPI's dependency solving never runs for
    them, yet the API version is still checked and the answer is still the ImagePrediction. A URL route, served
    the ordinary way, shows that the count sees FastAPI's solving."""
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(*, request, dependant, **kwargs):
        solved.append(request.url.path)
        return await solve(request=request, dependant=dependant, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    labels = [ModelLabel(new_id(), "red"), ModelLabel(new_id(), "blue")]
    name = f"direct-{new_id()[:8]}"
    published_iteration(account, project, name, tiny_classifier(labels))
    predictor = TestClient(app, headers={"Prediction-Key": PREDICTION_KEY})
    iteration = f"{project['id']}/classify/iterations/{name}"
    route = f"{iteration}/image/nostore"

    answered = predictor.post(f"/customvision/v3.1/prediction/{route}", content=make_image(seed=5))
    assert answered.status_code == 200, answered.text
    assert {p["tagName"] for p in answered.json()["predictions"]} == {"red", "blue"}
    unsupported = predictor.post(f"/customvision/v3.2/prediction/{route}", content=make_image(seed=5))
    assert unsupported.status_code == 404 and "v3.2 is not supported" in unsupported.json()["message"]
    assert solved == []

    predictor.post(f"/customvision/v3.1/prediction/{iteration}/url/nostore", json={"url": ""})
    assert solved
