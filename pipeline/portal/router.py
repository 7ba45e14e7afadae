"""Serves the portal: `/` is the single-page app, `/portal/...` its static assets (no key needed for either)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from pipeline.contract.exports import SUPPORTED

STATIC = Path(__file__).parent / "static"

# Everything the page loads comes from this origin; images also come from blob storage (SAS URLs on another host).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob: http: https:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/portal/export-options.json")
async def export_options() -> dict[str, dict[str, list[str | None]]]:
    """What the Export dialog offers: Seer's export platforms with their flavors and precisions (one source for
    the API's validation, the export job and the portal)."""
    return {
        platform: {"flavors": list(spec.flavors), "precisions": list(spec.precisions)}
        for platform, spec in SUPPORTED.items()
    }


router.mount(
    "/portal", StaticFiles(directory=STATIC), name="portal"
)  # after the route above, which it would hide


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(
        STATIC / "index.html",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )
