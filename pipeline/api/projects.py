"""Projects: create, list, get, update, delete."""

from __future__ import annotations

from fastapi import APIRouter, Body, Query, Response
from fastapi.concurrency import run_in_threadpool

from pipeline.api.deps import Config, Engine, Storage, UrlFetches
from pipeline.api.mapping.projects import project_to_wire
from pipeline.api.wire.projects import (
    CreateProjectOptions,
    ImageProcessingSettings,
    Project,
    ProjectExport,
    ProjectSettings,
    ProjectUpdate,
)
from pipeline.services import project_export, project_import
from pipeline.services import projects as service
from pipeline.store.records import ProjectRecord

router = APIRouter(tags=["projects"])


def _wire(storage: Storage, project: ProjectRecord) -> Project:
    return project_to_wire(project, service.project_thumbnail(storage, project))


@router.get("/projects", response_model=list[Project])
def get_projects(storage: Storage) -> list[Project]:
    return [_wire(storage, p) for p in service.list_projects(storage)]


@router.post("/projects", response_model=Project)
def create_project(
    storage: Storage,
    config: Config,
    name: str | None = None,
    description: str | None = None,
    domain_id: str | None = Query(None, alias="domainId"),
    classification_type: str | None = Query(None, alias="classificationType"),
    target_export_platforms: str | None = Query(None, alias="targetExportPlatforms"),
    options: CreateProjectOptions | None = Body(default=None),
) -> Project:
    project = service.create_project(
        storage,
        config,
        name,
        description,
        domain_id,
        classification_type,
        [p for p in (target_export_platforms or "").split(",") if p],
        notification_queue_uri=options.notification_queue_uri if options else None,
        export_model_container_uri=options.export_model_container_uri if options else None,
    )
    return _wire(storage, project)


@router.get("/projects/{project_id}", response_model=Project)
def get_project(project_id: str, storage: Storage) -> Project:
    return _wire(storage, service.get_project(storage, project_id))


@router.patch("/projects/{project_id}", response_model=Project)
def update_project(
    project_id: str, storage: Storage, config: Config, engine: Engine, update: ProjectUpdate = Body(...)
) -> Project:
    settings = update.settings or ProjectSettings()
    processing = settings.image_processing_settings or ImageProcessingSettings()
    changes = service.ProjectChanges(
        name=update.name,
        description=update.description,
        domain_id=settings.domain_id,
        classification_type=settings.classification_type,
        target_export_platforms=settings.target_export_platforms,
        augmentation_methods=processing.augmentation_methods,
        notification_queue_uri=settings.notification_queue_uri,
        export_model_container_uri=settings.export_model_container_uri,
        publish_better_retrains=settings.publish_better_retrains,
        unknown_detection=settings.unknown_detection,
    )
    updated = service.update_project(storage, config, project_id, changes)
    engine.published.forget(project_id)  # its prediction URLs answer with its unknownDetection
    return _wire(storage, updated)


@router.delete("/projects/{project_id}", status_code=204, response_class=Response)
def delete_project(project_id: str, storage: Storage) -> Response:
    service.delete_project(storage, project_id)
    return Response(status_code=204)


@router.get("/projects/{project_id}/export", response_model=ProjectExport)
def export_project(project_id: str, storage: Storage) -> ProjectExport:
    summary = project_export.export_project(storage, project_id)
    return ProjectExport(
        iteration_count=summary.iteration_count,
        image_count=summary.image_count,
        tag_count=summary.tag_count,
        region_count=summary.region_count,
        estimated_import_time_in_ms=summary.estimated_import_time_ms,
        token=summary.token,
    )


@router.post("/projects/import", response_model=Project)
async def import_project(
    storage: Storage, config: Config, fetches: UrlFetches, token: str = Query(...), name: str | None = None
) -> Project:
    # The import runs in the URL-fetch pool: downloading the package and its images is what makes it slow.
    project = await fetches.run(project_import.import_project, storage, config, token, name)
    return await run_in_threadpool(_wire, storage, project)
