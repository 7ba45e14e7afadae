"""GetDomains / GetDomain."""

from __future__ import annotations

from fastapi import APIRouter

from pipeline.api.mapping.projects import domain_to_wire
from pipeline.api.wire.projects import Domain
from pipeline.core.domains import DOMAINS, find_domain
from pipeline.core.errors import not_found

router = APIRouter(tags=["domains"])


# Async (no worker thread) and no storage: these answer even when every thread waits on storage.
@router.get("/domains", response_model=list[Domain])
async def get_domains() -> list[Domain]:
    return [domain_to_wire(d) for d in DOMAINS]


@router.get("/domains/{domain_id}", response_model=Domain)
async def get_domain(domain_id: str) -> Domain:
    domain = find_domain(domain_id)
    if domain is None:
        raise not_found("NotFoundDomain", f"Domain {domain_id} not found.")
    return domain_to_wire(domain)
