"""Images: create (data, files, URLs), list, count, delete, tag and region edits, metadata."""

from __future__ import annotations

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pipeline.api.deps import (
    Config,
    ImageIds,
    ImageWork,
    IterationIdQuery,
    MetadataFilter,
    MultipleTags,
    OrderBy,
    RegionIds,
    Skip,
    Storage,
    TagIds,
    Take,
    UrlFetches,
)
from pipeline.api.mapping.boxes import box_from_wire, boxes_from_wire
from pipeline.api.mapping.images import (
    ImageWire,
    metadata_results_to_wire,
    region_edits_to_wire,
    tag_edits_to_wire,
)
from pipeline.api.uploads import uploaded_images
from pipeline.api.wire.images import (
    Image,
    ImageCreateSummary,
    ImageFileCreateBatch,
    ImageMetadataUpdateSummary,
    ImageRegionCreateBatch,
    ImageRegionCreateSummary,
    ImageTagCreateBatch,
    ImageTagCreateSummary,
    ImageUrlCreateBatch,
)
from pipeline.core.vocabulary import Order, TaggingStatus
from pipeline.services import images_create, images_edit, images_query
from pipeline.services.tags import tag_names
from pipeline.store import StorageAccount

router = APIRouter(tags=["images"])

IMAGES = "/projects/{project_id}/images"
MULTI_STATUS = {207: {"description": "Some items failed; see each item's status."}}


def _wire(storage: StorageAccount, project_id: str) -> ImageWire:
    return ImageWire(images_query.image_links(storage), tag_names(storage, project_id))


def _created(
    storage: StorageAccount, project_id: str, results: list[images_create.CreateResult]
) -> JSONResponse:
    return _wire(storage, project_id).create_summary(results)


# --- creating images ----------------------------------------------------------------------------------------


@router.post(IMAGES, response_model=ImageCreateSummary, responses=MULTI_STATUS)
async def create_images_from_data(
    project_id: str, request: Request, storage: Storage, config: Config, work: ImageWork, tag_ids: TagIds
) -> JSONResponse:
    uploads = await uploaded_images(request, config.max_training_image_bytes, config.max_images_per_batch)
    images = [images_create.NewImage(data=data, name=name) for name, data in uploads]
    results = await work.run(images_create.create_images, storage, config, project_id, images, tag_ids)
    return await run_in_threadpool(_created, storage, project_id, results)


@router.post(f"{IMAGES}/files", response_model=ImageCreateSummary, responses=MULTI_STATUS)
async def create_images_from_files(
    project_id: str,
    storage: Storage,
    config: Config,
    work: ImageWork,
    batch: ImageFileCreateBatch = Body(...),
) -> JSONResponse:
    images = [
        images_create.NewImage(
            data=entry.contents,
            name=entry.name,
            tag_ids=tuple(entry.tag_ids or ()),
            regions=boxes_from_wire(entry.regions),
        )
        for entry in batch.images
    ]
    results = await work.run(
        images_create.create_images, storage, config, project_id, images, batch.tag_ids or (), batch.metadata
    )
    return await run_in_threadpool(_created, storage, project_id, results)


@router.post(f"{IMAGES}/urls", response_model=ImageCreateSummary, responses=MULTI_STATUS)
async def create_images_from_urls(
    project_id: str,
    storage: Storage,
    config: Config,
    fetches: UrlFetches,
    batch: ImageUrlCreateBatch = Body(...),
) -> JSONResponse:
    images = [
        images_create.NewImage(
            url=entry.url, tag_ids=tuple(entry.tag_ids or ()), regions=boxes_from_wire(entry.regions)
        )
        for entry in batch.images
    ]
    # The whole batch runs in the URL-fetch pool: its downloads are what make it slow.
    results = await fetches.run(
        images_create.create_images, storage, config, project_id, images, batch.tag_ids or (), batch.metadata
    )
    return await run_in_threadpool(_created, storage, project_id, results)


# --- reading ------------------------------------------------------------------------------------------------


@router.get(IMAGES, response_model=list[Image])
def get_images(
    project_id: str,
    storage: Storage,
    iteration_id: IterationIdQuery = None,
    tag_ids: TagIds = (),
    tagging_status: str = Query(TaggingStatus.ALL, alias="taggingStatus"),
    order_by: OrderBy = Order.NEWEST,
    take: Take = 50,
    skip: Skip = 0,
    metadata_filter: MetadataFilter = None,
    multiple_tags: MultipleTags = False,
) -> list[Image]:
    images = images_query.list_images(
        storage,
        project_id,
        tag_ids=tag_ids,
        tagging=tagging_status,
        metadata_filter=metadata_filter,
        multiple_tags=multiple_tags,
        order_by=order_by,
        take=take,
        skip=skip,
        iteration_id=iteration_id,
    )
    return _wire(storage, project_id).images(images)


@router.get(f"{IMAGES}/tagged", response_model=list[Image])
def get_tagged_images(
    project_id: str,
    storage: Storage,
    iteration_id: IterationIdQuery = None,
    tag_ids: TagIds = (),
    order_by: OrderBy = Order.NEWEST,
    take: Take = 50,
    skip: Skip = 0,
) -> list[Image]:
    return get_images(project_id, storage, iteration_id, tag_ids, TaggingStatus.TAGGED, order_by, take, skip)


@router.get(f"{IMAGES}/untagged", response_model=list[Image])
def get_untagged_images(
    project_id: str,
    storage: Storage,
    iteration_id: IterationIdQuery = None,
    order_by: OrderBy = Order.NEWEST,
    take: Take = 50,
    skip: Skip = 0,
) -> list[Image]:
    return get_images(project_id, storage, iteration_id, (), TaggingStatus.UNTAGGED, order_by, take, skip)


@router.get(f"{IMAGES}/id", response_model=list[Image])
def get_images_by_ids(
    project_id: str, storage: Storage, image_ids: ImageIds, iteration_id: IterationIdQuery = None
) -> list[Image]:
    images = images_query.get_images_by_ids(storage, project_id, image_ids)
    return _wire(storage, project_id).images(images)


@router.get(f"{IMAGES}/count", response_model=int)
def get_image_count(
    project_id: str,
    storage: Storage,
    tag_ids: TagIds,
    iteration_id: IterationIdQuery = None,
    tagging_status: str = Query(TaggingStatus.ALL, alias="taggingStatus"),
    metadata_filter: MetadataFilter = None,
    multiple_tags: MultipleTags = False,
) -> int:
    return images_query.count_images(
        storage,
        project_id,
        tag_ids=tag_ids,
        tagging=tagging_status,
        metadata_filter=metadata_filter,
        multiple_tags=multiple_tags,
        iteration_id=iteration_id,
    )


@router.get(f"{IMAGES}/tagged/count", response_model=int)
def get_tagged_image_count(
    project_id: str, storage: Storage, tag_ids: TagIds, iteration_id: IterationIdQuery = None
) -> int:
    return images_query.count_images(
        storage, project_id, tag_ids=tag_ids, tagging=TaggingStatus.TAGGED, iteration_id=iteration_id
    )


@router.get(f"{IMAGES}/untagged/count", response_model=int)
def get_untagged_image_count(project_id: str, storage: Storage, iteration_id: IterationIdQuery = None) -> int:
    return images_query.count_images(
        storage, project_id, tagging=TaggingStatus.UNTAGGED, iteration_id=iteration_id
    )


# --- deleting and editing -----------------------------------------------------------------------------------


@router.delete(IMAGES, status_code=204, response_class=Response, responses={202: {}})
def delete_images(
    project_id: str,
    storage: Storage,
    image_ids: ImageIds,
    all_images: bool = Query(False, alias="allImages"),
    all_iterations: bool = Query(False, alias="allIterations"),
) -> Response:
    """Deletes synchronously; answers 202 when either flag is set, as the spec says. An iteration keeps no copy of
    its images (only its model and evaluation), so the images leave every iteration either way."""
    images_edit.delete_images(storage, project_id, image_ids, all_images)
    return Response(status_code=202 if all_images or all_iterations else 204)


@router.post(f"{IMAGES}/tags", response_model=ImageTagCreateSummary)
def create_image_tags(
    project_id: str, storage: Storage, batch: ImageTagCreateBatch = Body(...)
) -> ImageTagCreateSummary:
    edits = images_edit.add_image_tags(storage, project_id, [(e.image_id, e.tag_id) for e in batch.tags])
    return tag_edits_to_wire(edits)


@router.delete(f"{IMAGES}/tags", status_code=204, response_class=Response)
def delete_image_tags(project_id: str, storage: Storage, image_ids: ImageIds, tag_ids: TagIds) -> Response:
    images_edit.remove_image_tags(storage, project_id, image_ids, tag_ids)
    return Response(status_code=204)


@router.post(f"{IMAGES}/regions", response_model=ImageRegionCreateSummary, responses=MULTI_STATUS)
def create_image_regions(
    project_id: str, storage: Storage, config: Config, batch: ImageRegionCreateBatch = Body(...)
) -> JSONResponse:
    entries = [(e.image_id, box_from_wire(e)) for e in batch.regions]
    edits = images_edit.add_image_regions(storage, config, project_id, entries)
    return region_edits_to_wire(edits, tag_names(storage, project_id))


@router.delete(f"{IMAGES}/regions", status_code=204, response_class=Response)
def delete_image_regions(project_id: str, storage: Storage, region_ids: RegionIds) -> Response:
    images_edit.remove_image_regions(storage, project_id, region_ids)
    return Response(status_code=204)


@router.post(f"{IMAGES}/metadata", response_model=ImageMetadataUpdateSummary, responses=MULTI_STATUS)
def update_image_metadata(
    project_id: str, storage: Storage, image_ids: ImageIds, metadata: dict[str, str] = Body(...)
) -> JSONResponse:
    results = images_edit.update_image_metadata(storage, project_id, image_ids, metadata)
    return metadata_results_to_wire(results)
