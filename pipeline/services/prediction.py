"""Predicting with a trained iteration: decode and validate the image, run the iteration's ONNX model through the
shared model cache with the same preprocessing as training, and (unless `nostore`) keep the image and result.
Serving never imports torch."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from pipeline.api.wire.images import ImageCreateStatus
from pipeline.api.wire.predictions import BoundingBox, ImagePrediction, Prediction
from pipeline.core.domains import domain_of
from pipeline.core.errors import CustomVisionError, bad_request
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import DomainType
from pipeline.services.projects import new_id
from pipeline.services.publishing import PublishedIterations
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore
from pipeline.store.predictions import PredictionStore
from pipeline.store.records import IterationRecord, PredictedTag, PredictionRecord, utcnow
from pipeline.vision.fetch import FetchError, FetchTooLarge, fetch_url
from pipeline.vision.imaging import DecodedImage, ImageRejected, decode_image, stored_copies
from pipeline.vision.inference import LoadedModel, ModelCache
from pipeline.vision.preprocessing import preprocess, preprocess_full

_APPLICATION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REJECTION_CODES = {
    ImageCreateStatus.ERROR_IMAGE_SIZE: "BadRequestImageSizeBytes",
    ImageCreateStatus.ERROR_IMAGE_DIMENSIONS: "BadRequestImageDimensions",
    ImageCreateStatus.ERROR_IMAGE_FORMAT: "BadRequestImageFormat",
}


@dataclass(frozen=True)
class PredictionRequest:
    """What to predict with and what to do with the result."""

    iteration: IterationRecord
    kind: str  # "Classification" or "ObjectDetection": the route's kind, checked against the iteration
    store: bool = True
    application: str | None = None


def _decode(data: bytes, settings: Settings) -> DecodedImage:
    try:
        return decode_image(data, settings, max_bytes=settings.max_prediction_image_bytes)
    except ImageRejected as rejected:
        code = _REJECTION_CODES.get(rejected.status, "BadRequestImageStream")
        raise bad_request(code, rejected.message) from rejected


def fetch_image(url: str, settings: Settings) -> bytes:
    """The bytes behind a prediction or quick-test URL, or the Custom Vision error."""
    try:
        return fetch_url(url, settings, max_bytes=settings.max_prediction_image_bytes)
    except FetchTooLarge as error:
        raise bad_request("BadRequestImageSizeBytes", str(error)) from error
    except FetchError as error:
        raise bad_request("BadRequestImageUrl", str(error)) from error


def _classify(model: LoadedModel, image: Image.Image) -> list[Prediction]:
    probabilities = model.run(preprocess(image, model.input_size))[0]
    predictions = [
        Prediction(probability=float(p), tag_id=label.tag_id, tag_name=label.name)
        for label, p in zip(model.labels, probabilities, strict=True)
    ]
    return sorted(predictions, key=lambda p: p.probability, reverse=True)


def _detect(model: LoadedModel, image: Image.Image) -> list[Prediction]:
    """The exported detector already decodes and suppresses: its boxes come normalised, by falling score, at
    most 200, padded with score 0."""
    outputs = dict(zip(model.output_names, model.run(preprocess_full(image, model.input_size)), strict=True))
    predictions = [
        Prediction(
            probability=float(score),
            tag_id=model.labels[int(tag)].tag_id,
            tag_name=model.labels[int(tag)].name,
            bounding_box=BoundingBox(left=box[0], top=box[1], width=box[2], height=box[3]),
        )
        for box, score, tag in zip(
            outputs["detected_boxes"].tolist(),
            outputs["detected_scores"].tolist(),
            outputs["detected_classes"].tolist(),
            strict=True,
        )
        if score > 0
    ]
    return sorted(predictions, key=lambda p: p.probability, reverse=True)


_PREDICT = {DomainType.CLASSIFICATION: _classify, DomainType.OBJECT_DETECTION: _detect}
# A stored prediction's boxes live in one table property (at most 64 KiB): the most probable ones are kept.
MAX_STORED_BOXES = 64


class Predictor:
    """One per app: owns the bounded cache of loaded models, keyed by model blob (written once per iteration)."""

    def __init__(self, account: StorageAccount, settings: Settings, models: ModelCache) -> None:
        self.account = account
        self.settings = settings
        self.models = models
        self.published = PublishedIterations(account, settings.published_cache_seconds)

    def model(self, iteration: IterationRecord) -> LoadedModel:
        blob = iteration.model_blob
        if not blob:
            raise CustomVisionError(
                400, "BadRequestIterationIsNotTrained", f"Iteration {iteration.name} is not trained."
            )
        return self.models.get(blob, lambda: IterationStore(self.account).read_artefact(blob))

    def run(self, iteration: IterationRecord, image: Image.Image) -> list[Prediction]:
        """The iteration's predictions for a decoded image, most probable first (boxes for detectors)."""
        return _PREDICT[domain_of(iteration.domain_id).type](self.model(iteration), image)

    def predict(self, request: PredictionRequest, data: bytes) -> ImagePrediction:
        iteration = request.iteration
        domain_type = domain_of(iteration.domain_id).type
        if domain_type != request.kind:
            raise bad_request(
                "BadRequestUnsupportedDomain",
                f"Iteration {iteration.name} is a {domain_type} model; use the "
                f"{'classify' if domain_type == DomainType.CLASSIFICATION else 'detect'} endpoints.",
            )
        if request.application is not None and not _APPLICATION.match(request.application):
            raise bad_request(
                "BadRequestPredictionInvalidApplicationName",
                "application must be 1 to 64 letters, digits, '.', '-' or '_'.",
            )
        decoded = _decode(data, self.settings)
        result = ImagePrediction(
            id=new_id(),
            project=iteration.project_id,
            iteration=iteration.id,
            created=utcnow(),
            predictions=self.run(iteration, decoded.image),
        )
        if request.store:
            self._store(request, data, decoded, result)
        return result

    def _store(
        self, request: PredictionRequest, data: bytes, decoded: DecodedImage, result: ImagePrediction
    ) -> None:
        store = PredictionStore(self.account)
        prefix = f"{result.project}/{result.id}"
        resized, thumbnail = stored_copies(decoded.image, self.settings)
        blobs = {
            f"{prefix}/original.{decoded.extension}": (data, decoded.content_type),
            f"{prefix}/resized.jpg": (resized, "image/jpeg"),
            f"{prefix}/thumbnail.jpg": (thumbnail, "image/jpeg"),
        }
        with ThreadPoolExecutor(max_workers=len(blobs)) as pool:  # blobs in parallel; the row only after all
            list(pool.map(lambda item: store.put_blob(item[0], *item[1]), blobs.items()))
        original, resized_blob, thumbnail_blob = blobs
        kept = (
            result.predictions
            if request.kind == DomainType.CLASSIFICATION
            else result.predictions[:MAX_STORED_BOXES]
        )
        store.insert(
            PredictionRecord(
                id=result.id,
                project_id=result.project,
                iteration_id=result.iteration,
                domain_id=request.iteration.domain_id,
                application=request.application,
                predictions=[
                    PredictedTag(
                        tag_id=p.tag_id,
                        tag_name=p.tag_name,
                        probability=p.probability,
                        **(p.bounding_box.model_dump() if p.bounding_box else {}),
                    )
                    for p in kept
                ],
                original_blob=original,
                resized_blob=resized_blob,
                thumbnail_blob=thumbnail_blob,
                width=decoded.width,
                height=decoded.height,
                created=result.created,
            )
        )
