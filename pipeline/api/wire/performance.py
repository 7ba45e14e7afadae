"""Iteration performance on the wire: metrics overall and per tag, and the per-image cross-validation results."""

from __future__ import annotations

from datetime import datetime

from pipeline.api.wire.base import WireModel
from pipeline.api.wire.images import ImageRegion, ImageTag
from pipeline.api.wire.predictions import Prediction


class TagPerformance(WireModel):
    id: str
    name: str
    precision: float
    precision_std_deviation: float
    recall: float
    recall_std_deviation: float
    average_precision: float


class IterationPerformance(WireModel):
    per_tag_performance: list[TagPerformance]
    precision: float
    precision_std_deviation: float
    recall: float
    recall_std_deviation: float
    average_precision: float


class ImagePerformance(WireModel):
    predictions: list[Prediction]
    id: str
    created: datetime
    width: int
    height: int
    image_uri: str
    thumbnail_uri: str
    tags: list[ImageTag]
    regions: list[ImageRegion]
