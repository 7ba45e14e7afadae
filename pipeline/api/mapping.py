"""The one place where records and service results become Custom Vision wire shapes."""

from __future__ import annotations

from pipeline.api.wire.projects import Domain, ModelInformation
from pipeline.core.domains import DomainInfo


def domain_to_wire(domain: DomainInfo) -> Domain:
    return Domain(
        id=domain.id,
        name=domain.name,
        type=domain.type,
        exportable=domain.compact,
        enabled=True,
        exportable_platforms=domain.export_platforms,
        model_information=ModelInformation(description=domain.description),
    )
