"""The parts of host.json the local host honours, with the real host's defaults, and the host id."""

from __future__ import annotations

import json
import os
import re
import socket
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.cores import usable_cores

_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<hours>\d+):(?P<minutes>\d\d):(?P<seconds>\d\d(?:\.\d+)?)$")


MIN_POLLING_INTERVAL = 0.1  # the real host refuses a shorter queues.maxPollingInterval
DEFAULT_MAX_POLLING_INTERVAL = (
    60.0  # QueuesOptions' default, which the blob extension's internal queue always has
)


def parse_timespan(text: str) -> float:
    """Seconds in a .NET TimeSpan string such as "00:00:30" or "1.02:00:00" (host.json's format)."""
    match = _TIMESPAN.match(text.strip())
    if not match:
        raise ValueError(f"not a TimeSpan (expected [d.]hh:mm:ss): {text!r}")
    days = int(match["days"] or 0)
    return ((days * 24 + int(match["hours"])) * 60 + int(match["minutes"])) * 60 + float(match["seconds"])


def _section(mapping: dict[str, Any], *path: str) -> dict[str, Any]:
    """A nested object looked up case-insensitively, as .NET configuration binds host.json."""
    for key in path:
        lowered = {k.lower(): v for k, v in mapping.items()}
        value = lowered.get(key.lower())
        mapping = value if isinstance(value, dict) else {}
    return {k.lower(): v for k, v in mapping.items()}


def _default_blob_parallelism() -> int:
    """The blob extension's default: 8 invocations per core."""
    return 8 * usable_cores()


def _polling_interval(queues: dict[str, Any], default: float) -> float:
    if "maxpollinginterval" not in queues:
        return default
    seconds = parse_timespan(str(queues["maxpollinginterval"]))
    if seconds < MIN_POLLING_INTERVAL:
        raise ValueError(f"host.json: queues.maxPollingInterval must be at least 00:00:00.1, not {seconds}s")
    return seconds


def _at_least_one(section: dict[str, Any], key: str, default: int, path: str) -> int:
    value = int(section.get(key.lower(), default))
    if value < 1:
        raise ValueError(f"host.json: {path}.{key} must be at least 1, not {value}")
    return value


@dataclass(frozen=True)
class HostConfig:
    """host.json settings; defaults are the real host's (routePrefix "api", 5 dequeues, no retry delay, polls of an
    empty queue backing off to a minute).

    `queues` settings apply to queue triggers only; blob triggers (blob extension 5.x) take theirs from `blobs`:
    `poisonBlobThreshold` tries before `webjobs-blobtrigger-poison`, at most `maxDegreeOfParallelism` invocations at
    once, and a failed blob is retried at once (the blob extension's internal queue has no visibility timeout); its
    polls back off to the default minute whatever `queues.maxPollingInterval` says.
    """

    route_prefix: str = "api"
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    batch_size: int = 16
    message_encoding: str = "base64"
    max_polling_interval: float = DEFAULT_MAX_POLLING_INTERVAL
    poison_blob_threshold: int = 5
    blob_parallelism: int = field(default_factory=_default_blob_parallelism)

    @classmethod
    def from_directory(cls, directory: Path) -> HostConfig:
        """Read `host.json` beside the app, or the defaults when there is none (as the real host does)."""
        path = directory / "host.json"
        if not path.exists():
            return cls()
        document = json.loads(path.read_text(encoding="utf-8"))
        http = _section(document, "extensions", "http")
        queues = _section(document, "extensions", "queues")
        blobs = _section(document, "extensions", "blobs")
        defaults = cls()
        encoding = str(queues.get("messageencoding", defaults.message_encoding)).lower()
        if encoding not in ("base64", "none"):
            raise ValueError(f"host.json: queues.messageEncoding must be base64 or none, not {encoding!r}")
        return cls(
            route_prefix=str(http.get("routeprefix", defaults.route_prefix)),
            max_dequeue_count=int(queues.get("maxdequeuecount", defaults.max_dequeue_count)),
            visibility_timeout=parse_timespan(queues["visibilitytimeout"])
            if "visibilitytimeout" in queues
            else defaults.visibility_timeout,
            batch_size=int(queues.get("batchsize", defaults.batch_size)),
            message_encoding=encoding,
            max_polling_interval=_polling_interval(queues, defaults.max_polling_interval),
            poison_blob_threshold=_at_least_one(
                blobs, "poisonBlobThreshold", defaults.poison_blob_threshold, "blobs"
            ),
            blob_parallelism=_at_least_one(
                blobs, "maxDegreeOfParallelism", defaults.blob_parallelism, "blobs"
            ),
        )


def default_host_id(app_dir: Path) -> str:
    """The id the real host derives locally: machine name plus a stable hash of the script root, 32 chars.

    It names the blob receipts, so a stable id keeps receipts valid across restarts.
    """
    configured = os.environ.get("AzureFunctionsWebHost__hostid")  # noqa: SIM112 (the host's name)
    if configured:
        return configured
    raw = f"{socket.gethostname()}-{zlib.crc32(str(app_dir.resolve()).encode('utf-8'))}".lower()
    return re.sub(r"[^a-z0-9-]", "", raw)[:32].rstrip("-")
