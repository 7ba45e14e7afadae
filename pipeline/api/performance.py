"""Iteration performance: GetIterationPerformance, GetImagePerformances and their count."""

from __future__ import annotations

from fastapi import APIRouter, Query

from pipeline.api.deps import OrderBy, Skip, Storage, TagIds, Take
from pipeline.api.mapping.images import ImageWire
from pipeline.api.mapping.predictions import performance_to_wire
from pipeline.api.wire.performance import ImagePerformance, IterationPerformance
from pipeline.core.vocabulary import Order
from pipeline.services import performance as service
from pipeline.services.images_query import image_links
from pipeline.services.tags import tag_names

router = APIRouter(tags=["performance"])

PERFORMANCE = "/projects/{project_id}/iterations/{iteration_id}/performance"


@router.get(PERFORMANCE, response_model=IterationPerformance)
def get_iteration_performance(
    project_id: str,
    iteration_id: str,
    storage: Storage,
    threshold: float = Query(0.5),
    overlap_threshold: float = Query(0.5, alias="overlapThreshold"),
) -> IterationPerformance:
    metrics = service.iteration_performance(storage, project_id, iteration_id, threshold, overlap_threshold)
    return performance_to_wire(metrics)


@router.get(f"{PERFORMANCE}/images", response_model=list[ImagePerformance])
def get_image_performances(
    project_id: str,
    iteration_id: str,
    storage: Storage,
    tag_ids: TagIds,
    order_by: OrderBy = Order.NEWEST,
    take: Take = 50,
    skip: Skip = 0,
) -> list[ImagePerformance]:
    results = service.image_performances(storage, project_id, iteration_id, tag_ids, order_by, take, skip)
    wire = ImageWire(image_links(storage), tag_names(storage, project_id))
    return [wire.performance(result) for result in results]


@router.get(f"{PERFORMANCE}/images/count", response_model=int)
def get_image_performance_count(project_id: str, iteration_id: str, storage: Storage, tag_ids: TagIds) -> int:
    return service.image_performance_count(storage, project_id, iteration_id, tag_ids)
