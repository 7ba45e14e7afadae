"""TrainProject's customBaseModelInfo (v3.4-preview): the trained iteration a new one starts from. Checked when
training is asked for, before anything is written, so a refused base leaves the project as it was."""

from __future__ import annotations

from pipeline.core.domains import domain_of
from pipeline.core.errors import bad_request, iteration_not_found
from pipeline.core.vocabulary import DomainType
from pipeline.services.iterations import is_trained
from pipeline.services.projects import get_project
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from pipeline.store.records import IterationRecord, ProjectRecord


def base_iteration(
    account: StorageAccount, project: ProjectRecord, base_project_id: str, base_iteration_id: str
) -> IterationRecord:
    """The base iteration, which may belong to another project of this Seer (the spec names both ids): it must
    exist in the project named, be trained, and have been trained on the same backbone, for the same kind of
    model, as `project` trains now (its features and weights are what the new run reuses)."""
    owner = get_project(account, base_project_id)
    base = IterationStore(account).get(owner.id, base_iteration_id.lower())
    if base is None:
        raise iteration_not_found(base_iteration_id)
    if not is_trained(base):
        raise bad_request(
            "BadRequestCustomBaseModelIterationStatusNotCompleted",
            f"The base iteration {base.name} is {base.status}; only a Completed iteration can be a base model.",
        )
    incompatible = "BadRequestCustomBaseModelDomainNotCompatible"
    trained_on, target = domain_of(base.domain_id), domain_of(project.domain_id)
    if (trained_on.type, trained_on.backbone) != (target.type, target.backbone):
        raise bad_request(
            incompatible,
            f"The base iteration was trained on domain {trained_on.name} ({trained_on.type}, "
            f"{trained_on.backbone}); this project trains {target.name} ({target.type}, {target.backbone}).",
        )
    if target.type == DomainType.CLASSIFICATION and base.classification_type != project.classification_type:
        raise bad_request(
            incompatible,
            f"The base iteration is a {base.classification_type} classifier; this project is "
            f"{project.classification_type}.",
        )
    return base
