"""The one Azurite launcher as the local host uses it: data kept under a directory, an emulator already on the
ports reused rather than doubled. (Every other test runs on the session's in-memory one, `running_azurite`.)"""

from __future__ import annotations

from pathlib import Path

from azure.storage.blob import BlobServiceClient

from devhost.azurite import Azurite, Ports
from devhost.ports import listening


def test_data_under_location_survives_a_restart_and_a_running_emulator_is_reused(tmp_path: Path) -> None:
    ports, location = Ports.free(), tmp_path / "azurite"
    first = Azurite(ports, location, quiet=True)
    first.start()
    try:
        blobs = BlobServiceClient.from_connection_string(first.connection_string)
        blobs.create_container("kept").upload_blob("note.txt", b"still here")
        again = Azurite(ports, location, quiet=True)
        again.start()  # all three ports listen: uses the running one
        again.stop()  # and leaves it alone
        assert listening(ports.blob)
    finally:
        first.stop()
    assert not any(listening(port) for port in (ports.blob, ports.queue, ports.table))

    second = Azurite(ports, location, quiet=True)
    second.start()
    try:
        blobs = BlobServiceClient.from_connection_string(second.connection_string)
        assert blobs.get_container_client("kept").download_blob("note.txt").readall() == b"still here"
    finally:
        second.stop()
