"""Serves the portal: `/` is the single-page app, `/portal/...` its static assets (no key needed for either).

The page loads one script, `dist/portal.js`: the modules under `js/` bundled by esbuild (`npm run build:portal`,
which scripts/setup.sh runs), because a browser fetching 33 modules level by level takes several round trips
before the first page shows (bench/portal_load.py measures both)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from pipeline.contract.exports import SUPPORTED

STATIC = Path(__file__).parent / "static"
BUNDLE = STATIC / "dist" / "portal.js"
NOT_BUILT = (
    "<!doctype html><title>Seer</title><p>The portal's script is not built. Run <code>scripts/setup.sh</code> "
    "(or <code>npm run build:portal</code>) and reload.</p>"
)

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


@router.get("/", response_model=None)
async def index() -> FileResponse | HTMLResponse:
    if not BUNDLE.exists():
        return HTMLResponse(NOT_BUILT, status_code=503)
    return FileResponse(
        STATIC / "index.html",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )
