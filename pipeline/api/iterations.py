"""Training and iterations: train, list, get, rename, delete."""

from __future__ import annotations

from fastapi import APIRouter, Body, Query, Response

from pipeline.api.deps import ApiVersion, Config, Storage
from pipeline.api.mapping.projects import iteration_to_wire
from pipeline.api.wire.iterations import Iteration, IterationUpdate, TrainingParameters
from pipeline.services import iterations, training

router = APIRouter(tags=["iterations"])


@router.post("/projects/{project_id}/train", response_model=Iteration)
def train_project(
    project_id: str,
    storage: Storage,
    config: Config,
    version: ApiVersion,
    training_type: str | None = Query(None, alias="trainingType"),
    reserved_budget_in_hours: int | None = Query(None, alias="reservedBudgetInHours"),
    force_train: bool = Query(False, alias="forceTrain"),
    notification_email_address: str | None = Query(None, alias="notificationEmailAddress"),
    parameters: TrainingParameters | None = Body(default=None),
) -> Iteration:
    selected = [t.lower() for t in (parameters.selected_tags or [])] if parameters else []
    base = parameters.custom_base_model_info if parameters else None
    iteration = training.request_training(
        storage,
        config,
        project_id,
        training_type,
        reserved_budget_in_hours,
        force_train,
        selected,
        notification_email_address,
        base_model=(str(base.project_id), str(base.iteration_id)) if base else None,
    )
    return iteration_to_wire(iteration, version)


@router.get("/projects/{project_id}/iterations", response_model=list[Iteration])
def get_iterations(project_id: str, storage: Storage, version: ApiVersion) -> list[Iteration]:
    return [iteration_to_wire(i, version) for i in iterations.list_iterations(storage, project_id)]


@router.get("/projects/{project_id}/iterations/{iteration_id}", response_model=Iteration)
def get_iteration(project_id: str, iteration_id: str, storage: Storage, version: ApiVersion) -> Iteration:
    return iteration_to_wire(iterations.get_iteration(storage, project_id, iteration_id), version)


@router.patch("/projects/{project_id}/iterations/{iteration_id}", response_model=Iteration)
def update_iteration(
    project_id: str,
    iteration_id: str,
    storage: Storage,
    version: ApiVersion,
    update: IterationUpdate = Body(...),
) -> Iteration:
    return iteration_to_wire(
        iterations.rename_iteration(storage, project_id, iteration_id, update.name), version
    )


@router.delete("/projects/{project_id}/iterations/{iteration_id}", status_code=204, response_class=Response)
def delete_iteration(project_id: str, iteration_id: str, storage: Storage) -> Response:
    iterations.delete_iteration(storage, project_id, iteration_id)
    return Response(status_code=204)
