"""What the blob extension hands a function (the blob as an InputStream) and the message it queues per blob."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.functions.blob import InputStream
from pydantic import BaseModel, ConfigDict, Field

from devhost.app_loader import FunctionInfo
from devhost.invocation import convert_payload, invoke
from pipeline.store import StorageAccount

POISON_QUEUE = "webjobs-blobtrigger-poison"


@dataclass(frozen=True)
class BlobPath:
    """A trigger path such as `uploads/{name}`: the container, and a pattern whose {params} may span slashes."""

    container: str
    pattern: re.Pattern[str]
    prefix: str

    @classmethod
    def parse(cls, path: str) -> BlobPath:
        container, _, blob = path.partition("/")
        parts = re.split(r"(\{[^{}]+\})", blob or "{name}")
        regex = "".join(".+?" if part.startswith("{") else re.escape(part) for part in parts)
        return cls(container=container, pattern=re.compile(regex), prefix=parts[0])

    def matches(self, blob_name: str) -> bool:
        return self.pattern.fullmatch(blob_name) is not None


class BlobTriggerMessage(BaseModel):
    """The real host's BlobTriggerMessage: its internal blob queue and `webjobs-blobtrigger-poison` carry it as
    base64-encoded JSON. The ETag is in its header form (quoted)."""

    model_config = ConfigDict(populate_by_name=True)

    type: str = Field(default="BlobTrigger", alias="Type")
    function_id: str = Field(alias="FunctionId")
    blob_type: str = Field(alias="BlobType")
    container_name: str = Field(alias="ContainerName")
    blob_name: str = Field(alias="BlobName")
    etag: str = Field(alias="ETag")

    def encode(self) -> str:
        return base64.b64encode(self.model_dump_json(by_alias=True).encode("utf-8")).decode("ascii")

    @classmethod
    def decode(cls, content: str) -> BlobTriggerMessage:
        return cls.model_validate_json(base64.b64decode(content))


def quoted_etag(etag: str) -> str:
    """Listings and events give ETags bare; the host writes them quoted, as in the ETag header."""
    return etag if etag.startswith('"') else f'"{etag}"'


@dataclass(frozen=True)
class TriggerBlob:
    """One blob read for an invocation: its bytes and the InputStream the Python worker would pass."""

    data: bytes
    stream: InputStream

    @classmethod
    def read(cls, account: StorageAccount, container: str, name: str, etag: str | None = None) -> TriggerBlob:
        """Download the blob (only that version when `etag` is given); raises ResourceNotFoundError when it is gone
        and ResourceModifiedError when it changed."""
        client = account.container(container).get_blob_client(name)
        condition: dict[str, Any] = (
            {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        )
        downloader = client.download_blob(**condition)
        data = downloader.readall()
        properties = downloader.properties
        stream = InputStream(
            data=data,
            name=f"{container}/{name}",
            uri=client.url,
            length=properties.size,
            blob_properties={
                "ContentLength": properties.size,
                "ContentType": properties.content_settings.content_type,
                "ETag": properties.etag,
                "LastModified": properties.last_modified.isoformat() if properties.last_modified else None,
                "BlobType": properties.blob_type.value,
            },
            metadata=dict(properties.metadata or {}),
        )
        return cls(data=data, stream=stream)

    def invoke(self, function: FunctionInfo) -> None:
        """Run the function with this blob, as the worker converts it for the parameter's annotation."""
        invoke(
            function,
            convert_payload(function, self.data, self.stream),
            reason=f"New blob detected({self.stream.name})",
        )
