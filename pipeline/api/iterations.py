"""Training and iterations: train, list, get, rename, delete."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query, Response

from pipeline.api.deps import account, settings
from pipeline.api.wire.iterations import Iteration, IterationUpdate, TrainingParameters
from pipeline.core.domains import EXPORT_PLATFORMS, domain_of
from pipeline.core.settings import Settings
from pipeline.services import training as service
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from pipeline.store.records import IterationRecord

router = APIRouter(tags=["iterations"])


def to_wire(iteration: IterationRecord) -> Iteration:
    exportable = iteration.status == "Completed" and domain_of(iteration.domain_id).compact
    return Iteration(
        id=iteration.id,
        name=iteration.name,
        status=iteration.status,
        created=iteration.created,
        last_modified=iteration.last_modified,
        trained_at=iteration.trained_at,
        project_id=iteration.project_id,
        exportable=exportable,
        exportable_to=EXPORT_PLATFORMS if exportable else [],
        domain_id=iteration.domain_id,
        classification_type=iteration.classification_type,
        training_type=iteration.training_type,
        reserved_budget_in_hours=iteration.reserved_budget_in_hours,
        training_time_in_minutes=iteration.training_time_in_minutes,
        publish_name=iteration.publish_name,
        original_publish_resource_id=iteration.original_publish_resource_id,
        training_error_details=iteration.training_error_details,
    )


@router.post("/projects/{project_id}/train", response_model=Iteration)
def train_project(
    project_id: str,
    training_type: str | None = Query(None, alias="trainingType"),
    reserved_budget_in_hours: int | None = Query(None, alias="reservedBudgetInHours"),
    force_train: bool = Query(False, alias="forceTrain"),
    parameters: TrainingParameters | None = Body(default=None),
    storage: StorageAccount = Depends(account),
    config: Settings = Depends(settings),
) -> Iteration:
    selected = [t.lower() for t in (parameters.selected_tags or [])] if parameters else []
    iteration = service.request_training(
        storage, config, project_id, training_type, reserved_budget_in_hours, force_train, selected
    )
    return to_wire(iteration)


@router.get("/projects/{project_id}/iterations", response_model=list[Iteration])
def get_iterations(project_id: str, storage: StorageAccount = Depends(account)) -> list[Iteration]:
    project = service.get_project(storage, project_id)
    return [to_wire(i) for i in IterationStore(storage).list(project.id)]


@router.get("/projects/{project_id}/iterations/{iteration_id}", response_model=Iteration)
def get_iteration(
    project_id: str, iteration_id: str, storage: StorageAccount = Depends(account)
) -> Iteration:
    return to_wire(service.get_iteration(storage, project_id, iteration_id))


@router.patch("/projects/{project_id}/iterations/{iteration_id}", response_model=Iteration)
def update_iteration(
    project_id: str,
    iteration_id: str,
    update: IterationUpdate = Body(...),
    storage: StorageAccount = Depends(account),
) -> Iteration:
    return to_wire(service.rename_iteration(storage, project_id, iteration_id, update.name))


@router.delete("/projects/{project_id}/iterations/{iteration_id}", status_code=204, response_class=Response)
def delete_iteration(
    project_id: str, iteration_id: str, storage: StorageAccount = Depends(account)
) -> Response:
    service.delete_iteration(storage, project_id, iteration_id)
    return Response(status_code=204)
