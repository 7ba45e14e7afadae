"""Identity-based storage access against a real Azurite that accepts only Azure AD tokens (tests/oauth_storage.py):
tables, blobs and queues with a token credential and no key anywhere, and the API's image URLs as
user-delegation SAS that a plain HTTP GET downloads."""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob import BlobServiceClient
from fastapi.testclient import TestClient

from pipeline.api.app import create_app
from pipeline.core.settings import Settings
from pipeline.store import StorageAccount, StoragePolicy
from pipeline.store.identity import KEY_LIFETIME, REFRESH_MARGIN, DelegationKeys
from tests.conftest import PROJECTS, TRAINING_KEY
from tests.images import pattern_image
from tests.oauth_storage import STORAGE_AUDIENCE, AzuriteToken, OAuthAzurite, running_oauth_azurite

POLICY = StoragePolicy(timeout_seconds=10, retries=0, backoff_seconds=0.1)
DELEGATION_FIELDS = ("skoid", "sktid", "skt", "ske", "sks", "skv", "sig")


@pytest.fixture(scope="module")
def oauth_azurite() -> Iterator[OAuthAzurite]:
    with running_oauth_azurite() as azurite:
        yield azurite


@pytest.fixture(scope="module")
def token() -> AzuriteToken:
    return AzuriteToken()


@pytest.fixture(scope="module")
def identity_settings(oauth_azurite: OAuthAzurite) -> Settings:
    """Settings as an identity-based deployment has them: the SEER_DATA__* names, no connection string key."""
    identity = oauth_azurite.identity
    return Settings(
        data_account_name=identity.account_name,
        data_blob_service_uri=identity.blob_uri,
        data_queue_service_uri=identity.queue_uri,
        data_table_service_uri=identity.table_uri,
        training_key=TRAINING_KEY,
        allow_private_urls=True,
        training_queue="training-unattended",
    )


@pytest.fixture(scope="module")
def identity_account(
    identity_settings: Settings, oauth_azurite: OAuthAzurite, token: AzuriteToken
) -> StorageAccount:
    """The account the settings select, with the test's token standing in for DefaultAzureCredential (which
    has no way to reach Azurite) and the emulator's certificate trusted."""
    assert identity_settings.storage_identity == oauth_azurite.identity
    return StorageAccount(
        identity_settings.storage_identity,
        POLICY,
        credential=token,
        connection_verify=str(oauth_azurite.certificate),
    )


def _get(url: str, azurite: OAuthAzurite) -> httpx.Response:
    """A plain HTTP GET, as a browser or the SDK's user fetches an image URL (trusting the test certificate)."""
    return httpx.get(url, verify=ssl.create_default_context(cafile=azurite.certificate), timeout=10)


def test_tables_blobs_and_queues_work_with_a_token_and_no_key(
    identity_account: StorageAccount, token: AzuriteToken
) -> None:
    name = f"ident{uuid.uuid4().hex[:10]}"
    for client in (identity_account.tables, identity_account.blobs, identity_account.queues):
        assert client.credential is token
        assert not hasattr(client.credential, "account_key")

    table = identity_account.table(name)
    table.create_entity({"PartitionKey": "p", "RowKey": "r", "value": 7})
    entity = table.get_entity("p", "r")
    table.update_entity(
        {"PartitionKey": "p", "RowKey": "r", "value": 8},
        etag=entity.metadata["etag"],
        match_condition=MatchConditions.IfNotModified,
    )
    assert [e["value"] for e in table.query_entities("PartitionKey eq 'p'")] == [8]

    container = identity_account.container(name)
    container.upload_blob("a/b.bin", b"seer")
    assert container.download_blob("a/b.bin").readall() == b"seer"
    assert [b.name for b in container.list_blobs()] == ["a/b.bin"]

    queue = identity_account.queue(name)
    queue.send_message("hello")
    (message,) = queue.receive_messages(visibility_timeout=5)
    assert message.content == "hello"
    queue.delete_message(message)

    assert token.scopes and {scope for scopes in token.scopes for scope in scopes} == {
        f"{STORAGE_AUDIENCE}/.default"
    }


def test_the_emulator_refuses_requests_without_a_valid_token(oauth_azurite: OAuthAzurite) -> None:
    """So the test above proves the token authorised the calls: no credential, another audience or an expired
    token are all refused."""
    verify = str(oauth_azurite.certificate)
    blob_uri = oauth_azurite.identity.blob_uri
    with pytest.raises(HttpResponseError) as anonymous:
        next(iter(BlobServiceClient(blob_uri, connection_verify=verify).list_containers()))
    assert anonymous.value.status_code in (401, 403)
    for bad in (AzuriteToken(audience="https://vault.azure.net"), AzuriteToken(lifetime_seconds=-120)):
        client = BlobServiceClient(blob_uri, credential=bad, connection_verify=verify)
        with pytest.raises(ClientAuthenticationError):
            next(iter(client.list_containers()))


def test_api_image_urls_are_user_delegation_sas_that_a_plain_get_downloads(
    identity_settings: Settings, identity_account: StorageAccount, oauth_azurite: OAuthAzurite
) -> None:
    client = TestClient(
        create_app(identity_settings, identity_account), headers={"Training-Key": TRAINING_KEY}
    )
    project = client.post(PROJECTS, params={"name": f"ident-{uuid.uuid4()}"})
    assert project.status_code == 200, project.text
    at = f"{PROJECTS}/{project.json()['id']}"
    original = pattern_image(0, 1)
    uploaded = client.post(f"{at}/images", files=[("imageData", ("a.jpg", original, "image/jpeg"))])
    assert uploaded.status_code == 200, uploaded.text

    (image,) = client.get(f"{at}/images/untagged").json()
    for field in ("originalImageUri", "resizedImageUri", "thumbnailUri"):
        url = httpx.URL(image[field])
        assert url.host == "127.0.0.1" and url.scheme == "https"
        for name in DELEGATION_FIELDS:
            assert url.params.get(name), f"{field} lacks {name}: {url}"
        assert url.params["sp"] == "r"
        downloaded = _get(str(url), oauth_azurite)
        assert downloaded.status_code == 200, downloaded.text
        assert downloaded.headers["content-type"].startswith("image/")
        signature = url.params["sig"]
        other_first = "B" if signature[0] == "A" else "A"
        tampered = url.copy_set_param("sig", other_first + signature[1:])
        assert _get(str(tampered), oauth_azurite).status_code == 403
        assert _get(str(url.copy_with(query=None)), oauth_azurite).status_code in (401, 403, 404)
    assert _get(image["originalImageUri"], oauth_azurite).content == original


def _counting_key_fetches(account: StorageAccount, monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """Record every Get User Delegation Key the account's blob client makes (the real call still goes out)."""
    fetches: list[datetime] = []
    real = account.blobs.get_user_delegation_key

    def fetch(start: datetime, expiry: datetime, **kwargs: object):
        fetches.append(expiry)
        return real(start, expiry, **kwargs)

    monkeypatch.setattr(account.blobs, "get_user_delegation_key", fetch)
    return fetches


def test_one_delegation_key_serves_concurrent_urls(
    identity_settings: Settings,
    oauth_azurite: OAuthAzurite,
    token: AzuriteToken,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = StorageAccount(
        identity_settings.storage_identity,
        POLICY,
        credential=token,
        connection_verify=str(oauth_azurite.certificate),
    )
    fetches = _counting_key_fetches(account, monkeypatch)
    account.container("ident-concurrent").upload_blob("x.bin", b"x", overwrite=True)
    start = threading.Barrier(16)
    urls: list[str] = []

    def sign() -> None:
        start.wait()
        urls.append(account.read_url("ident-concurrent", "x.bin"))

    threads = [threading.Thread(target=sign) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(urls) == 16 and len(fetches) == 1
    assert {httpx.URL(url).params["skoid"] for url in urls} == {token.object_id}
    assert all(_get(url, oauth_azurite).content == b"x" for url in urls[:3])


def test_the_delegation_key_is_replaced_well_before_it_expires(
    identity_account: StorageAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetches = _counting_key_fetches(identity_account, monkeypatch)
    now = [datetime.now(UTC)]
    keys = DelegationKeys(identity_account.blobs, clock=lambda: now[0])
    day = timedelta(hours=24)

    first = keys.covering(now[0] + day)
    assert keys.covering(now[0] + day) is first and len(fetches) == 1
    # Still reused while a one-day SAS ends at least REFRESH_MARGIN before the key does ...
    now[0] += KEY_LIFETIME - day - REFRESH_MARGIN
    assert keys.covering(now[0] + day) is first and len(fetches) == 1
    # ... and replaced a minute later, about a day before the old key expires.
    now[0] += timedelta(minutes=1)
    second = keys.covering(now[0] + day)
    assert second is not first and len(fetches) == 2
    assert fetches[1] == now[0] + KEY_LIFETIME

    with pytest.raises(ValueError, match="at most"):
        keys.covering(now[0] + KEY_LIFETIME)
