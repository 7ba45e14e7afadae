"""Exports: ExportIteration, GetExports and GetArtifact."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from pipeline.api.deps import ApiVersion, Config, Storage
from pipeline.api.mapping.exports import export_to_wire, platforms_in, require_platform_in
from pipeline.api.wire.exports import Export
from pipeline.services import exports

router = APIRouter(tags=["exports"])


@router.post("/projects/{project_id}/iterations/{iteration_id}/export", response_model=Export)
def export_iteration(
    project_id: str,
    iteration_id: str,
    storage: Storage,
    config: Config,
    version: ApiVersion,
    platform: str | None = Query(None),
    flavor: str | None = Query(None),
    precision: str | None = Query(None, description="Seer's extension: FP32 (default), FP16 or INT8"),
) -> Export:
    require_platform_in(version, platform)
    record = exports.request_export(storage, config, project_id, iteration_id, platform, flavor, precision)
    return export_to_wire(record, None)


@router.get("/projects/{project_id}/iterations/{iteration_id}/export", response_model=list[Export])
def get_exports(project_id: str, iteration_id: str, storage: Storage, version: ApiVersion) -> list[Export]:
    nameable = platforms_in(version)
    return [
        export_to_wire(record, exports.download_url(storage, record))
        for record in exports.list_exports(storage, project_id, iteration_id)
        if record.platform in nameable
    ]


@router.get("/projects/{project_id}/artifacts", response_class=StreamingResponse)
def get_artifact(project_id: str, storage: Storage, path: str = Query(...)) -> StreamingResponse:
    return StreamingResponse(
        exports.artifact(storage, project_id, path), media_type="application/octet-stream"
    )
