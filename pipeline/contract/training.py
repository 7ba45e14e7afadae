"""What a training request hands the training job: the queue message, and the rule that picks the training set
(the service validates the same selection the job later loads)."""

from __future__ import annotations

import base64

from pydantic import BaseModel

from pipeline.store.records import ImageRecord, TagRecord


class TrainingMessage(BaseModel):
    """The body of a `training` queue message (base64 JSON, the Functions default encoding)."""

    project_id: str
    iteration_id: str

    def encode(self) -> str:
        return base64.b64encode(self.model_dump_json().encode()).decode()

    @classmethod
    def decode(cls, content: str) -> TrainingMessage:
        return cls.model_validate_json(base64.b64decode(content, validate=True))


def chosen_tags(tags: list[TagRecord], selected_tag_ids: list[str]) -> list[TagRecord]:
    """The tags a training run uses: the selected ones, all when none are selected."""
    return [t for t in tags if not selected_tag_ids or t.id in selected_tag_ids]


def training_set(
    images: list[ImageRecord], tags: list[TagRecord], selected_tag_ids: list[str]
) -> tuple[list[ImageRecord], list[TagRecord]]:
    """The images and tags a training run uses: the selected tags (all when none selected) and their images.

    Images come in the order of their content hashes, so the same pictures train the same model whatever ids
    and upload timing they got (folds, batches and augmentations all follow this order)."""
    chosen = chosen_tags(tags, selected_tag_ids)
    chosen_ids = {t.id for t in chosen}
    selected = [i for i in images if i.tag_ids & chosen_ids]
    return sorted(selected, key=lambda i: (i.content_hash, i.id)), chosen
