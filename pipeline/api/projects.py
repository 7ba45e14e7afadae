"""Projects: create, list, get, update, delete."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query, Response

from pipeline.api.deps import account
from pipeline.api.wire.projects import CreateProjectOptions, Project, ProjectSettings, ProjectUpdate
from pipeline.services import projects as service
from pipeline.store import StorageAccount
from pipeline.store.records import ProjectRecord

router = APIRouter(tags=["projects"])


def to_wire(project: ProjectRecord) -> Project:
    return Project(
        id=project.id,
        name=project.name,
        description=project.description,
        settings=ProjectSettings(
            domain_id=project.domain_id,
            classification_type=project.classification_type,
            target_export_platforms=project.target_export_platforms,
            use_negative_set=True,
            export_model_container_uri=project.export_model_container_uri,
            notification_queue_uri=project.notification_queue_uri,
        ),
        created=project.created,
        last_modified=project.last_modified,
    )


@router.get("/projects", response_model=list[Project])
def get_projects(storage: StorageAccount = Depends(account)) -> list[Project]:
    return [to_wire(p) for p in service.ProjectStore(storage).list()]


@router.post("/projects", response_model=Project)
def create_project(
    name: str | None = None,
    description: str | None = None,
    domain_id: str | None = Query(None, alias="domainId"),
    classification_type: str | None = Query(None, alias="classificationType"),
    target_export_platforms: str | None = Query(None, alias="targetExportPlatforms"),
    options: CreateProjectOptions | None = Body(default=None),
    storage: StorageAccount = Depends(account),
) -> Project:
    project = service.create_project(
        storage,
        name,
        description,
        domain_id,
        classification_type,
        [p for p in (target_export_platforms or "").split(",") if p],
        notification_queue_uri=options.notification_queue_uri if options else None,
        export_model_container_uri=options.export_model_container_uri if options else None,
    )
    return to_wire(project)


@router.get("/projects/{project_id}", response_model=Project)
def get_project(project_id: str, storage: StorageAccount = Depends(account)) -> Project:
    return to_wire(service.get_project(storage, project_id))


@router.patch("/projects/{project_id}", response_model=Project)
def update_project(
    project_id: str, update: ProjectUpdate = Body(...), storage: StorageAccount = Depends(account)
) -> Project:
    settings = update.settings or ProjectSettings()
    project = service.update_project(
        storage,
        project_id,
        update.name,
        update.description,
        settings.domain_id,
        settings.classification_type,
        settings.target_export_platforms,
    )
    return to_wire(project)


@router.delete("/projects/{project_id}", status_code=204, response_class=Response)
def delete_project(project_id: str, storage: StorageAccount = Depends(account)) -> Response:
    service.delete_project(storage, project_id)
    return Response(status_code=204)
