"""Iterations: finding them (any, trained, the newest trained), renaming and deleting them."""

from __future__ import annotations

from pipeline.core.errors import bad_request, iteration_not_found, not_trained
from pipeline.core.limits import MAX_NAME_LENGTH
from pipeline.core.vocabulary import IterationStatus
from pipeline.services.names import iteration_name_claims, renamed
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.exports import ExportStore
from pipeline.store.iterations import IterationStore
from pipeline.store.records import IterationRecord, utcnow
from pipeline.store.suggestions import SuggestionStore


def list_iterations(account: StorageAccount, project_id: str) -> list[IterationRecord]:
    """The project's iterations, oldest first."""
    return IterationStore(account).list(get_project(account, project_id).id)


def get_iteration(account: StorageAccount, project_id: str, iteration_id: str) -> IterationRecord:
    project = get_project(account, project_id)
    iteration = IterationStore(account).get(project.id, iteration_id.lower())
    if iteration is None:
        raise iteration_not_found(iteration_id)
    return iteration


def is_trained(iteration: IterationRecord) -> bool:
    return iteration.status == IterationStatus.COMPLETED and bool(iteration.model_blob)


def completed_iteration(account: StorageAccount, project_id: str, iteration_id: str) -> IterationRecord:
    """An iteration that has a trained model, or the Custom Vision error for one that has not."""
    iteration = get_iteration(account, project_id, iteration_id)
    if not is_trained(iteration):
        raise not_trained(f"Iteration {iteration.name} is not trained.")
    return iteration


def latest_completed_iteration(account: StorageAccount, project_id: str) -> IterationRecord:
    """The newest trained iteration: what a quick test without an iteration id uses."""
    project = get_project(account, project_id)
    trained = [i for i in IterationStore(account).list(project.id) if is_trained(i)]
    if not trained:
        raise not_trained(f"Project {project.name} has no trained iteration yet.")
    return trained[-1]


def rename_iteration(
    account: StorageAccount, project_id: str, iteration_id: str, name: str | None
) -> IterationRecord:
    current = get_iteration(account, project_id, iteration_id)
    new_name = (name or "").strip()
    if not new_name or len(new_name) > MAX_NAME_LENGTH:
        raise bad_request(
            "BadRequestIterationName", f"Iteration name must be 1 to {MAX_NAME_LENGTH} characters."
        )
    taken = bad_request(
        "BadRequestIterationNameNotUnique", f"An iteration named '{new_name}' already exists."
    )
    store = IterationStore(account)

    def bears(other_id: str) -> bool:
        other = store.get(current.project_id, other_id)
        return other is not None and other.name == new_name

    claims = iteration_name_claims(account, current.project_id)
    with renamed(claims, current.name, new_name, current.id, bears, taken):
        # Iterations named by training (and those renamed before names were claimed) hold no claim: look too.
        if any(i.name == new_name and i.id != current.id for i in store.list(current.project_id)):
            raise taken
        updated = store.update(
            current.project_id,
            current.id,
            lambda i: i.model_copy(update={"name": new_name, "last_modified": utcnow()}),
        )
        if updated is None:
            raise iteration_not_found(iteration_id)
    return updated


def remove_iteration(account: StorageAccount, iteration: IterationRecord) -> None:
    """The iteration's row and model artefacts, then its exports' rows and files and its stored suggestions."""
    IterationStore(account).delete(iteration)
    ExportStore(account).delete_iteration(iteration.project_id, iteration.id)
    SuggestionStore(account).delete_iteration(iteration.project_id, iteration.id)


def delete_iteration(account: StorageAccount, project_id: str, iteration_id: str) -> None:
    iteration = get_iteration(account, project_id, iteration_id)
    if iteration.publish_name:
        raise bad_request("BadRequestIterationIsPublished", "Unpublish the iteration before deleting it.")
    if iteration.status == IterationStatus.TRAINING:
        raise bad_request("BadRequestTrainingAlreadyInProgress", "The iteration is still training.")
    remove_iteration(account, iteration)
    iteration_name_claims(account, iteration.project_id).release(iteration.name, iteration.id)
