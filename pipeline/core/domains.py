"""Custom Vision's domains, with their real ids, and the backbone each one trains on."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import bad_request
from pipeline.core.vocabulary import DomainType

EXPORT_PLATFORMS = ["ONNX"]


@dataclass(frozen=True)
class DomainInfo:
    id: str
    name: str
    type: DomainType
    compact: bool
    backbone: str
    description: str

    @property
    def export_platforms(self) -> list[str]:
        return EXPORT_PLATFORMS if self.compact else []


def _domain(id_: str, name: str, type_: DomainType, compact: bool) -> DomainInfo:
    backbone = "efficientnet-lite0" if compact else "efficientnet-lite2"
    kind = "classifier" if type_ == DomainType.CLASSIFICATION else "detector"
    size = "compact, exportable" if compact else "larger, more accurate"
    return DomainInfo(id_, name, type_, compact, backbone, f"{name} {kind} on {backbone} ({size}).")


_CLASSIFICATION, _DETECTION = DomainType.CLASSIFICATION, DomainType.OBJECT_DETECTION
DOMAINS: list[DomainInfo] = [
    _domain("ee85a74c-405e-4adc-bb47-ffa8ca0c9f31", "General", _CLASSIFICATION, False),
    _domain("a8e3c40f-fb4a-466f-832a-5e457ae4a344", "General [A1]", _CLASSIFICATION, False),
    _domain("2e37d7fb-3a54-486a-b4d6-cfc369af0018", "General [A2]", _CLASSIFICATION, False),
    _domain("c151d5b5-dd07-472a-acc8-15d29dea8518", "Food", _CLASSIFICATION, False),
    _domain("ca455789-012d-4b50-9fec-5bb63841c793", "Landmarks", _CLASSIFICATION, False),
    _domain("b30a91ae-e3c1-4f73-a81e-c270bff27c39", "Retail", _CLASSIFICATION, False),
    _domain("0732100f-1a38-4e49-a514-c9b44c697ab5", "General (compact)", _CLASSIFICATION, True),
    _domain("a1db07ca-a19a-4830-bae8-e004a42dc863", "General (compact) [S1]", _CLASSIFICATION, True),
    _domain("8882951b-82cd-4c32-970b-d5f8cb8bf6d7", "Food (compact)", _CLASSIFICATION, True),
    _domain("b5cfd229-2ac7-4b2b-8d0a-2b0661344894", "Landmarks (compact)", _CLASSIFICATION, True),
    _domain("6b4faeda-8396-481b-9f8b-177b9fa3097f", "Retail (compact)", _CLASSIFICATION, True),
    _domain("da2e3a8a-40a5-4171-82f4-58522f70fbc1", "General", _DETECTION, False),
    _domain("9c616dff-2e7d-ea11-af59-1866da359ce6", "General [A1]", _DETECTION, False),
    _domain("1d8ffafe-ec40-4fb2-8f90-72b3b6cecea4", "Logo", _DETECTION, False),
    _domain("3780a898-81c3-4516-81ae-3a139614e1f3", "Products on Shelves", _DETECTION, False),
    _domain("a27d5ca5-bb19-49d8-a70a-fec086c47f5b", "General (compact)", _DETECTION, True),
    _domain("7ec2ac80-887b-48a6-8df9-8b1357765430", "General (compact) [S1]", _DETECTION, True),
]

DEFAULT_CLASSIFICATION_DOMAIN = DOMAINS[0].id
_BY_ID = {d.id: d for d in DOMAINS}


def find_domain(domain_id: str) -> DomainInfo | None:
    """The domain a client names, or None: for validating what a request asks for."""
    return _BY_ID.get(domain_id.lower())


def domain_of(domain_id: str) -> DomainInfo:
    """The domain of a stored project or iteration; an unknown id is refused rather than dereferenced as None."""
    domain = find_domain(domain_id)
    if domain is None:
        raise bad_request("BadRequestProjectUnknownDomain", f"Domain {domain_id} is not a known domain.")
    return domain
