"""Custom Vision's domains, with their real ids, and the backbone each one trains on."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.api.wire.projects import Domain, ModelInformation

CLASSIFICATION = "Classification"
OBJECT_DETECTION = "ObjectDetection"
EXPORT_PLATFORMS = ["ONNX"]


@dataclass(frozen=True)
class DomainInfo:
    id: str
    name: str
    type: str
    compact: bool
    backbone: str
    description: str

    def to_wire(self) -> Domain:
        return Domain(
            id=self.id,
            name=self.name,
            type=self.type,
            exportable=self.compact,
            enabled=True,
            exportable_platforms=EXPORT_PLATFORMS if self.compact else [],
            model_information=ModelInformation(description=self.description),
        )


def _domain(id_: str, name: str, type_: str, compact: bool) -> DomainInfo:
    backbone = "efficientnet-lite0" if compact else "efficientnet-lite2"
    kind = "classifier" if type_ == CLASSIFICATION else "detector"
    size = "compact, exportable" if compact else "larger, more accurate"
    return DomainInfo(id_, name, type_, compact, backbone, f"{name} {kind} on {backbone} ({size}).")


DOMAINS: list[DomainInfo] = [
    _domain("ee85a74c-405e-4adc-bb47-ffa8ca0c9f31", "General", CLASSIFICATION, False),
    _domain("a8e3c40f-fb4a-466f-832a-5e457ae4a344", "General [A1]", CLASSIFICATION, False),
    _domain("2e37d7fb-3a54-486a-b4d6-cfc369af0018", "General [A2]", CLASSIFICATION, False),
    _domain("c151d5b5-dd07-472a-acc8-15d29dea8518", "Food", CLASSIFICATION, False),
    _domain("ca455789-012d-4b50-9fec-5bb63841c793", "Landmarks", CLASSIFICATION, False),
    _domain("b30a91ae-e3c1-4f73-a81e-c270bff27c39", "Retail", CLASSIFICATION, False),
    _domain("0732100f-1a38-4e49-a514-c9b44c697ab5", "General (compact)", CLASSIFICATION, True),
    _domain("a1db07ca-a19a-4830-bae8-e004a42dc863", "General (compact) [S1]", CLASSIFICATION, True),
    _domain("8882951b-82cd-4c32-970b-d5f8cb8bf6d7", "Food (compact)", CLASSIFICATION, True),
    _domain("b5cfd229-2ac7-4b2b-8d0a-2b0661344894", "Landmarks (compact)", CLASSIFICATION, True),
    _domain("6b4faeda-8396-481b-9f8b-177b9fa3097f", "Retail (compact)", CLASSIFICATION, True),
    _domain("da2e3a8a-40a5-4171-82f4-58522f70fbc1", "General", OBJECT_DETECTION, False),
    _domain("9c616dff-2e7d-ea11-af59-1866da359ce6", "General [A1]", OBJECT_DETECTION, False),
    _domain("1d8ffafe-ec40-4fb2-8f90-72b3b6cecea4", "Logo", OBJECT_DETECTION, False),
    _domain("3780a898-81c3-4516-81ae-3a139614e1f3", "Products on Shelves", OBJECT_DETECTION, False),
    _domain("a27d5ca5-bb19-49d8-a70a-fec086c47f5b", "General (compact)", OBJECT_DETECTION, True),
    _domain("7ec2ac80-887b-48a6-8df9-8b1357765430", "General (compact) [S1]", OBJECT_DETECTION, True),
]

DEFAULT_CLASSIFICATION_DOMAIN = DOMAINS[0].id
_BY_ID = {d.id: d for d in DOMAINS}


def find_domain(domain_id: str) -> DomainInfo | None:
    return _BY_ID.get(domain_id.lower())
