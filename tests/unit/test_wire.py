"""Wire models read what clients really send."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.api.wire.predictions import BoundingBox, ImageUrl, Prediction, PredictionQueryToken


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
    built = Prediction(probability=0.5, tag_id="t", tag_name="n", bounding_box=BoundingBox(**region))
    sent = Prediction.model_validate(
        {"Probability": 0.5, "TAGID": "t", "tagName": "n", "boundingbox": {"LEFT": 0.1} | region}
    )
    assert sent == built
