"""An Azurite that accepts only Azure AD tokens, as an identity-based Storage account does.

Azurite's `--oauth basic` (node_modules/azurite/dist/src/*/authentication/*TokenAuthenticator.js) checks a
bearer token's claims without its signature: `nbf`, `exp` and `iat` present and now within [nbf, exp]; `iss`
starting with https://sts.windows.net/ (or another Azure AD authority); `aud` https://storage.azure.com (or the
account's service URL); and it refuses bearer tokens over plain HTTP, so the emulator serves HTTPS with a
certificate made here. Its Get User Delegation Key derives the key from the token's `oid` and `tid`, and its SAS
check recomputes it from the SAS's `skoid`/`sktid`/`skt`/`ske`/`skv`: a user-delegation SAS is verified for real.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devhost.azurite import Azurite, Ports
from devhost.ports import LOOPBACK
from pipeline.core.settings import DEV_ACCOUNT, StorageIdentity

STORAGE_AUDIENCE = "https://storage.azure.com"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def _segment(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@dataclass
class AzuriteToken:
    """A TokenCredential whose tokens carry the claims Azurite's basic OAuth checks (unsigned: it checks no
    signature). Records the scopes it was asked for, to show which audience the SDKs request."""

    audience: str = STORAGE_AUDIENCE
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    lifetime_seconds: int = 3600
    scopes: list[tuple[str, ...]] = field(default_factory=list)

    def get_token(self, *scopes: str, **_options: object) -> AccessToken:
        self.scopes.append(scopes)
        now = int(time.time())
        claims = {
            "aud": self.audience,
            "iss": f"https://sts.windows.net/{TENANT}/",
            "iat": now,
            "nbf": now - 60,
            "exp": now + self.lifetime_seconds,
            "oid": self.object_id,
            "tid": TENANT,
        }
        token = f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."
        return AccessToken(token, now + self.lifetime_seconds)


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the loopback address (and localhost); returns (certificate, key) PEM files.
    The certificate is its own authority, so clients trust it by naming the file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seer-tests-azurite")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "azurite.crt", directory / "azurite.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass(frozen=True)
class OAuthAzurite:
    """A running OAuth-only Azurite: the data account's identity (endpoints, no key) and the certificate file
    clients must trust."""

    identity: StorageIdentity
    certificate: Path


@contextlib.contextmanager
def running_oauth_azurite() -> Iterator[OAuthAzurite]:
    """A second, in-memory Azurite on free ports with HTTPS and basic OAuth, for the block."""
    with tempfile.TemporaryDirectory(prefix="seer-oauth-azurite-") as scratch:
        cert, key = write_certificate(Path(scratch))
        ports = Ports.free()
        azurite = Azurite(
            ports, quiet=True, extra_options=("--oauth", "basic", "--cert", str(cert), "--key", str(key))
        )
        azurite.start()
        try:
            yield OAuthAzurite(
                StorageIdentity.for_account(
                    DEV_ACCOUNT,
                    blob_uri=f"https://{LOOPBACK}:{ports.blob}/{DEV_ACCOUNT}",
                    queue_uri=f"https://{LOOPBACK}:{ports.queue}/{DEV_ACCOUNT}",
                    table_uri=f"https://{LOOPBACK}:{ports.table}/{DEV_ACCOUNT}",
                ),
                cert,
            )
        finally:
            azurite.stop()
