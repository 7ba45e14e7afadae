"""Which storage access the settings select, without storage: `SEER_DATA__*` names an identity-based account
(DefaultAzureCredential, for the user-assigned identity's client id when given); without them the connection
string and its key work as before; and the outbound policy refuses the identity-based account's own endpoints."""

from __future__ import annotations

import azure.identity
import pytest
from pydantic import ValidationError

from pipeline.core.outbound import OutboundRefused
from pipeline.core.settings import DEV_ACCOUNT_KEY, Settings, StorageIdentity
from pipeline.store import StorageAccount
from pipeline.store.notification_queue import check_notification_queue

CLIENT_ID = "6d1c3b8e-5f0a-4c39-9a62-0f3f7a9c2b11"


class RecordedCredential:
    """Stands in for DefaultAzureCredential to record how the store built it (nothing here asks for a token)."""

    def __init__(self, **options: str) -> None:
        self.options = options

    def get_token(self, *scopes: str, **kwargs: object):
        raise AssertionError("no token is needed to build the clients")


@pytest.fixture()
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    # pipeline.store.identity imports DefaultAzureCredential where it uses it, so the stand-in goes on azure.identity
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", RecordedCredential)


def test_the_functions_host_setting_names_select_identity_based_access(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEER_DATA__accountName", "seerdata")
    monkeypatch.setenv("SEER_DATA__clientId", CLIENT_ID)
    assert Settings().storage_identity == StorageIdentity(
        "seerdata",
        "https://seerdata.blob.core.windows.net",
        "https://seerdata.queue.core.windows.net",
        "https://seerdata.table.core.windows.net",
        CLIENT_ID,
    )
    monkeypatch.setenv("SEER_DATA__blobServiceUri", "https://blobs.example.net/seer")
    monkeypatch.setenv("SEER_DATA__queueServiceUri", "https://queues.example.net/seer")
    monkeypatch.setenv("SEER_DATA__tableServiceUri", "https://tables.example.net/seer")
    identity = Settings().storage_identity
    assert identity is not None
    assert (identity.blob_uri, identity.queue_uri, identity.table_uri) == (
        "https://blobs.example.net/seer",
        "https://queues.example.net/seer",
        "https://tables.example.net/seer",
    )


def test_endpoints_without_an_account_name_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEER_DATA__queueServiceUri", "https://queues.example.net/seer")
    with pytest.raises(
        ValidationError, match="SEER_DATA__queueServiceUri set without SEER_DATA__accountName"
    ):
        Settings()


def test_identity_based_access_uses_default_azure_credential_with_the_client_id(recorded: None) -> None:
    account = StorageAccount.from_settings(Settings(data_account_name="seerdata", data_client_id=CLIENT_ID))
    credential = account.blobs.credential
    assert isinstance(credential, RecordedCredential)
    assert credential.options == {"managed_identity_client_id": CLIENT_ID}
    assert account.tables.credential is credential and account.queues.credential is credential
    assert account.blobs.url.startswith("https://seerdata.blob.core.windows.net")
    assert account.tables.url.startswith("https://seerdata.table.core.windows.net")
    assert account.queues.url.startswith("https://seerdata.queue.core.windows.net")

    without_client_id = StorageAccount.from_settings(Settings(data_account_name="seerdata"))
    assert without_client_id.blobs.credential.options == {}


def test_without_identity_settings_the_connection_string_key_signs_urls() -> None:
    settings = Settings(storage_connection_string="UseDevelopmentStorage=true")
    assert settings.storage_identity is None
    account = StorageAccount.from_settings(settings)
    assert account.blobs.credential.account_key == DEV_ACCOUNT_KEY
    url = account.read_url("images", "p/original/i")  # signing is local: no storage call
    assert "sig=" in url and "skoid=" not in url


def test_urls_on_the_identity_based_accounts_endpoints_are_refused(recorded: None) -> None:
    lenient = Settings(allow_private_urls=True)  # no DNS: only the own-account rule is under test
    for settings, own in (
        (Settings(data_account_name="seerdata"), "https://seerdata.queue.core.windows.net/training?sig=x"),
        (
            Settings(
                data_account_name="seerdata", data_queue_service_uri="https://queues.example.net:8443/seer"
            ),
            "https://queues.example.net:8443/seer/training?sig=x",
        ),
    ):
        account = StorageAccount.from_settings(settings)
        with pytest.raises(OutboundRefused, match="own storage account"):
            check_notification_queue(account, lenient, own)
        for endpoint in (account.blobs.url, account.tables.url):
            with pytest.raises(OutboundRefused, match="own storage account"):
                check_notification_queue(account, lenient, f"{endpoint.rstrip('/')}/x")
    check_notification_queue(account, lenient, "https://tenant.queue.core.windows.net/notify?sig=x")
    check_notification_queue(account, lenient, "https://queues.example.net:8443/tenant/notify?sig=x")
