"""The one policy for requests Seer sends to a URL a user supplied (image URLs, notification queues).

- Only http and https, to a named host.
- Only public addresses, unless `settings.allow_private_urls` (tests, or a deployment that really fetches from
  its own network): loopback, private, link-local, reserved, multicast and other non-global addresses are refused,
  and so are IPv6 addresses that lead to them (IPv4-mapped, 6to4, Teredo, NAT64).
- The address is checked twice: the hostname's addresses before connecting (a clear error early), and the address
  each new connection actually reached, before a byte is written to it, which catches DNS that changes between the
  two (rebinding). Proxies from the environment are ignored so the check sees the real server.
- A URL on one of `own_endpoints` (Seer's storage account) is refused whatever the addresses: Seer never sends a
  user's request to its own account, so a user cannot make it use its credential or reach its internal queues.
- A download from one of `readable_endpoints` (Seer's own blob endpoint, which the operator configured) is let
  through whatever its address: an image URI or ExportProject token that Seer handed out is a SAS link into its own
  storage, on loopback under Azurite or on a private endpoint, and Custom Vision takes its own links back. The
  request carries only the credential in the URL, never Seer's, so storage decides what it may read.
"""

from __future__ import annotations

import ipaddress
import posixpath
import socket
import typing
from collections.abc import Iterable
from urllib.parse import SplitResult, unquote, urlsplit

import httpcore
import httpx

from pipeline.core.settings import Settings

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Named in the refusal, so whoever runs Seer on a private network learns the switch from the error itself.
PRIVATE_URLS_HINT = (
    "Seer fetches images only from public addresses unless its SEER_ALLOW_PRIVATE_URLS setting is true."
)
# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use): the last 32 bits are the IPv4 address reached.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class OutboundRefused(Exception):
    """The policy refuses this URL or the address it reached; the message says why, for the client."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: mapped, 6to4, Teredo (server and client), NAT64."""
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if any(ip in network for network in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in found if address is not None]


def is_public(address: str) -> bool:
    """True for a global unicast address, and for IPv6 only if every IPv4 address it embeds is one too."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    reached = [ip, *(_embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else ())]
    return all(each.is_global and not each.is_multicast for each in reached)


def _parse(url: str) -> tuple[SplitResult, int]:
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError as exc:
        raise OutboundRefused(f"Invalid URL {url!r}.") from exc
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or port is None:
        raise OutboundRefused(f"Only http and https URLs are allowed, not {url!r}.")
    return parts, port


def _account_path(path: str) -> list[str]:
    """The path's segments as a server sees them (percent-decoded, dot segments resolved, any case)."""
    normal = posixpath.normpath("/" + unquote(path).lower())
    return [segment for segment in normal.split("/") if segment]


def _on_endpoint(parts: SplitResult, port: int, endpoint: str) -> bool:
    """Whether the URL is on `endpoint`: the same host and port and, for a path-style endpoint (Azurite's
    `http://host:port/account`), under its path."""
    own, own_port = _parse(endpoint)
    if (parts.hostname, port) != (own.hostname, own_port):
        return False
    prefix = _account_path(own.path)
    return _account_path(parts.path)[: len(prefix)] == prefix


def check_url(
    url: str, settings: Settings, own_endpoints: Iterable[str] = (), readable_endpoints: Iterable[str] = ()
) -> None:
    """Refuse (OutboundRefused) anything but http(s) to a public address or to one of `readable_endpoints`, and
    anything on `own_endpoints`."""
    parts, port = _parse(url)
    if any(_on_endpoint(parts, port, endpoint) for endpoint in own_endpoints):
        raise OutboundRefused("The URL points at Seer's own storage account, which it does not send to.")
    if settings.allow_private_urls or any(_on_endpoint(parts, port, e) for e in readable_endpoints):
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundRefused(f"Cannot resolve {parts.hostname!r}.") from exc
    refused = sorted({str(info[4][0]) for info in infos if not is_public(str(info[4][0]))})
    if refused:
        raise OutboundRefused(
            f"{parts.hostname!r} resolves to a non-public address ({', '.join(refused)}). {PRIVATE_URLS_HINT}"
        )


class _PublicPeersOnly(httpcore.SyncBackend):
    """Connects as httpcore does, then closes any connection whose peer is not public, before TLS or the request
    is written: the check is on the socket itself, so no DNS answer can route around it. Connections to the
    `exempt` hosts and ports (the readable endpoints') are not checked."""

    def __init__(self, exempt: frozenset[tuple[str, int]]) -> None:
        self.exempt = exempt

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(host, port, timeout, local_address, socket_options)
        if (host.lower(), port) in self.exempt:
            return stream
        peer = stream.get_extra_info("server_addr")
        if peer is None or not is_public(peer[0]):
            stream.close()
            address = peer[0] if peer else "an unknown address"
            raise OutboundRefused(f"Refusing to connect to {address}. {PRIVATE_URLS_HINT}")
        return stream


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a pool whose every new connection goes through `_PublicPeersOnly` (httpx takes no
    network backend of its own, so the pool is replaced here)."""

    def __init__(self, exempt: frozenset[tuple[str, int]]) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=_PublicPeersOnly(exempt)
        )


def outbound_client(
    settings: Settings, timeout: float, readable_endpoints: Iterable[str] = ()
) -> httpx.Client:
    """The client every user-directed request goes through: no proxies, no automatic redirects (each hop must be
    checked with `check_url`), `timeout` per operation, and the connected-peer check unless private URLs are
    allowed (connections to `readable_endpoints`' hosts and ports excepted)."""
    if settings.allow_private_urls:
        transport = httpx.HTTPTransport(trust_env=False)
    else:
        exempt = frozenset((parts.hostname or "", port) for parts, port in map(_parse, readable_endpoints))
        transport = _GuardedTransport(exempt)
    return httpx.Client(transport=transport, follow_redirects=False, trust_env=False, timeout=timeout)
