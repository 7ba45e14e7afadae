"""StorageAccount's table clients under concurrency: asking for a table's client, the first time or the
thousandth, never disturbs the requests other threads have in flight on another table. Its clients read the
environment's proxy settings once, when the account is made, and still use them."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests.sessions
from azure.core.exceptions import HttpResponseError

from pipeline.store import StorageAccount, StoragePolicy
from pipeline.store.images import ImageStore
from tests.serving import QuietHandler, handler_served

READERS = 6


def test_table_clients_leave_requests_in_flight_whole(storage_connection_string: str) -> None:
    account = StorageAccount(storage_connection_string)
    run = uuid.uuid4().hex[:8]
    busy = account.table(f"busy{run}")
    busy.upsert_entity({"PartitionKey": "p", "RowKey": "r", "value": 1})
    stop = threading.Event()

    def read_until_stopped() -> int:
        reads = 0
        while not stop.is_set():
            assert busy.get_entity("p", "r")["value"] == 1
            reads += 1
        return reads

    with ThreadPoolExecutor(READERS) as pool:
        readers = [pool.submit(read_until_stopped) for _ in range(READERS)]
        try:
            names = [f"new{run}{i}" for i in range(20)]
            for name in names:  # first use: the table is created and its client built
                account.table(name)
            for _ in range(1500):  # later uses (the old per-call clients failed here in seconds)
                for name in names:
                    account.table(name)
        finally:
            stop.set()
        reads = [reader.result() for reader in readers]  # re-raises any reader's failure
    assert all(count > 0 for count in reads)
    assert account.table(f"busy{run}") is busy


def _every_kind_of_call(account: StorageAccount, run: str) -> None:
    table = account.table(f"env{run}")
    table.upsert_entity({"PartitionKey": "p", "RowKey": "r"})
    table.get_entity("p", "r")
    images = ImageStore(account)
    images.put_blob(f"{run}/image/resized.jpg", b"jpeg", "image/jpeg")
    images.read_blob(f"{run}/image/resized.jpg")
    list(account.queue(f"env{run}").receive_messages(max_messages=1))


def test_storage_calls_do_not_read_the_environment_each_time(
    storage_connection_string: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests' per-request lookups (proxies and NO_PROXY through all of os.environ, a .netrc file) cost up to
    17 % of a storage call's CPU; the account reads the environment once, when it is made."""
    account = StorageAccount(storage_connection_string)
    lookups: list[str] = []
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", lambda url, **_: lookups.append(url) or {})
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", lambda url, *_: lookups.append(url))
    _every_kind_of_call(account, uuid.uuid4().hex[:8])
    assert lookups == []


@contextlib.contextmanager
def _proxy_that_refuses() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP proxy that records each request line and answers 502: where a request went, no further."""
    seen: list[str] = []

    class Refuse(QuietHandler):
        def _refuse(self) -> None:
            seen.append(self.requestline)
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_MERGE = _refuse

    with handler_served(Refuse) as url:
        yield url, seen


def test_the_environments_proxy_carries_storage_calls_unless_no_proxy_names_the_host(
    storage_connection_string: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    once = StoragePolicy(timeout_seconds=5, retries=0, backoff_seconds=0)
    with _proxy_that_refuses() as (proxy, seen):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        proxied = StorageAccount(storage_connection_string, once)
        for call in (
            proxied.tables.get_service_properties,
            proxied.blobs.get_service_properties,
            proxied.queues.get_service_properties,
        ):
            with pytest.raises(HttpResponseError):
                call()
        endpoints = (proxied.tables.url, proxied.blobs.url, proxied.queues.url)
        assert [line.split()[1].split("?")[0].rstrip("/") for line in seen] == [
            u.rstrip("/") for u in endpoints
        ]

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = StorageAccount(storage_connection_string, once)
        _every_kind_of_call(direct, uuid.uuid4().hex[:8])
        assert len(seen) == 3
