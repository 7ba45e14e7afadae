"""Counting the HTTP requests a StorageAccount sends, by kind, so a benchmark can say what each API call costs in
storage operations.

The table, blob and queue SDKs build their own pipelines (they take no `per_call_policies`), but all three run
azure-core's `raw_request_hook` option once per request actually sent, retries included: handing a
`RequestCounter` to `StorageAccount(..., raw_request_hook=counter)` counts without touching the storage layer."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


def request_kind(request: Any) -> str:
    """`table point read`, `table query`, `table batch`, `table write`, `blob read`, `blob write`, `queue ...`:
    what one storage request is, from its User-Agent (which SDK) and method and path."""
    http = request.http_request
    agent = http.headers.get("User-Agent", "")
    method = http.method.upper()
    if "data-tables" in agent:
        path = http.url.split("?", 1)[0]
        if path.endswith("$batch"):
            return "table batch"
        if method == "GET":
            return "table point read" if "RowKey=" in path else "table query"
        return "table write"
    service = "blob" if "storage-blob" in agent else "queue" if "storage-queue" in agent else "other"
    return f"{service} {'read' if method in ('GET', 'HEAD') else 'write'}"


class RequestCounter:
    """A `raw_request_hook`: counts requests by kind (thread-safe: the app reads in parallel)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kinds: Counter[str] = Counter()

    def __call__(self, request: Any) -> None:
        kind = request_kind(request)
        with self._lock:
            self._kinds[kind] += 1

    def take(self) -> Counter[str]:
        """The requests counted since the last `take`, by kind; starts counting afresh."""
        with self._lock:
            kinds, self._kinds = self._kinds, Counter()
        return kinds
