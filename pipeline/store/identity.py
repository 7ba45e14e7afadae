"""Identity-based access to Seer's data account: the Azure AD credential, and the user delegation key that signs
the read-only URLs the API hands out when no account key exists."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from azure.core.credentials import TokenCredential
from azure.storage.blob import BlobServiceClient, UserDelegationKey

# Azure issues a user delegation key for at most 7 days from the request; ask for less, backdated a little so a
# SAS signed at once is valid on a server whose clock runs behind.
KEY_LIFETIME = timedelta(days=6)
CLOCK_SKEW = timedelta(minutes=5)
# A key is replaced once a SAS signed with it would outlive it by less than this (a SAS stops working when its
# key expires).
REFRESH_MARGIN = timedelta(hours=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def identity_credential(client_id: str | None) -> TokenCredential:
    """DefaultAzureCredential: the app's or job's managed identity on Azure (the user-assigned one with
    `client_id`), a developer's Azure CLI login elsewhere. Imported here, not at the top: azure.identity and msal
    add about 0.07 s to every process's start (each training job's too), and connection-string deployments never
    use them."""
    from azure.identity import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(managed_identity_client_id=client_id)
    return DefaultAzureCredential()


class DelegationKeys:
    """The account's current user delegation key. Fetching one is a storage call made with the identity's token;
    signing with it is local, so one key serves every URL for days. Thread-safe: concurrent requests that find no
    usable key wait for the one fetch."""

    def __init__(self, blobs: BlobServiceClient, clock: Callable[[], datetime] = _utc_now) -> None:
        self._blobs = blobs
        self._clock = clock
        self._lock = threading.Lock()
        self._current: tuple[UserDelegationKey, datetime] | None = None

    def covering(self, expiry: datetime) -> UserDelegationKey:
        """A key still valid `REFRESH_MARGIN` after `expiry` (a SAS's end), fetching a new one when needed."""
        needed = expiry + REFRESH_MARGIN
        current = self._current
        if current is not None and current[1] >= needed:
            return current[0]
        with self._lock:
            current = self._current
            if current is None or current[1] < needed:
                now = self._clock()
                if needed > now + KEY_LIFETIME:
                    raise ValueError(
                        f"a user-delegation SAS can last at most {KEY_LIFETIME - REFRESH_MARGIN}"
                    )
                key_expiry = now + KEY_LIFETIME
                current = self._current = (
                    self._blobs.get_user_delegation_key(now - CLOCK_SKEW, key_expiry),
                    key_expiry,
                )
            return current[0]
