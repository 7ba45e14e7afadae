"""How the storage clients' HTTP sessions meet the network: the environment's proxy and CA settings read once, and
table sessions that send a request again when the server had closed its pooled connection.

requests, with `trust_env` (its default, and azure-core's), reads the environment again for every request: it walks
all of os.environ twice for proxies and NO_PROXY and looks for a .netrc file. Against Azurite, with this machine's
35 to 38 variables (a Functions host sets many more), that was 3 to 17 % of a storage call's CPU: a queue receive
1.96 ms against 1.64 without it, a 30 KB blob download 2.43 against 2.01 and 1.90 against 1.84, an entity read
1.69 against 1.56 (throwaway A/Bs, medians of 5 x 200 calls). It is paid on every storage call: the standby
training execution's polls, each image a training run loads. `environment_options` reads what those lookups would
find for an endpoint once, as client options.

A server closes a keep-alive connection it has left idle (Azurite after 5 s, Azure's load balancers after minutes).
A request that goes out on it at that moment meets a connection closed without a byte of answer (http.client's
`RemoteDisconnected`). The blob and queue SDKs retry that; the tables SDK retries no POST or PATCH after a read error
(azure-core's method rule), so an entity insert, merge or transaction failed outright, as a 503 from the API.

The server never read such a request, so sending it again on a new connection is what browsers do. A server that
answers nothing after acting on a request (one that crashes mid-request) could see it twice: an insert then answers
409 and a merge writes the same values again.
"""

from __future__ import annotations

from http.client import RemoteDisconnected
from types import TracebackType
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import ProtocolError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

RESENDS = 2
"""How many new connections one request may try: the pool can hold more than one connection the server closed in
the same moment."""


def closed_unanswered(error: Exception | None) -> bool:
    """Whether urllib3's error is a connection the server closed before answering a byte."""
    return isinstance(error, ProtocolError) and any(isinstance(arg, RemoteDisconnected) for arg in error.args)


class ResendUnanswered(Retry):
    """urllib3's retries reduced to one rule: a request whose connection closed unanswered goes out again, up to
    `total` times. Any other error is raised at once, as with azure-core's own disabled urllib3 retries, for the
    SDK's retry policy to judge. urllib3 logs each resend as a warning."""

    @classmethod
    def up_to(cls, resends: int) -> ResendUnanswered:
        return cls(total=resends, allowed_methods=None, redirect=False, respect_retry_after_header=False)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if error is not None and not (self.total and closed_unanswered(error)):
            raise error.with_traceback(_stacktrace)
        return super().increment(method, url, response, error, _pool, _stacktrace)


def environment_options(endpoint: str) -> dict[str, Any]:
    """Client options for `endpoint` with what requests would take from the environment on each request: the
    HTTP(S)_PROXY proxies unless NO_PROXY names its host, and a REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE; and
    `use_env_settings` off, so the session no longer reads it per request (nor uses a .netrc file, which would
    replace the storage authorisation header)."""
    with requests.Session() as session:
        found = session.merge_environment_settings(endpoint, {}, None, None, None)
    options: dict[str, Any] = {"use_env_settings": False}
    if found["proxies"]:
        options["proxies"] = found["proxies"]
    if isinstance(found["verify"], str):
        options["connection_verify"] = found["verify"]
    return options


def table_session() -> requests.Session:
    """A new session for one table client (each keeps its own connection pool, as the SDK's default does). It
    reads nothing from the environment: the client passes `environment_options` per request (`use_env_settings`
    applies only to sessions azure-core makes itself)."""
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(max_retries=ResendUnanswered.up_to(RESENDS))
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return session
