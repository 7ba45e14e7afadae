"""Export records as wire shapes, and the platforms each API version can name (OpenVino exists in the
v3.4-preview description only; a v3.3 client's enums know no such value)."""

from __future__ import annotations

from pipeline.api.wire.exports import Export, ExportParity
from pipeline.contract.exports import SUPPORTED, ExportPlatform
from pipeline.core.errors import bad_request
from pipeline.core.vocabulary import ExportStatus
from pipeline.store.records import ExportRecord

PREVIEW = "v3.4-preview"
PREVIEW_PLATFORMS = {ExportPlatform.OPENVINO}


def platforms_in(version: str) -> list[ExportPlatform]:
    """The platforms Seer exports that API `version` can name: an iteration's `exportableTo`."""
    return [p for p in SUPPORTED if version == PREVIEW or p not in PREVIEW_PLATFORMS]


def require_platform_in(version: str, platform: str | None) -> None:
    """Refuse a platform the API version does not define, as an unknown one."""
    if version != PREVIEW and (platform or "").lower() in {p.value.lower() for p in PREVIEW_PLATFORMS}:
        raise bad_request(
            "BadRequestExportValidationFailed", f"platform {platform} needs API version {PREVIEW}."
        )


def export_to_wire(record: ExportRecord, download_uri: str | None) -> Export:
    return Export(
        platform=record.platform,
        status=record.status,
        download_uri=download_uri,
        flavor=record.flavor,
        newer_version_available=False,
        precision=record.precision,
        reason=record.reason if record.status == ExportStatus.FAILED else None,
        parity=ExportParity.model_validate(record.parity) if record.parity else None,
    )
