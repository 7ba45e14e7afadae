"""Images: create (data, files, URLs), list, count, delete, tag and region edits, metadata."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pipeline.api.deps import account, csv_list, settings
from pipeline.api.image_wire import ImageWire, create_summary, multi_status, region_to_wire
from pipeline.api.uploads import uploaded_images
from pipeline.api.wire.images import (
    Image,
    ImageCreateSummary,
    ImageFileCreateBatch,
    ImageMetadataUpdateEntry,
    ImageMetadataUpdateSummary,
    ImageRegionCreateBatch,
    ImageRegionCreateEntry,
    ImageRegionCreateResult,
    ImageRegionCreateSummary,
    ImageTagCreateBatch,
    ImageTagCreateEntry,
    ImageTagCreateSummary,
    ImageUrlCreateBatch,
    Region,
)
from pipeline.core.settings import Settings
from pipeline.services import images as service
from pipeline.store import StorageAccount

router = APIRouter(tags=["images"])

IMAGES = "/projects/{project_id}/images"
MULTI_STATUS = {207: {"description": "Some items failed; see each item's status."}}


def _regions(regions: list[Region] | None) -> tuple[service.NewRegion, ...]:
    return tuple(service.NewRegion(r.tag_id, r.left, r.top, r.width, r.height) for r in regions or ())


# --- creating images ----------------------------------------------------------------------------------------


@router.post(IMAGES, response_model=ImageCreateSummary, responses=MULTI_STATUS)
async def create_images_from_data(
    project_id: str,
    request: Request,
    tag_ids: str | None = Query(None, alias="tagIds"),
    storage: StorageAccount = Depends(account),
    config: Settings = Depends(settings),
) -> JSONResponse:
    uploads = await uploaded_images(request, config.max_training_image_bytes, config.max_images_per_batch)
    images = [service.NewImage(data=data, name=name) for name, data in uploads]
    results = await run_in_threadpool(
        service.create_images, storage, config, project_id, images, csv_list(tag_ids)
    )
    return await run_in_threadpool(create_summary, storage, project_id, results)


@router.post(f"{IMAGES}/files", response_model=ImageCreateSummary, responses=MULTI_STATUS)
def create_images_from_files(
    project_id: str,
    batch: ImageFileCreateBatch = Body(...),
    storage: StorageAccount = Depends(account),
    config: Settings = Depends(settings),
) -> JSONResponse:
    images = [
        service.NewImage(
            data=entry.contents,
            name=entry.name,
            tag_ids=tuple(entry.tag_ids or ()),
            regions=_regions(entry.regions),
        )
        for entry in batch.images
    ]
    results = service.create_images(storage, config, project_id, images, batch.tag_ids or (), batch.metadata)
    return create_summary(storage, project_id, results)


@router.post(f"{IMAGES}/urls", response_model=ImageCreateSummary, responses=MULTI_STATUS)
def create_images_from_urls(
    project_id: str,
    batch: ImageUrlCreateBatch = Body(...),
    storage: StorageAccount = Depends(account),
    config: Settings = Depends(settings),
) -> JSONResponse:
    images = [
        service.NewImage(url=entry.url, tag_ids=tuple(entry.tag_ids or ()), regions=_regions(entry.regions))
        for entry in batch.images
    ]
    results = service.create_images(storage, config, project_id, images, batch.tag_ids or (), batch.metadata)
    return create_summary(storage, project_id, results)


# --- reading ------------------------------------------------------------------------------------------------

# Accepted for compatibility; Seer has no per-iteration image snapshots (yet), so the workspace is always listed.
IterationId = Query(None, alias="iterationId")
Take = Query(50, ge=0, le=256)
Skip = Query(0, ge=0)


@router.get(IMAGES, response_model=list[Image])
def get_images(
    project_id: str,
    iteration_id: str | None = IterationId,
    tag_ids: str | None = Query(None, alias="tagIds"),
    tagging_status: str = Query("All", alias="taggingStatus"),
    order_by: str = Query("Newest", alias="orderBy"),
    take: int = Take,
    skip: int = Skip,
    storage: StorageAccount = Depends(account),
) -> list[Image]:
    images = service.list_images(
        storage,
        project_id,
        tag_ids=csv_list(tag_ids),
        tagging=tagging_status,
        order_by=order_by,
        take=take,
        skip=skip,
    )
    return ImageWire(storage, project_id).images(images)


@router.get(f"{IMAGES}/tagged", response_model=list[Image])
def get_tagged_images(
    project_id: str,
    iteration_id: str | None = IterationId,
    tag_ids: str | None = Query(None, alias="tagIds"),
    order_by: str = Query("Newest", alias="orderBy"),
    take: int = Take,
    skip: int = Skip,
    storage: StorageAccount = Depends(account),
) -> list[Image]:
    return get_images(project_id, iteration_id, tag_ids, "Tagged", order_by, take, skip, storage)


@router.get(f"{IMAGES}/untagged", response_model=list[Image])
def get_untagged_images(
    project_id: str,
    iteration_id: str | None = IterationId,
    order_by: str = Query("Newest", alias="orderBy"),
    take: int = Take,
    skip: int = Skip,
    storage: StorageAccount = Depends(account),
) -> list[Image]:
    return get_images(project_id, iteration_id, None, "Untagged", order_by, take, skip, storage)


@router.get(f"{IMAGES}/id", response_model=list[Image])
def get_images_by_ids(
    project_id: str,
    image_ids: str | None = Query(None, alias="imageIds"),
    iteration_id: str | None = IterationId,
    storage: StorageAccount = Depends(account),
) -> list[Image]:
    images = service.get_images_by_ids(storage, project_id, csv_list(image_ids))
    return ImageWire(storage, project_id).images(images)


@router.get(f"{IMAGES}/count", response_model=int)
def get_image_count(
    project_id: str,
    iteration_id: str | None = IterationId,
    tagging_status: str = Query("All", alias="taggingStatus"),
    tag_ids: str | None = Query(None, alias="tagIds"),
    storage: StorageAccount = Depends(account),
) -> int:
    return service.count_images(storage, project_id, tag_ids=csv_list(tag_ids), tagging=tagging_status)


@router.get(f"{IMAGES}/tagged/count", response_model=int)
def get_tagged_image_count(
    project_id: str,
    iteration_id: str | None = IterationId,
    tag_ids: str | None = Query(None, alias="tagIds"),
    storage: StorageAccount = Depends(account),
) -> int:
    return service.count_images(storage, project_id, tag_ids=csv_list(tag_ids), tagging="Tagged")


@router.get(f"{IMAGES}/untagged/count", response_model=int)
def get_untagged_image_count(
    project_id: str, iteration_id: str | None = IterationId, storage: StorageAccount = Depends(account)
) -> int:
    return service.count_images(storage, project_id, tagging="Untagged")


# --- deleting and editing -----------------------------------------------------------------------------------


@router.delete(IMAGES, status_code=204, response_class=Response)
def delete_images(
    project_id: str,
    image_ids: str | None = Query(None, alias="imageIds"),
    all_images: bool = Query(False, alias="allImages"),
    all_iterations: bool = Query(False, alias="allIterations"),
    storage: StorageAccount = Depends(account),
) -> Response:
    """Deletes synchronously, so 204 even for allImages (the SDK accepts 202 and 204)."""
    service.delete_images(storage, project_id, csv_list(image_ids), all_images)
    return Response(status_code=204)


@router.post(f"{IMAGES}/tags", response_model=ImageTagCreateSummary)
def create_image_tags(
    project_id: str, batch: ImageTagCreateBatch = Body(...), storage: StorageAccount = Depends(account)
) -> ImageTagCreateSummary:
    edits = service.add_image_tags(storage, project_id, [(e.image_id, e.tag_id) for e in batch.tags])

    def entries(pairs: list[tuple[str, str]]) -> list[ImageTagCreateEntry]:
        return [ImageTagCreateEntry(image_id=i, tag_id=t) for i, t in pairs]

    return ImageTagCreateSummary(
        created=entries(edits.created), duplicated=entries(edits.duplicated), exceeded=entries(edits.exceeded)
    )


@router.delete(f"{IMAGES}/tags", status_code=204, response_class=Response)
def delete_image_tags(
    project_id: str,
    image_ids: str | None = Query(None, alias="imageIds"),
    tag_ids: str | None = Query(None, alias="tagIds"),
    storage: StorageAccount = Depends(account),
) -> Response:
    service.remove_image_tags(storage, project_id, csv_list(image_ids), csv_list(tag_ids))
    return Response(status_code=204)


@router.post(f"{IMAGES}/regions", response_model=ImageRegionCreateSummary, responses=MULTI_STATUS)
def create_image_regions(
    project_id: str,
    batch: ImageRegionCreateBatch = Body(...),
    storage: StorageAccount = Depends(account),
    config: Settings = Depends(settings),
) -> JSONResponse:
    edits = service.add_image_regions(
        storage,
        config,
        project_id,
        [(e.image_id, service.NewRegion(e.tag_id, e.left, e.top, e.width, e.height)) for e in batch.regions],
    )
    names = service.tag_names(storage, project_id)

    def entries(pairs: list[tuple[str, service.NewRegion]]) -> list[ImageRegionCreateEntry]:
        return [
            ImageRegionCreateEntry(
                image_id=i, tag_id=r.tag_id, left=r.left, top=r.top, width=r.width, height=r.height
            )
            for i, r in pairs
        ]

    summary = ImageRegionCreateSummary(
        created=[
            ImageRegionCreateResult(image_id=i, **region_to_wire(r, names).model_dump())
            for i, r in edits.created
        ],
        duplicated=entries(edits.duplicated),
        exceeded=entries(edits.exceeded),
    )
    return multi_status(summary, not (edits.duplicated or edits.exceeded))


@router.delete(f"{IMAGES}/regions", status_code=204, response_class=Response)
def delete_image_regions(
    project_id: str,
    region_ids: str | None = Query(None, alias="regionIds"),
    storage: StorageAccount = Depends(account),
) -> Response:
    service.remove_image_regions(storage, project_id, csv_list(region_ids))
    return Response(status_code=204)


@router.post(f"{IMAGES}/metadata", response_model=ImageMetadataUpdateSummary, responses=MULTI_STATUS)
def update_image_metadata(
    project_id: str,
    image_ids: str | None = Query(None, alias="imageIds"),
    metadata: dict[str, str] = Body(...),
    storage: StorageAccount = Depends(account),
) -> JSONResponse:
    results = service.update_image_metadata(storage, project_id, csv_list(image_ids), metadata)
    summary = ImageMetadataUpdateSummary(
        is_batch_successful=all(r.status == "OK" for r in results),
        images=[
            ImageMetadataUpdateEntry(image_id=r.image_id, status=r.status, metadata=r.metadata)
            for r in results
        ],
    )
    return multi_status(summary, summary.is_batch_successful)
