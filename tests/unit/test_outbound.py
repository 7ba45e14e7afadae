"""The outbound-URL policy (`pipeline.core.outbound`), which image fetches and training notifications share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from pipeline.core.outbound import OutboundRefused, check_url, outbound_client
from pipeline.core.settings import Settings
from pipeline.vision.fetch import FetchError, fetch_url
from tests.serving import QuietHandler, handler_served

STRICT = Settings(allow_private_urls=False)
LENIENT = Settings(allow_private_urls=True)


def test_private_addresses_are_refused_unless_allowed():
    for url in (
        "http://127.0.0.1/a.jpg",
        "http://localhost/a.jpg",
        "http://[::ffff:10.0.0.1]/a",
        "http://169.254.169.254/",
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://[64:ff9b:1::a00:1]/",  # local-use NAT64 of 10.0.0.1
        "http://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo whose client is 127.0.0.1
    ):
        with pytest.raises(OutboundRefused):
            check_url(url, STRICT)
    for url in ("file:///etc/passwd", "gopher://x/", "http:///nohost", "ftp://example.com/"):
        with pytest.raises(OutboundRefused):
            check_url(url, LENIENT)
    check_url("http://127.0.0.1/a.jpg", LENIENT)


def test_urls_on_seers_own_storage_account_are_refused():
    """Whatever the addresses, and with every spelling of the account's path; other accounts on the same
    (path-style) host and other hosts pass."""
    own = ["http://127.0.0.1:10001/devstoreaccount1", "https://seer.queue.core.windows.net/"]
    for url in (
        "http://127.0.0.1:10001/devstoreaccount1/training",
        "http://127.0.0.1:10001/DevStoreAccount1/training?sv=x&sig=y",
        "http://127.0.0.1:10001/%64evstoreaccount1/training",
        "http://127.0.0.1:10001/other/../devstoreaccount1/training",
        "http://127.0.0.1:10001//devstoreaccount1/training",
        "https://SEER.queue.core.windows.net/training",
        "https://seer.queue.core.windows.net:443/anything?sig=y",
    ):
        with pytest.raises(OutboundRefused, match="own storage account"):
            check_url(url, LENIENT, own)
    check_url("http://127.0.0.1:10001/tenant/notify?sig=y", LENIENT, own)
    check_url("http://127.0.0.1:10002/devstoreaccount1/notify", LENIENT, own)
    check_url("https://tenant.queue.core.windows.net/notify?sig=y", LENIENT, own)


@pytest.fixture()
def counting_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback server that records every request it receives."""
    with _counting_server() as served:
        yield served


@contextlib.contextmanager
def _counting_server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    with handler_served(Handler) as url:
        yield url, seen


def test_the_connected_address_is_checked_before_anything_is_sent(counting_server):
    """As if DNS had answered a public address to `check_url` and loopback to the connection: the client itself
    refuses the connection, and the server never sees a request."""
    url, seen = counting_server
    with (
        outbound_client(STRICT, timeout=5) as client,
        pytest.raises(OutboundRefused, match=r"127\.0\.0\.1") as refused,
    ):
        client.get(f"{url}/secret")
    assert "SEER_ALLOW_PRIVATE_URLS" in str(refused.value)
    assert seen == []
    with outbound_client(LENIENT, timeout=5) as client:
        assert client.get(f"{url}/allowed").text == "ok"
    assert seen == ["/allowed"]


def test_fetch_reports_a_refused_url_as_a_fetch_error(counting_server):
    url, seen = counting_server
    with pytest.raises(FetchError, match="non-public") as refused:
        fetch_url(f"{url}/a.jpg", STRICT, max_bytes=1024)
    assert "SEER_ALLOW_PRIVATE_URLS" in str(refused.value)  # the error names the switch
    assert seen == []
    assert fetch_url(f"{url}/a.jpg", LENIENT, max_bytes=1024) == b"ok"


def test_seers_own_blob_endpoint_is_readable_at_a_private_address(counting_server):
    """Seer's own image URIs and export tokens are SAS links into its storage, which Azurite (or a private
    endpoint) serves on a private address: a download from that endpoint goes through, while another account on
    the same host, and another port, are still refused."""
    url, seen = counting_server
    endpoint = f"{url}/devstoreaccount1"
    got = fetch_url(f"{endpoint}/images/a.jpg?sig=x", STRICT, max_bytes=1024, readable_endpoints=[endpoint])
    assert got == b"ok"
    assert seen == ["/devstoreaccount1/images/a.jpg?sig=x"]
    with pytest.raises(FetchError, match="non-public"):
        fetch_url(f"{url}/otheraccount/a.jpg", STRICT, max_bytes=1024, readable_endpoints=[endpoint])
    with _counting_server() as (elsewhere, seen_elsewhere):
        with pytest.raises(OutboundRefused, match="non-public"):
            check_url(f"{elsewhere}/devstoreaccount1/a.jpg", STRICT, readable_endpoints=[endpoint])
        with (
            outbound_client(STRICT, timeout=5, readable_endpoints=[endpoint]) as client,
            pytest.raises(OutboundRefused, match="Refusing to connect"),
        ):
            client.get(
                f"{elsewhere}/devstoreaccount1/a.jpg"
            )  # the connection check exempts the endpoint's port
    assert seen == ["/devstoreaccount1/images/a.jpg?sig=x"] and seen_elsewhere == []
