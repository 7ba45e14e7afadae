"""An iteration's export on the wire (the spec's Export), plus Seer's `precision` (pipeline.contract.exports),
`reason` (why a Failed export failed) and `parity` (how the export agreed with the service on the iteration's
training images): the spec's Export has no place for them, and the official SDK ignores them."""

from __future__ import annotations

from pipeline.api.wire.base import OmitsUnset, WireModel


class ExportParity(OmitsUnset, WireModel):
    """The export job's parity check (training_job.exports.parity): `agreement` is the share of the `images` that
    agreed under the precision's rule (FP32: every figure within tolerance; FP16 and INT8: the same top
    prediction), `unknownAgreement` (reduced-precision classifiers with an unknown score) the share whose unknown
    verdict stayed the same."""

    omitted_when_unset = ("unknown_agreement",)

    images: int
    agreement: float
    max_difference: float
    passed: bool
    unknown_agreement: float | None = None


class Export(OmitsUnset, WireModel):
    """`downloadUri` is a non-nullable string in the spec: left out until the export is Done."""

    omitted_when_unset = ("download_uri", "reason", "parity")

    platform: str
    status: str
    download_uri: str | None = None
    flavor: str | None = None
    newer_version_available: bool = False
    precision: str  # Seer's extension: FP32, FP16 or INT8
    reason: str | None = None  # Seer's extension: a Failed export's reason, e.g. its parity figures
    parity: ExportParity | None = None  # Seer's extension: the parity check's figures, once it ran
