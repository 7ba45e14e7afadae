"""Images: create (data, files, URLs), list, count, delete, tag and region edits, metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from pipeline import images as service
from pipeline.api.deps import account, csv_list, settings
from pipeline.errors import bad_request
from pipeline.settings import Settings
from pipeline.store import StorageAccount
from pipeline.store.images import ImageStore
from pipeline.store.records import ImageRecord
from pipeline.wire.base import WireModel
from pipeline.wire.images import (
    Image,
    ImageCreateResult,
    ImageCreateSummary,
    ImageFileCreateBatch,
    ImageMetadataUpdateEntry,
    ImageMetadataUpdateSummary,
    ImageRegion,
    ImageRegionCreateBatch,
    ImageRegionCreateEntry,
    ImageRegionCreateResult,
    ImageRegionCreateSummary,
    ImageTag,
    ImageTagCreateBatch,
    ImageTagCreateEntry,
    ImageTagCreateSummary,
    ImageUrlCreateBatch,
    Region,
)

router = APIRouter(tags=["images"])

IMAGES = "/projects/{project_id}/images"
MULTI_STATUS = {207: {"description": "Some items failed; see each item's status."}}


# --- wire conversion ----------------------------------------------------------------------------------------


class _Wire:
    """Turns records into wire images: tag names and read-only SAS URLs for the blobs."""

    def __init__(self, storage: StorageAccount, project_id: str) -> None:
        self.store = ImageStore(storage)
        self.names = service.tag_names(storage, project_id)

    def image(self, image: ImageRecord) -> Image:
        return Image(
            id=image.id,
            created=image.created,
            width=image.width,
            height=image.height,
            resized_image_uri=self.store.blob_url(image.resized_blob),
            thumbnail_uri=self.store.blob_url(image.thumbnail_blob),
            original_image_uri=self.store.blob_url(image.original_blob),
            tags=[
                ImageTag(tag_id=t.tag_id, tag_name=self.names.get(t.tag_id, ""), created=t.created)
                for t in image.tags
            ],
            regions=[
                ImageRegion(
                    region_id=r.id,
                    tag_name=self.names.get(r.tag_id, ""),
                    created=r.created,
                    tag_id=r.tag_id,
                    left=r.left,
                    top=r.top,
                    width=r.width,
                    height=r.height,
                )
                for r in image.regions
            ],
            metadata=image.metadata,
        )

    def images(self, images: list[ImageRecord]) -> list[Image]:
        return [self.image(i) for i in images]


def _multi_status(body: WireModel, ok: bool) -> JSONResponse:
    """200 when every item succeeded, else 207 Multi-Status (same body shape)."""
    return JSONResponse(body.model_dump(mode="json", by_alias=True), status_code=200 if ok else 207)


def _summary(storage: StorageAccount, project_id: str, results: list[service.CreateResult]) -> JSONResponse:
    wire = _Wire(storage, project_id)
    summary = ImageCreateSummary(
        is_batch_successful=all(r.status.succeeded for r in results),
        images=[
            ImageCreateResult(
                source_url=r.source, status=r.status, image=wire.image(r.image) if r.image else None
            )
            for r in results
        ],
    )
    return _multi_status(summary, summary.is_batch_successful)


def _regions(regions: list[Region] | None) -> tuple[service.NewRegion, ...]:
    return tuple(service.NewRegion(r.tag_id, r.left, r.top, r.width, r.height) for r in regions or ())


# --- request bodies of CreateImagesFromData -----------------------------------------------------------------


class _Parts:
    """python-multipart callbacks that keep every part as raw bytes.

    The SDK sends one part named `imageData` with no filename and no content type; form parsers that treat such
    a part as text would mangle the image, so parts are collected here whatever their headers say. Each part is
    cut at `max_bytes + 1` (enough to report ErrorImageSize) and parts past `max_parts + 1` are dropped (enough to
    report the batch as too large) so a hostile body cannot fill memory.
    """

    def __init__(self, max_bytes: int, max_parts: int) -> None:
        self.max_bytes = max_bytes
        self.max_parts = max_parts
        self.parts: list[tuple[str | None, bytes]] = []
        self._field = b""
        self._value = b""
        self._filename: str | None = None
        self._data = bytearray()

    def callbacks(self) -> dict:
        names = (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
        )
        return {name: getattr(self, name) for name in names}

    def on_part_begin(self) -> None:
        self._filename = None
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if self._field.strip().lower() == b"content-disposition":
            filename = parse_options_header(self._value)[1].get(b"filename")
            self._filename = filename.decode("utf-8", "replace") if filename else None
        self._field = self._value = b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        room = self.max_bytes + 1 - len(self._data)
        if room > 0:
            self._data += data[start : min(end, start + room)]

    def on_part_end(self) -> None:
        if len(self.parts) <= self.max_parts:
            self.parts.append((self._filename, bytes(self._data)))


async def _read_capped(stream: AsyncIterator[bytes], max_bytes: int) -> bytes:
    body = bytearray()
    async for chunk in stream:
        if len(body) <= max_bytes:
            body += chunk[: max_bytes + 1 - len(body)]
    return bytes(body)


async def _uploaded_images(request: Request, config: Settings) -> list[tuple[str | None, bytes]]:
    """The (file name, bytes) of each image in a multipart body, or the whole body as one image."""
    max_bytes = config.max_training_image_bytes
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        body = await _read_capped(request.stream(), max_bytes)
        return [(None, body)] if body else []
    boundary = options.get(b"boundary")
    if not boundary:
        raise bad_request("BadRequestImageStream", "A multipart/form-data body needs a boundary.")
    parts = _Parts(max_bytes, config.max_images_per_batch)
    parser = MultipartParser(boundary, parts.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise bad_request("BadRequestImageStream", f"The multipart body is malformed: {exc}") from exc
    return parts.parts


# --- creating images ----------------------------------------------------------------------------------------


@router.post(IMAGES, response_model=ImageCreateSummary, responses=MULTI_STATUS)
async def create_images_from_data(
    project_id: str,
    request: Request,
    tag_ids: str | None = Query(None, alias="tagIds"),
    storage: StorageAccount = Depends(account),
    config: Settings = Depends(settings),
) -> JSONResponse:
    uploads = await _uploaded_images(request, config)
    images = [service.NewImage(data=data, name=name) for name, data in uploads]
    results = await run_in_threadpool(
        service.create_images, storage, config, project_id, images, csv_list(tag_ids)
    )
    return await run_in_threadpool(_summary, storage, project_id, results)


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
    return _summary(storage, project_id, results)


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
    return _summary(storage, project_id, results)


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
    return _Wire(storage, project_id).images(images)


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
    return _Wire(storage, project_id).images(images)


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
            ImageRegionCreateResult(
                image_id=i,
                region_id=r.id,
                tag_name=names.get(r.tag_id, ""),
                created=r.created,
                tag_id=r.tag_id,
                left=r.left,
                top=r.top,
                width=r.width,
                height=r.height,
            )
            for i, r in edits.created
        ],
        duplicated=entries(edits.duplicated),
        exceeded=entries(edits.exceeded),
    )
    return _multi_status(summary, not (edits.duplicated or edits.exceeded))


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
    return _multi_status(summary, summary.is_batch_successful)
