"""bench.storage_ops counts what a StorageAccount sends, by kind, through azure-core's `raw_request_hook` (which
the table, blob and queue SDKs each run once per request sent): the storage-operation figures of bench/scale.py
rest on it, so an SDK upgrade that stopped calling the hook would show here rather than as a bench of zeros."""

from __future__ import annotations

import contextlib
from collections import Counter

from azure.core.exceptions import ResourceNotFoundError

from bench.storage_ops import RequestCounter
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import new_id
from pipeline.store import StorageAccount, StoragePolicy


def test_every_storage_request_is_counted_by_kind(settings: Settings) -> None:
    counter = RequestCounter()
    account = StorageAccount(
        settings.connection_string, StoragePolicy.from_settings(settings), raw_request_hook=counter
    )
    table, container, queue = (
        account.table("opscount"),
        account.container("opscount"),
        account.queue("opscount"),
    )
    counter.take()  # creating the resources is not what is counted here
    key = new_id()
    table.create_entity({"PartitionKey": key, "RowKey": "a"})
    table.get_entity(key, "a")
    with contextlib.suppress(ResourceNotFoundError):
        table.get_entity(key, "missing")
    list(table.query_entities("PartitionKey eq @pk", parameters={"pk": key}))
    table.submit_transaction([("upsert", {"PartitionKey": key, "RowKey": f"r{n}"}) for n in range(3)])
    container.upload_blob(key, b"x")
    container.download_blob(key).readall()
    queue.send_message("x")
    assert counter.take() == Counter(
        {
            "table write": 1,
            "table point read": 2,
            "table query": 1,
            "table batch": 1,
            "blob write": 1,
            "blob read": 1,
            "queue write": 1,
        }
    )
    assert counter.take() == Counter()
