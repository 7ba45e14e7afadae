"""Custom Vision routing rules: accepted API versions, case-insensitive paths and query parameter names."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

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


def query_names(openapi: dict) -> dict[str, str]:
    """Each query parameter name the app declares (`tagIds`, `iterationId`, ...), by its lower-case form."""
    return {
        parameter["name"].lower(): parameter["name"]
        for path in openapi.get("paths", {}).values()
        for operation in path.values()
        for parameter in operation.get("parameters", ())
        if parameter.get("in") == "query"
    }


def normalise_query(query: bytes, names: dict[str, str]) -> bytes:
    """Renames `TagIds=`, `TAGIDS=` ... to the declared `tagIds=` (the real service binds query names ignoring
    case); values and unknown names are left exactly as sent."""
    pairs = query.split(b"&")
    for index, pair in enumerate(pairs):
        key, sep, value = pair.partition(b"=")
        canonical = names.get(unquote(key.decode("latin-1")).lower())
        if canonical is not None:
            pairs[index] = canonical.encode() + sep + value
    return b"&".join(pairs)


class CaseInsensitiveQuery:
    """ASGI middleware applying `normalise_query` before routing, with the names from the app's OpenAPI description
    (read at the first query string, not at startup: building the description takes a few tenths of a second)."""

    def __init__(self, app, openapi: Callable[[], dict]) -> None:
        self.app = app
        self.openapi = openapi
        self.names: dict[str, str] | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            if self.names is None:
                self.names = query_names(self.openapi())
            query = normalise_query(scope["query_string"], self.names)
            if query != scope["query_string"]:
                scope = dict(scope, query_string=query)
        await self.app(scope, receive, send)


async def api_version(version: str = Path(..., description="Custom Vision API version, e.g. v3.3")) -> str:
    if version not in API_VERSIONS:
        raise not_found(
            "NotFound", f"API version {version} is not supported; use one of {', '.join(API_VERSIONS)}."
        )
    return version


async def prediction_api_version(
    version: str = Path(..., description="Prediction API version, v3.0 or v3.1"),
) -> str:
    if version not in PREDICTION_API_VERSIONS:
        raise not_found(
            "NotFound",
            f"Prediction API version {version} is not supported; use one of {', '.join(PREDICTION_API_VERSIONS)}.",
        )
    return version
