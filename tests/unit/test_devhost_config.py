"""The local host's parsing of host.json, timespans, NCRONTAB schedules, blob paths and job specs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from devhost import HostConfig, JobSpec
from devhost.blob_triggers import BlobPath
from devhost.host_config import parse_timespan
from devhost.timer_triggers import NcrontabSchedule


def test_host_json_schedule_and_path_parsing() -> None:
    config = HostConfig.from_directory(Path(__file__).resolve().parents[2])
    assert (config.route_prefix, config.visibility_timeout, config.batch_size) == ("", 30, 16)
    assert (
        HostConfig.from_directory(Path(__file__).resolve().parent) == HostConfig()
    )  # no host.json: defaults
    assert parse_timespan("1.00:01:00.5") == 86460.5
    with pytest.raises(ValueError):
        parse_timespan("30s")
    every_ten = NcrontabSchedule("*/10 * * * * *")  # seconds first
    assert every_ten.next_after(datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)) == datetime(
        2024, 1, 1, 0, 0, 10, tzinfo=UTC
    )
    path = BlobPath.parse("uploads/{name}.png")
    assert path.container == "uploads" and path.matches("a/b/c.png") and not path.matches("a/b/c.jpg")
    with pytest.raises(ValueError):
        JobSpec.parse("no-command=")
