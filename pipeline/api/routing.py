"""Custom Vision routing rules: accepted API versions and case-insensitive paths."""

from __future__ import annotations

from fastapi import Path

from pipeline.core.errors import not_found

API_VERSIONS = ("v3.0", "v3.1", "v3.2", "v3.3", "v3.4-preview")
PREDICTION_API_VERSIONS = ("v3.0", "v3.1")
PREFIX = "/customvision/"


def normalise_path(path: str) -> str:
    """Lower-case a Custom Vision path so `/Training/Projects` routes like `/training/projects`.

    Ids are lower-case GUIDs; the one segment kept as sent is a prediction URL's published name
    (`/{project}/classify/iterations/{publishedName}/...`), which users choose.
    """
    if not path.lower().startswith(PREFIX):
        return path
    segments = path.split("/")
    is_prediction = len(segments) > 3 and segments[3].lower() == "prediction"
    out = []
    keep_next = False
    for segment in segments:
        out.append(segment if keep_next else segment.lower())
        keep_next = is_prediction and segment.lower() == "iterations"
    return "/".join(out)


class CaseInsensitivePaths:
    """ASGI middleware applying `normalise_path` before routing."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            path = normalise_path(scope["path"])
            if path != scope["path"]:
                scope = dict(scope, path=path, raw_path=path.encode())
        await self.app(scope, receive, send)


def api_version(version: str = Path(..., description="Custom Vision API version, e.g. v3.3")) -> str:
    if version not in API_VERSIONS:
        raise not_found(
            "NotFound", f"API version {version} is not supported; use one of {', '.join(API_VERSIONS)}."
        )
    return version


def prediction_api_version(
    version: str = Path(..., description="Prediction API version, v3.0 or v3.1"),
) -> str:
    if version not in PREDICTION_API_VERSIONS:
        raise not_found(
            "NotFound",
            f"Prediction API version {version} is not supported; use one of {', '.join(PREDICTION_API_VERSIONS)}.",
        )
    return version
