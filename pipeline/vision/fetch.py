"""Fetch an image from a user-supplied URL without becoming a proxy into the private network.

Redirects are followed by hand (at most MAX_REDIRECTS) so every hop goes through `pipeline.core.outbound`'s
policy: its URL check before the hop, and its client's check of the address each connection reached.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import httpx

from pipeline.core.outbound import OutboundRefused, check_url, outbound_client
from pipeline.core.settings import Settings

MAX_REDIRECTS = 5


class FetchError(Exception):
    """The URL could not be fetched (Custom Vision reports this as ErrorSource)."""


class FetchTooLarge(FetchError):
    """The resource is larger than the caller's limit (reported as ErrorImageSize)."""


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


def fetch_url(
    url: str, settings: Settings, *, max_bytes: int, readable_endpoints: Iterable[str] = ()
) -> bytes:
    """The body of `url` (at most `max_bytes`), within `settings.url_fetch_timeout_seconds` overall: every
    redirect and every read waits at most for what is left of that time. `readable_endpoints` (Seer's own blob
    endpoint) may be reached at any address (pipeline.core.outbound).

    Raises FetchTooLarge past the cap and FetchError for anything else that goes wrong.
    """
    deadline = time.monotonic() + settings.url_fetch_timeout_seconds
    try:
        with outbound_client(settings, settings.url_fetch_timeout_seconds, readable_endpoints) as client:
            for _ in range(MAX_REDIRECTS + 1):
                check_url(url, settings, readable_endpoints=readable_endpoints)
                hop = httpx.Timeout(
                    _remaining(deadline)
                )  # each hop gets only what is left of the whole fetch
                with client.stream("GET", url, headers={"Accept": "image/*"}, timeout=hop) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"The server answered HTTP {response.status_code}.")
                    return _read_capped(response, max_bytes, deadline)
    except OutboundRefused as exc:
        raise FetchError(str(exc)) from exc
    except httpx.TimeoutException as exc:
        raise FetchError("The download took too long.") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"Could not download the image: {exc}") from exc
    except httpx.InvalidURL as exc:
        raise FetchError(f"Invalid URL {url!r}.") from exc
    raise FetchError(f"More than {MAX_REDIRECTS} redirects.")
