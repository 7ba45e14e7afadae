"""A project export as one Seer writes it and any Seer imports it (ExportProject / ImportProject).

The package is a JSON manifest in the exporting Seer's storage: the project's settings and domain, its tags, and
every image with its tags, regions, metadata and a time-limited read-only URL of its original bytes. The import
token names the package by a read-only URL and pins it by its sha256; it holds no key, only links that expire, so
anyone holding it can import the project until then and no one can change what it imports (each image's sha256 is
in the pinned manifest and is checked against the bytes fetched).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

PACKAGE_VERSION = 1
_SHA256 = r"^[0-9a-f]{64}$"


class PackagedTag(BaseModel):
    id: str  # the exporting project's id: images refer to their tags by it
    name: str
    description: str = ""
    type: str = "Regular"


class PackagedRegion(BaseModel):
    tag_id: str
    left: float
    top: float
    width: float
    height: float


class PackagedImage(BaseModel):
    url: str  # read-only, time-limited
    sha256: str = Field(pattern=_SHA256)
    width: int
    height: int
    tag_ids: list[str] = Field(default_factory=list)  # whole-image tags (region tags are in `regions`)
    regions: list[PackagedRegion] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)


class ProjectPackage(BaseModel):
    version: Literal[1] = PACKAGE_VERSION
    exported_at: datetime
    name: str
    description: str = ""
    domain_id: str
    classification_type: str | None = None
    target_export_platforms: list[str] = Field(default_factory=list)
    augmentation_methods: dict[str, bool] | None = None
    publish_better_retrains: bool = False  # Seer's project setting (packages written before it: off)
    unknown_detection: bool = False  # Seer's setting; packages written before it had none (off)
    tags: list[PackagedTag] = Field(default_factory=list)
    images: list[PackagedImage] = Field(default_factory=list)  # in creation order


class InvalidToken(ValueError):
    """The token is not one ExportProject wrote (bad base64, bad JSON, missing or malformed fields)."""


class ImportToken(BaseModel):
    """What the opaque `token` of ProjectExport holds: base64url (unpadded) of this model's JSON."""

    version: Literal[1] = PACKAGE_VERSION
    url: str  # read-only, time-limited URL of the package
    sha256: str = Field(pattern=_SHA256)  # of the package's bytes

    def encode(self) -> str:
        return base64.urlsafe_b64encode(self.model_dump_json().encode()).rstrip(b"=").decode()

    @classmethod
    def decode(cls, token: str) -> ImportToken:
        """Raises InvalidToken for anything but an encoded ImportToken."""
        try:
            raw = base64.urlsafe_b64decode(token.strip() + "=" * (-len(token.strip()) % 4))
            return cls.model_validate(json.loads(raw))
        except (binascii.Error, ValueError, ValidationError) as exc:  # JSON and UTF-8 errors are ValueErrors
            raise InvalidToken(str(exc)) from exc
