"""The local host's parsing of host.json, timespans, NCRONTAB schedules, blob paths, blob URLs, the blob
extension's queue message and job specs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from devhost.blob_binding import BlobPath, BlobTriggerMessage, quoted_etag
from devhost.blob_webhook import blob_location
from devhost.host_config import HostConfig, parse_timespan
from devhost.jobs import JobSpec
from devhost.timer_triggers import NcrontabSchedule


def test_host_json_schedule_and_path_parsing() -> None:
    config = HostConfig.from_directory(Path(__file__).resolve().parents[2])
    assert config.route_prefix == ""
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


def test_host_json_blob_settings_are_the_ones_the_local_host_follows(tmp_path: Path) -> None:
    """The app has no queue trigger: its host.json sets the blob extension's settings, which blob triggers follow
    (the `queues` section does not apply to them)."""
    config = HostConfig.from_directory(Path(__file__).resolve().parents[2])
    assert (config.poison_blob_threshold, config.blob_parallelism) == (5, 4)
    assert HostConfig().blob_parallelism >= 8  # the extension's default: 8 per core
    (tmp_path / "host.json").write_text(
        '{"extensions": {"Blobs": {"PoisonBlobThreshold": 2}, "queues": {"maxDequeueCount": 9}}}'
    )
    config = HostConfig.from_directory(tmp_path)
    assert (config.poison_blob_threshold, config.max_dequeue_count) == (2, 9)
    (tmp_path / "host.json").write_text('{"extensions": {"blobs": {"maxDegreeOfParallelism": 0}}}')
    with pytest.raises(ValueError, match="maxDegreeOfParallelism"):
        HostConfig.from_directory(tmp_path)


def test_queue_polls_back_off_to_the_hosts_default_minute_or_host_jsons_max_polling_interval(
    tmp_path: Path,
) -> None:
    assert HostConfig().max_polling_interval == 60
    (tmp_path / "host.json").write_text('{"extensions": {"queues": {"maxPollingInterval": "00:00:02"}}}')
    assert HostConfig.from_directory(tmp_path).max_polling_interval == 2
    (tmp_path / "host.json").write_text('{"extensions": {"queues": {"maxPollingInterval": "00:00:00.05"}}}')
    with pytest.raises(ValueError, match="maxPollingInterval"):
        HostConfig.from_directory(tmp_path)


def test_blob_urls_and_trigger_messages() -> None:
    assert blob_location("http://127.0.0.1:10000/devstoreaccount1/uploads/p/t/a%20b.jpg") == (
        "uploads",
        "p/t/a b.jpg",
    )
    assert blob_location("https://acct.blob.core.windows.net/uploads/x/y.png") == ("uploads", "x/y.png")
    message = BlobTriggerMessage(
        function_id="Host.Functions.f",
        blob_type="BlockBlob",
        container_name="uploads",
        blob_name="a/b.jpg",
        etag=quoted_etag("0x8D"),
    )
    assert BlobTriggerMessage.decode(message.encode()) == message
    assert message.model_dump(by_alias=True)["ETag"] == '"0x8D"' == quoted_etag('"0x8D"')
