"""The one box type: a tag's box normalised to the image (left, top, width, height in 0..1 from the top-left
corner), with the probability a model gave it (1 for a box a person drew). Regions, predictions, metrics,
the evaluation file and the detector all use it; only `pipeline.api.mapping` turns it into wire shapes."""

from __future__ import annotations

from dataclasses import dataclass

# Coordinates a client computed in floating point may overshoot 1 by a rounding error.
COORDINATE_SLACK = 1e-6


@dataclass(frozen=True)
class Box:
    tag_id: str
    left: float
    top: float
    width: float
    height: float
    probability: float = 1.0

    @property
    def has_area(self) -> bool:
        return self.width > 0 and self.height > 0

    def inside_image(self) -> bool:
        """Within 0..1 with a positive size (NaN fails every comparison, so it is never inside)."""
        return (
            0 <= self.left <= 1
            and 0 <= self.top <= 1
            and 0 < self.width <= 1
            and 0 < self.height <= 1
            and self.left + self.width <= 1 + COORDINATE_SLACK
            and self.top + self.height <= 1 + COORDINATE_SLACK
        )

    def same_place(self, other: Box) -> bool:
        """The same tag on the same box, to within rounding (a duplicate region)."""
        return self.tag_id == other.tag_id and all(
            abs(a - b) <= COORDINATE_SLACK
            for a, b in (
                (self.left, other.left),
                (self.top, other.top),
                (self.width, other.width),
                (self.height, other.height),
            )
        )

    def iou(self, other: Box) -> float:
        """Intersection over union of the two boxes, whatever their tags."""
        width = min(self.left + self.width, other.left + other.width) - max(self.left, other.left)
        height = min(self.top + self.height, other.top + other.height) - max(self.top, other.top)
        if width <= 0 or height <= 0:
            return 0.0
        overlap = width * height
        return overlap / (self.width * self.height + other.width * other.height - overlap)
