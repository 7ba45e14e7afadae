"""Tags: create, list (with image counts), get, update, delete."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query, Response

from pipeline.api.deps import account, settings
from pipeline.api.wire.projects import Tag, TagUpdate
from pipeline.core.settings import Settings
from pipeline.services import projects as service
from pipeline.store import StorageAccount
from pipeline.store.records import TagRecord

router = APIRouter(tags=["tags"])


def to_wire(tag: TagRecord, image_count: int) -> Tag:
    return Tag(id=tag.id, name=tag.name, description=tag.description, type=tag.type, image_count=image_count)


@router.get("/projects/{project_id}/tags", response_model=list[Tag])
def get_tags(project_id: str, storage: StorageAccount = Depends(account)) -> list[Tag]:
    return [to_wire(t, n) for t, n in service.list_tags_with_counts(storage, project_id)]


@router.post("/projects/{project_id}/tags", response_model=Tag)
def create_tag(
    project_id: str,
    name: str | None = None,
    description: str | None = None,
    tag_type: str | None = Query(None, alias="type"),
    storage: StorageAccount = Depends(account),
    config: Settings = Depends(settings),
) -> Tag:
    return to_wire(service.create_tag(storage, config, project_id, name, description, tag_type), 0)


@router.get("/projects/{project_id}/tags/{tag_id}", response_model=Tag)
def get_tag(project_id: str, tag_id: str, storage: StorageAccount = Depends(account)) -> Tag:
    counts = dict((t.id, n) for t, n in service.list_tags_with_counts(storage, project_id))
    tag = service.get_tag(storage, project_id, tag_id)
    return to_wire(tag, counts.get(tag.id, 0))


@router.patch("/projects/{project_id}/tags/{tag_id}", response_model=Tag)
def update_tag(
    project_id: str, tag_id: str, update: TagUpdate = Body(...), storage: StorageAccount = Depends(account)
) -> Tag:
    tag = service.update_tag(storage, project_id, tag_id, update.name, update.description, update.type)
    counts = dict((t.id, n) for t, n in service.list_tags_with_counts(storage, project_id))
    return to_wire(tag, counts.get(tag.id, 0))


@router.delete("/projects/{project_id}/tags/{tag_id}", status_code=204, response_class=Response)
def delete_tag(project_id: str, tag_id: str, storage: StorageAccount = Depends(account)) -> Response:
    service.delete_tag(storage, project_id, tag_id)
    return Response(status_code=204)
