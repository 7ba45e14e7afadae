"""Wire models read what clients really send."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.api.app import create_app
from pipeline.api.wire.base import WireModel, WireShape
from pipeline.api.wire.images import Region
from pipeline.api.wire.predictions import (
    ImageIdCreateBatch,
    ImageIdCreateEntry,
    ImageUrl,
    PredictionQueryToken,
)
from pipeline.core.settings import Settings
from pipeline.store import StorageAccount


def test_query_times_without_a_zone_are_utc():
    """Clients often send `startTime` with no zone; compared with stored (UTC) times it must not fail."""
    token = PredictionQueryToken.model_validate(
        {"startTime": "2020-01-01T00:00:00", "endTime": "2020-01-02T03:04:05+02:00"}
    )
    assert token.start_time == datetime(2020, 1, 1, tzinfo=UTC)
    assert token.end_time == datetime(2020, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert token.start_time < datetime.now(UTC) and token.end_time < datetime.now(UTC)


def test_names_bind_ignoring_case_and_exact_ones_win_whichever_way_they_come():
    """Python names and wire names as written pass straight through (how Seer builds every answer); any other
    casing is renamed, and a differently cased duplicate of an exact name is dropped."""
    exact = {"url": "http://a/x.jpg"}
    assert ImageUrl.model_validate(exact).url == "http://a/x.jpg"
    assert ImageUrl.model_validate({"URL": "http://a/upper.jpg"}).url == "http://a/upper.jpg"
    assert ImageUrl.model_validate({"Url": "http://a/wins-not.jpg", "url": "http://a/wins.jpg"}).url == (
        "http://a/wins.jpg"
    )
    region = {"tag_id": "t", "left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}
    built = ImageIdCreateBatch(images=[ImageIdCreateEntry(id="i", regions=[Region(**region)])])
    sent = ImageIdCreateBatch.model_validate(
        {"Images": [{"ID": "i", "REGIONS": [{"TagId": "t", "LEFT": 0.9} | region]}]}
    )
    assert sent == built


def test_no_request_body_holds_a_model_that_does_not_bind_any_case(settings: Settings) -> None:
    """Answer-only models (`AnswerModel`) skip the any-case renaming; every model the OpenAPI description lets a
    client send, nested ones included, must be a `WireModel`."""
    connection = "UseDevelopmentStorage=true"
    description = create_app(settings, StorageAccount(connection)).openapi()
    schemas = description["components"]["schemas"]
    sent: set[str] = set()
    waiting = [
        ref
        for path in description["paths"].values()
        for op in path.values()
        for ref in _refs(op.get("requestBody"))
    ]
    while waiting:
        name = waiting.pop()
        if name not in sent:
            sent.add(name)
            waiting += _refs(schemas[name])
    models = {model.__name__: model for model in _subclasses(WireShape)}
    assert {"ImageUrl", "ImageIdCreateBatch", "Region", "PredictionQueryToken"} <= sent
    assert sent <= set(models), sent - set(models)
    assert not [name for name in sent if not issubclass(models[name], WireModel)]


def _refs(schema: object) -> list[str]:
    """The schema names `schema` refers to, at any depth."""
    if isinstance(schema, dict):
        return (
            [schema["$ref"].rsplit("/", 1)[-1]]
            if "$ref" in schema
            else [r for v in schema.values() for r in _refs(v)]
        )
    if isinstance(schema, list):
        return [r for v in schema for r in _refs(v)]
    return []


def _subclasses(model: type) -> set[type]:
    return {model} | {sub for direct in model.__subclasses__() for sub in _subclasses(direct)}
