"""Help with labelling: region proposals for one training image of a detection project (GetImageRegionProposals),
from the project's newest trained detector, and suggested tags (with regions, for a detector) for several images
of any project (SuggestTagsAndRegions, Custom Vision's Smart Labeler), from the iteration asked for; both run the
model on the stored images. Suggestions are also stored per iteration and image, for QuerySuggestedImages
(services/suggested_images.py). Before any detector is trained there is nothing to propose from, so proposals come
back empty rather than as an error (Custom Vision's portal asks for them on every image)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from PIL import Image

from pipeline.core.boxes import Box
from pipeline.core.domains import domain_of
from pipeline.core.errors import CustomVisionError, bad_request, image_not_found
from pipeline.core.limits import MAX_SUGGESTION_IMAGES
from pipeline.core.vocabulary import DomainType
from pipeline.services.images_query import get_images_by_ids
from pipeline.services.iterations import completed_iteration, latest_completed_iteration
from pipeline.services.prediction import Predictor
from pipeline.services.projects import get_project
from pipeline.store.images import ImageStore
from pipeline.store.records import (
    ImageRecord,
    IterationRecord,
    PredictedTag,
    ProjectRecord,
    SuggestionRecord,
    utcnow,
)
from pipeline.store.suggestions import SuggestionStore
from pipeline.vision.active_learning import encode_embedding

SAME_PLACE_OVERLAP = 0.5  # proposals overlapping this much (intersection over union) mark the same object


@dataclass(frozen=True)
class RegionProposals:
    project_id: str
    image_id: str
    proposals: list[PredictedTag]


@dataclass(frozen=True)
class Suggestion:
    """An image's suggested tags and regions; `uncertainty` is 1 minus the most probable one's probability."""

    image_id: str
    project_id: str
    iteration_id: str
    predictions: list[PredictedTag]
    uncertainty: float
    created: datetime = field(default_factory=utcnow)


def _detection_project(predictor: Predictor, project_id: str) -> ProjectRecord:
    project = get_project(predictor.account, project_id)
    if domain_of(project.domain_id).type != DomainType.OBJECT_DETECTION:
        raise bad_request(
            "BadRequestUnsupportedDomain", "Regions are proposed for object detection projects only."
        )
    return project


def _image(predictor: Predictor, record: ImageRecord) -> Image.Image:
    return Image.open(io.BytesIO(ImageStore(predictor.account).read_blob(record.resized_blob))).convert("RGB")


def _distinct_places(predictions: list[PredictedTag]) -> list[PredictedTag]:
    """The most confident box of each place: a detector scores each tag on its own, so one object can come back
    once per tag, and a proposal has no tag to tell those apart."""
    kept: list[Box] = []
    distinct = []
    for prediction in sorted(predictions, key=lambda p: p.probability, reverse=True):
        box = prediction.box()
        if box is not None and all(box.iou(other) < SAME_PLACE_OVERLAP for other in kept):
            kept.append(box)
            distinct.append(prediction)
    return distinct


def region_proposals(predictor: Predictor, project_id: str, image_id: str) -> RegionProposals:
    """Boxes the newest trained detector sees in the image, whatever their tag (one per place), most confident
    first."""
    project = _detection_project(predictor, project_id)
    [record] = get_images_by_ids(predictor.account, project.id, [image_id]) or [None]
    if record is None:
        raise image_not_found(image_id)
    try:
        iteration: IterationRecord | None = latest_completed_iteration(predictor.account, project.id)
    except CustomVisionError:
        iteration = None
    predictions = predictor.run(iteration, _image(predictor, record)) if iteration else []
    return RegionProposals(project.id, record.id, _distinct_places(predictions))


def suggest_tags_and_regions(
    predictor: Predictor, project_id: str, iteration_id: str, image_ids: Sequence[str]
) -> list[Suggestion]:
    """The iteration's predicted tags (a detector's: tagged boxes) for each image that exists, in the order asked
    for; each is stored too, replacing the image's earlier suggestion from that iteration."""
    project = get_project(predictor.account, project_id)
    if not image_ids or len(image_ids) > MAX_SUGGESTION_IMAGES:
        raise bad_request("BadRequestInvalidIds", f"Give 1 to {MAX_SUGGESTION_IMAGES} imageIds.")
    iteration = completed_iteration(predictor.account, project.id, iteration_id)
    suggestions, store = [], SuggestionStore(predictor.account)
    for record in get_images_by_ids(predictor.account, project.id, image_ids):
        predictions, features = predictor.run_with_features(iteration, _image(predictor, record))
        uncertainty = 1.0 - max((p.probability for p in predictions), default=0.0)
        suggestion = Suggestion(record.id, project.id, iteration.id, predictions, uncertainty)
        store.put(
            SuggestionRecord(
                project_id=project.id,
                iteration_id=iteration.id,
                image_id=record.id,
                predictions=predictions,
                uncertainty=uncertainty,
                created=suggestion.created,
                embedding=None if features is None else encode_embedding(features),
            )
        )
        suggestions.append(suggestion)
    return suggestions
