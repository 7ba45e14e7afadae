"""A project's `imageProcessingSettings.augmentationMethods`: which transforms training's augmented views use.

Custom Vision documents the setting (a map from transform name to enabled) but not its names, so these are Seer's
and are documented in the README. The defaults are the transforms Seer has always trained with; rotation and
equalisation are there for the projects that need them (photos taken at any angle, badly lit scenes). Names are
matched ignoring case, as the service binds every other name."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pipeline.core.errors import bad_request


class AugmentationMethod(StrEnum):
    SCALING = "scaling"  # the crop keeps 55 % to 100 % of the view's area, with a mild change of aspect
    TRANSLATION = "translation"  # the crop lies anywhere in the image, not only at its centre
    HORIZONTAL_FLIP = "horizontal flip"
    COLOR_JITTER = "color jitter"  # brightness, contrast and saturation
    ROTATION = "rotation"  # up to 15 degrees either way
    EQUALIZE = "equalize"  # histogram equalisation, on one view in four


DEFAULT_METHODS: dict[str, bool] = {
    AugmentationMethod.SCALING: True,
    AugmentationMethod.TRANSLATION: True,
    AugmentationMethod.HORIZONTAL_FLIP: True,
    AugmentationMethod.COLOR_JITTER: True,
    AugmentationMethod.ROTATION: False,
    AugmentationMethod.EQUALIZE: False,
}


def augmentation_methods(stored: Mapping[str, bool] | None) -> dict[str, bool]:
    """Every method with whether it is on: the stored choices over the defaults (None: the defaults)."""
    return {str(name): on for name, on in (DEFAULT_METHODS | dict(stored or {})).items()}


def enabled_methods(stored: Mapping[str, bool] | None) -> frozenset[AugmentationMethod]:
    return frozenset(AugmentationMethod(name) for name, on in augmentation_methods(stored).items() if on)


def updated_methods(current: Mapping[str, bool] | None, given: Mapping[str, bool]) -> dict[str, bool]:
    """`current` with the methods `given` names switched as it says; an unknown name is refused with the spec's
    BadRequestProjectImagePreprocessingSettings."""
    by_lower = {method.value.lower(): method.value for method in AugmentationMethod}
    changed = {}
    for name, on in given.items():
        method = by_lower.get(str(name).strip().lower())
        if method is None:
            raise bad_request(
                "BadRequestProjectImagePreprocessingSettings",
                f"augmentationMethods has no method {name!r}; the methods are "
                f"{', '.join(repr(m.value) for m in AugmentationMethod)}.",
            )
        changed[method] = on
    return augmentation_methods(current) | changed
