"""An iteration's export on the wire (the spec's Export), plus Seer's `precision` (pipeline.contract.exports) and
`reason` (why a Failed export failed; the spec's Export has no place for it, and the official SDK ignores it)."""

from __future__ import annotations

from pipeline.api.wire.base import OmitsUnset


class Export(OmitsUnset):
    """`downloadUri` is a non-nullable string in the spec: left out until the export is Done."""

    omitted_when_unset = ("download_uri", "reason")

    platform: str
    status: str
    download_uri: str | None = None
    flavor: str | None = None
    newer_version_available: bool = False
    precision: str  # Seer's extension: FP32, FP16 or INT8
    reason: str | None = None  # Seer's extension: a Failed export's reason, e.g. its parity figures
