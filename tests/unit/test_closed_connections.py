"""Table writes survive a server closing the pooled connection they go out on (`pipeline.store.connections`), and
nothing else is sent twice. A loopback server plays storage, following a script of what to do with each request."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.data.tables import TableClient

from pipeline.store import StoragePolicy
from pipeline.store.connections import RESENDS

ANSWER = (
    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nETag: W/\"datetime'2026-12-05T00%3A00%3A00Z'\"\r\n\r\n"
)


class ScriptedStorage:
    """Reads whole requests and, in arrival order, answers ("answer"), closes the connection without a byte
    ("close"), or holds it unanswered ("stall")."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.released = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            while (request := _read_request(connection)) is not None:
                self.requests.append(request)
                action = self.script[min(len(self.requests), len(self.script)) - 1]
                if action == "close":
                    return
                if action == "stall":
                    self.released.wait()
                    return
                connection.sendall(ANSWER)

    def close(self) -> None:
        self.released.set()
        self.listener.close()


def _read_request(connection: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:  # the client went away mid-body
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def storage(request: pytest.FixtureRequest) -> Iterator[ScriptedStorage]:
    server = ScriptedStorage(request.param)
    yield server
    server.close()


def _client(port: int, timeout_seconds: float = 5.0) -> TableClient:
    key = base64.b64encode(bytes(64)).decode()
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    policy = StoragePolicy(timeout_seconds=timeout_seconds, retries=2, backoff_seconds=0)
    return TableClient.from_connection_string(connection, "things", **policy.table_options())


def _entity(row: int) -> dict[str, str]:
    return {"PartitionKey": "p", "RowKey": str(row), "Name": f"thing {row}"}


@pytest.mark.parametrize("storage", [["answer", "close", "answer"]], indirect=True)
def test_an_insert_on_a_connection_closed_unanswered_goes_out_again(storage: ScriptedStorage) -> None:
    client = _client(storage.port)
    client.create_entity(_entity(1))
    client.create_entity(_entity(2))  # the kept-alive connection is closed under it
    assert len(storage.requests) == 3
    assert storage.requests[1] == storage.requests[2]
    assert storage.connections == 2


@pytest.mark.parametrize("storage", [["close"]], indirect=True)
def test_a_server_that_never_answers_fails_after_the_resends(storage: ScriptedStorage) -> None:
    with pytest.raises(ServiceResponseError):
        _client(storage.port).create_entity(_entity(1))
    assert len(storage.requests) == 1 + RESENDS  # the SDK retries no POST after a read error


@pytest.mark.parametrize("storage", [["stall"]], indirect=True)
def test_a_request_that_timed_out_is_not_sent_again(storage: ScriptedStorage) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceResponseError):
        _client(storage.port, timeout_seconds=0.3).create_entity(_entity(1))
    assert time.monotonic() - started < 2
    assert len(storage.requests) == 1
