"""Wire models read what clients really send."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.api.wire.predictions import PredictionQueryToken


def test_query_times_without_a_zone_are_utc():
    """Clients often send `startTime` with no zone; compared with stored (UTC) times it must not fail."""
    token = PredictionQueryToken.model_validate(
        {"startTime": "2020-01-01T00:00:00", "endTime": "2020-01-02T03:04:05+02:00"}
    )
    assert token.start_time == datetime(2020, 1, 1, tzinfo=UTC)
    assert token.end_time == datetime(2020, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert token.start_time < datetime.now(UTC) and token.end_time < datetime.now(UTC)
