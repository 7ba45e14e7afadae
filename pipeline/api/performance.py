"""Iteration performance: GetIterationPerformance, GetImagePerformances and their count."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from pipeline.api.deps import account, csv_list
from pipeline.api.image_wire import ImageWire
from pipeline.api.wire.performance import ImagePerformance, IterationPerformance
from pipeline.services import performance as service
from pipeline.store import StorageAccount

router = APIRouter(tags=["performance"])

PERFORMANCE = "/projects/{project_id}/iterations/{iteration_id}/performance"


@router.get(PERFORMANCE, response_model=IterationPerformance)
def get_iteration_performance(
    project_id: str,
    iteration_id: str,
    threshold: float = Query(0.5),
    overlap_threshold: float = Query(0.5, alias="overlapThreshold"),
    storage: StorageAccount = Depends(account),
) -> IterationPerformance:
    return service.iteration_performance(storage, project_id, iteration_id, threshold, overlap_threshold)


@router.get(f"{PERFORMANCE}/images", response_model=list[ImagePerformance])
def get_image_performances(
    project_id: str,
    iteration_id: str,
    tag_ids: str | None = Query(None, alias="tagIds"),
    order_by: str = Query("Newest", alias="orderBy"),
    take: int = Query(50),
    skip: int = Query(0),
    storage: StorageAccount = Depends(account),
) -> list[ImagePerformance]:
    results = service.image_performances(
        storage, project_id, iteration_id, csv_list(tag_ids), order_by, take, skip
    )
    wire = ImageWire(storage, project_id)
    performances = []
    for result in results:
        image = wire.image(result.image)
        performances.append(
            ImagePerformance(
                predictions=result.predictions,
                id=image.id,
                created=image.created,
                width=image.width,
                height=image.height,
                image_uri=image.resized_image_uri,
                thumbnail_uri=image.thumbnail_uri,
                tags=image.tags,
                regions=image.regions,
            )
        )
    return performances


@router.get(f"{PERFORMANCE}/images/count", response_model=int)
def get_image_performance_count(
    project_id: str,
    iteration_id: str,
    tag_ids: str | None = Query(None, alias="tagIds"),
    storage: StorageAccount = Depends(account),
) -> int:
    return service.image_performance_count(storage, project_id, iteration_id, csv_list(tag_ids))
