"""Fetch an image from a user-supplied URL without becoming a proxy into the private network.

Every hop (redirects are followed by hand, at most MAX_REDIRECTS) is checked twice: the hostname's addresses before
connecting, and the address actually connected to, which catches DNS that changes between the two (rebinding).
Loopback, private, link-local, reserved, multicast and other non-global addresses are refused unless
`settings.allow_private_urls` is set (tests, or a deployment that really fetches from its own network).
Proxies from the environment are ignored for the same reason: the peer check must see the real server.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx

from pipeline.core.settings import Settings

MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchError(Exception):
    """The URL could not be fetched (Custom Vision reports this as ErrorSource)."""


class FetchTooLarge(FetchError):
    """The resource is larger than the caller's limit (reported as ErrorImageSize)."""


# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use): the last 32 bits are the IPv4 address reached.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: mapped, 6to4, Teredo (server and client), NAT64."""
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if any(ip in network for network in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in found if address is not None]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    reached = [ip, *(_embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else ())]
    return all(each.is_global and not each.is_multicast for each in reached)


def check_url(url: str, settings: Settings) -> None:
    """Refuse anything but http(s) to a public address; raises FetchError."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError as exc:
        raise FetchError(f"Invalid URL {url!r}.") from exc
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise FetchError(f"Only http and https URLs can be fetched, not {url!r}.")
    if settings.allow_private_urls:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"Cannot resolve {parts.hostname!r}.") from exc
    refused = sorted({info[4][0] for info in infos if not _is_public(info[4][0])})
    if refused:
        raise FetchError(f"{parts.hostname!r} resolves to a non-public address ({', '.join(refused)}).")


def _check_peer(response: httpx.Response, settings: Settings) -> None:
    if settings.allow_private_urls:
        return
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if peer is None or not _is_public(peer[0]):
        raise FetchError(f"Refusing to read from {peer[0] if peer else 'an unknown address'}.")


def _read_capped(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchTooLarge(f"The image is {declared} bytes; the limit is {max_bytes} bytes.")
    chunks: list[bytes] = []
    received = 0
    for chunk in response.iter_bytes():
        received += len(chunk)
        if received > max_bytes:
            raise FetchTooLarge(f"The image is larger than the limit of {max_bytes} bytes.")
        if time.monotonic() > deadline:
            raise FetchError("The download took too long.")
        chunks.append(chunk)
    return b"".join(chunks)


def _remaining(deadline: float) -> float:
    """Seconds left before `deadline`; past it, the fetch has taken too long."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("The download took too long.")
    return left


def fetch_url(url: str, settings: Settings, *, max_bytes: int) -> bytes:
    """The body of `url` (at most `max_bytes`), within `settings.url_fetch_timeout_seconds` overall: every
    redirect and every read waits at most for what is left of that time.

    Raises FetchTooLarge past the cap and FetchError for anything else that goes wrong.
    """
    deadline = time.monotonic() + settings.url_fetch_timeout_seconds
    try:
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                check_url(url, settings)
                hop = httpx.Timeout(
                    _remaining(deadline)
                )  # each hop gets only what is left of the whole fetch
                with client.stream("GET", url, headers={"Accept": "image/*"}, timeout=hop) as response:
                    _check_peer(response, settings)
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"The server answered HTTP {response.status_code}.")
                    return _read_capped(response, max_bytes, deadline)
    except httpx.TimeoutException as exc:
        raise FetchError("The download took too long.") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"Could not download the image: {exc}") from exc
    except httpx.InvalidURL as exc:
        raise FetchError(f"Invalid URL {url!r}.") from exc
    raise FetchError(f"More than {MAX_REDIRECTS} redirects.")
