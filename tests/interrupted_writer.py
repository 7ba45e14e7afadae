"""A write that tests/test_interrupted_writes.py kills with SIGKILL at a chosen storage call.

`python -m tests.interrupted_writer upload PROJECT_ID FILE...` adds the files as one batch (the service's
`create_images`); `python -m tests.interrupted_writer delete PROJECT_ID` runs DeleteProject. With
SEER_TEST_FREEZE_AT=`op:name:n`, once the n-th call of `op` (upload_blob, delete_blob, create_entity,
update_entity, delete_entity, submit_transaction) on the table or container `name` has completed, every later
storage call, in any thread, blocks; the calls other threads already had in flight are let finish, then the
process prints FROZEN. The kill then lands after exactly those writes, whatever the timing: a request still in
flight at the kill could reach storage after the test has counted what the kill left.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from pathlib import Path

from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

from pipeline.core.settings import get_settings
from pipeline.services.images_create import NewImage, create_images
from pipeline.services.projects import delete_project
from pipeline.store import get_storage

_frozen = threading.Event()
_lock = threading.Condition()
_calls: dict[tuple[str, str], int] = {}
_in_flight = 0  # storage calls started and not yet returned, in every thread


def _freeze_after(op: str, name: str, count: int) -> None:
    def wrap(cls: type, label: str) -> None:
        original = getattr(cls, op)

        @functools.wraps(original)
        def call(self, *args, **kwargs):
            global _in_flight
            with _lock:
                if _frozen.is_set():
                    _lock.wait_for(lambda: False)  # never returns: the process is about to be killed
                _in_flight += 1
            result = original(self, *args, **kwargs)
            with _lock:
                _in_flight -= 1
                _lock.notify_all()
                key = (op, getattr(self, label))
                _calls[key] = _calls.get(key, 0) + 1
                if key == (op, name) and _calls[key] == count:
                    _frozen.set()
                    _lock.wait_for(lambda: _in_flight == 0)
                    print("FROZEN", flush=True)
                if _frozen.is_set():
                    _lock.wait_for(lambda: False)
            return result

        setattr(cls, op, call)

    if op in ("upload_blob", "delete_blob"):
        wrap(ContainerClient, "container_name")
    else:
        wrap(TableClient, "table_name")


def main(action: str, project_id: str, files: list[str]) -> None:
    op, name, count = os.environ["SEER_TEST_FREEZE_AT"].split(":")
    _freeze_after(op, name, int(count))
    account, settings = get_storage(), get_settings()
    if action == "upload":
        batch = [NewImage(data=Path(f).read_bytes(), name=Path(f).name) for f in files]
        create_images(account, settings, project_id, batch)
    else:
        delete_project(account, project_id)
    print("DONE", flush=True)  # the freeze point was never reached


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
