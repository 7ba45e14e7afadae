"""Export records as wire shapes."""

from __future__ import annotations

from pipeline.api.wire.exports import Export
from pipeline.store.exports import ExportRecord


def export_to_wire(record: ExportRecord, download_uri: str | None) -> Export:
    return Export(
        platform=record.platform,
        status=record.status,
        download_uri=download_uri,
        flavor=record.flavor,
        newer_version_available=False,
        precision=record.precision,
    )
