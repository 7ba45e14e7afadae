"""StorageAccount's table clients under concurrency: asking for a table's client, the first time or the
thousandth, never disturbs the requests other threads have in flight on another table."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from pipeline.store import StorageAccount

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
