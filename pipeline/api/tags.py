"""Tags: create, list (with image counts), get, update, delete."""

from __future__ import annotations

from fastapi import APIRouter, Body, Query, Response

from pipeline.api.deps import Config, IterationIdQuery, Storage
from pipeline.api.mapping.projects import tag_to_wire
from pipeline.api.wire.projects import Tag, TagUpdate
from pipeline.services import tags as service

router = APIRouter(tags=["tags"])


@router.get("/projects/{project_id}/tags", response_model=list[Tag])
def get_tags(project_id: str, storage: Storage, iteration_id: IterationIdQuery = None) -> list[Tag]:
    return [tag_to_wire(t, n) for t, n in service.tags_with_counts(storage, project_id, iteration_id)]


@router.post("/projects/{project_id}/tags", response_model=Tag)
def create_tag(
    project_id: str,
    storage: Storage,
    config: Config,
    name: str | None = None,
    description: str | None = None,
    tag_type: str | None = Query(None, alias="type"),
) -> Tag:
    return tag_to_wire(service.create_tag(storage, config, project_id, name, description, tag_type), 0)


@router.get("/projects/{project_id}/tags/{tag_id}", response_model=Tag)
def get_tag(project_id: str, tag_id: str, storage: Storage, iteration_id: IterationIdQuery = None) -> Tag:
    return tag_to_wire(*service.tag_with_count(storage, project_id, tag_id, iteration_id))


@router.patch("/projects/{project_id}/tags/{tag_id}", response_model=Tag)
def update_tag(project_id: str, tag_id: str, storage: Storage, update: TagUpdate = Body(...)) -> Tag:
    tag = service.update_tag(storage, project_id, tag_id, update.name, update.description, update.type)
    return tag_to_wire(*service.tag_with_count(storage, project_id, tag.id))


@router.delete("/projects/{project_id}/tags/{tag_id}", status_code=204, response_class=Response)
def delete_tag(project_id: str, tag_id: str, storage: Storage) -> Response:
    service.delete_tag(storage, project_id, tag_id)
    return Response(status_code=204)
