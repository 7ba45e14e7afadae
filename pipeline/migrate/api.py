"""A small Training API client (httpx) for the migration: the calls it makes, answers parsed into the wire models
of pipeline.api.wire where they fit both Custom Vision and Seer, and every failure raised as ApiError."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import httpx

from pipeline.api.wire.base import WireModel
from pipeline.api.wire.iterations import Iteration
from pipeline.api.wire.projects import Project, Tag

API_VERSION = "v3.3"
PAGE = 256  # GetImages' largest page
_RETRIES = 4  # 429 and 503 are retried after their Retry-After (capped), this many times
_MAX_WAIT_SECONDS = 30.0


class ApiError(Exception):
    """A call failed: the endpoint's Custom Vision error (code and message), or the transport's."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class RemoteProject(Project):
    description: str | None = None  # Custom Vision sends null for no description


class RemoteTag(Tag):
    description: str | None = None
    image_count: int = 0


class CreatedImage(WireModel):
    """One entry of an ImageCreateSummary: only the status matters here (the image itself may carry nulls)."""

    source_url: str | None = None
    status: str


class CreatedImages(WireModel):
    images: list[CreatedImage]


class SourceRegion(WireModel):
    tag_id: str
    left: float
    top: float
    width: float
    height: float


class SourceImageTag(WireModel):
    tag_id: str


class SourceImage(WireModel):
    """An image as GetImages lists it; Custom Vision sends null for an image's missing tags, regions or metadata."""

    id: str
    original_image_uri: str
    tags: list[SourceImageTag] | None = None
    regions: list[SourceRegion] | None = None
    metadata: dict[str, str] | None = None


@dataclass(frozen=True)
class Upload:
    """One image for CreateImagesFromFiles, its tags and regions already the target's ids."""

    name: str
    data: bytes
    tag_ids: tuple[str, ...]
    regions: tuple[SourceRegion, ...]


def _retry_after(response: httpx.Response) -> float:
    """Seconds the endpoint asks to wait (Retry-After in seconds; 1 when absent or a date), capped."""
    try:
        return min(_MAX_WAIT_SECONDS, max(0.0, float(response.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def _error(response: httpx.Response) -> ApiError:
    """The endpoint's Custom Vision error, or the status and the start of the body when it sent none."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body:
        return ApiError(str(body["code"]), str(body.get("message", "")), response.status_code)
    return ApiError(f"HTTP{response.status_code}", response.text[:200], response.status_code)


class RemoteIteration(Iteration):
    """Older Custom Vision iterations may lack these."""

    domain_id: str | None = None
    training_type: str = "Regular"
    reserved_budget_in_hours: int = 0
    exportable: bool = False


class TrainingApi:
    def __init__(
        self, endpoint: str, key: str, transport: httpx.BaseTransport | None = None, timeout: float = 120
    ):
        self.endpoint = endpoint.rstrip("/")
        self.http = httpx.Client(
            base_url=f"{self.endpoint}/customvision/{API_VERSION}/training",
            headers={"Training-Key": key},
            timeout=timeout,
            transport=transport,
        )
        # Image bytes come from read-only links: no key goes with them.
        self.downloads = httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)

    def close(self) -> None:
        self.http.close()
        self.downloads.close()

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        """The answer, after retrying 429 and 503 up to _RETRIES times; any other failure is an ApiError."""
        attempt = 0
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise ApiError("ConnectionFailed", f"{method} {self.endpoint}{path}: {exc}") from exc
            if response.status_code not in (429, 503) or attempt == _RETRIES:
                break
            attempt += 1
            time.sleep(_retry_after(response))
        if response.status_code >= 400:
            raise _error(response)
        return response

    def projects(self) -> list[RemoteProject]:
        return [RemoteProject.model_validate(p) for p in self._call("GET", "/projects").json()]

    def create_project(self, project: Project) -> RemoteProject:
        settings = project.settings
        params = {
            "name": project.name,
            "description": project.description or "",
            "domainId": settings.domain_id,
            "classificationType": settings.classification_type,
            "targetExportPlatforms": ",".join(settings.target_export_platforms or []) or None,
        }
        params = {k: v for k, v in params.items() if v is not None}
        return RemoteProject.model_validate(self._call("POST", "/projects", params=params).json())

    def update_settings(self, project: RemoteProject, changes: Mapping[str, object]) -> None:
        """UpdateProject with the project's own name, description and domain, and these settings (JSON names)."""
        settings = {
            "domainId": project.settings.domain_id,
            "classificationType": project.settings.classification_type,
            **changes,
        }
        body = {"name": project.name, "description": project.description or "", "settings": settings}
        self._call("PATCH", f"/projects/{project.id}", json=body)

    def tags(self, project_id: str) -> list[RemoteTag]:
        return [RemoteTag.model_validate(t) for t in self._call("GET", f"/projects/{project_id}/tags").json()]

    def create_tag(self, project_id: str, tag: Tag) -> RemoteTag:
        params = {"name": tag.name, "description": tag.description or "", "type": tag.type}
        return RemoteTag.model_validate(
            self._call("POST", f"/projects/{project_id}/tags", params=params).json()
        )

    def image_count(self, project_id: str) -> int:
        return sum(
            int(self._call("GET", f"/projects/{project_id}/images/{kind}/count").json())
            for kind in ("tagged", "untagged")
        )

    def images(self, project_id: str) -> Iterator[SourceImage]:
        """Every image, oldest first, a page at a time."""
        skip = 0
        while True:
            params = {"take": PAGE, "skip": skip, "orderBy": "Oldest"}
            page = self._call("GET", f"/projects/{project_id}/images", params=params).json()
            yield from (SourceImage.model_validate(i) for i in page)
            if len(page) < PAGE:
                return
            skip += len(page)

    def download(self, url: str) -> bytes:
        try:
            response = self.downloads.get(url)
        except httpx.HTTPError as exc:
            raise ApiError("ErrorSource", f"could not download the image: {exc}") from exc
        if response.status_code != 200:
            raise ApiError("ErrorSource", f"the image download answered HTTP {response.status_code}")
        return response.content

    def create_images(
        self, project_id: str, uploads: Sequence[Upload], metadata: Mapping[str, str]
    ) -> list[CreatedImage]:
        body = {
            "images": [
                {
                    "name": upload.name,
                    "contents": base64.b64encode(upload.data).decode(),
                    "tagIds": list(upload.tag_ids),
                    "regions": [r.model_dump(by_alias=True) for r in upload.regions],
                }
                for upload in uploads
            ],
            "metadata": dict(metadata) or None,
        }
        answer = self._call("POST", f"/projects/{project_id}/images/files", json=body)
        return CreatedImages.model_validate(answer.json()).images

    def iterations(self, project_id: str) -> list[RemoteIteration]:
        return [
            RemoteIteration.model_validate(i)
            for i in self._call("GET", f"/projects/{project_id}/iterations").json()
        ]

    def iteration(self, project_id: str, iteration_id: str) -> RemoteIteration:
        return RemoteIteration.model_validate(
            self._call("GET", f"/projects/{project_id}/iterations/{iteration_id}").json()
        )

    def train(self, project_id: str) -> RemoteIteration:
        return RemoteIteration.model_validate(self._call("POST", f"/projects/{project_id}/train").json())

    def publish(self, project_id: str, iteration_id: str, publish_name: str, prediction_id: str) -> None:
        params = {"publishName": publish_name, "predictionId": prediction_id}
        self._call("POST", f"/projects/{project_id}/iterations/{iteration_id}/publish", params=params)
