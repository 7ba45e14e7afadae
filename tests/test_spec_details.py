"""Details of the Training API that clients rely on, as the official description states them: CreateImageTags takes
128 entries, DeleteImages with allImages answers 202, sourceUrl and trainingTimeInMinutes are never null, and
GetTags/GetTag with iterationId report the counts that iteration trained on."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pipeline.core.limits import MAX_IMAGE_TAG_ENTRIES
from tests.images import make_image, pattern_image

BASE = "/customvision/v3.3/training/projects"


def _tags(client: TestClient, pid: str, count: int) -> list[str]:
    return [client.post(f"{BASE}/{pid}/tags", params={"name": f"t{n}"}).json()["id"] for n in range(count)]


def _upload(client: TestClient, pid: str, images: list[bytes], tag_id: str | None = None) -> list[str]:
    files = [("imageData", (f"{n}.jpg", data, "image/jpeg")) for n, data in enumerate(images)]
    params = {"tagIds": tag_id} if tag_id else {}
    response = client.post(f"{BASE}/{pid}/images", params=params, files=files)
    assert response.status_code == 200, response.text
    return [r["image"]["id"] for r in response.json()["images"]]


def test_create_image_tags_takes_128_entries(client: TestClient, project: dict) -> None:
    assert MAX_IMAGE_TAG_ENTRIES == 128
    pid = project["id"]
    tags = _tags(client, pid, 20)  # 20 tags per image at most: 128 entries span 7 images
    images = _upload(client, pid, [make_image(64, 48, seed=n) for n in range(7)])
    entries = [{"imageId": i, "tagId": t} for i in images for t in tags]
    accepted = client.post(f"{BASE}/{pid}/images/tags", json={"tags": entries[:128]})
    assert accepted.status_code == 200, accepted.text
    assert len(accepted.json()["created"]) == 128
    refused = client.post(f"{BASE}/{pid}/images/tags", json={"tags": entries[:129]})
    assert (refused.status_code, refused.json()["code"]) == (400, "BadRequestExceededBatchSize")


def test_delete_all_images_answers_202(client: TestClient, project: dict) -> None:
    pid = project["id"]
    first, second = _upload(client, pid, [make_image(64, 48, seed=n) for n in range(2)])
    one = client.delete(f"{BASE}/{pid}/images", params={"imageIds": first, "allIterations": "true"})
    assert one.status_code == 202
    assert client.delete(f"{BASE}/{pid}/images", params={"allImages": "true"}).status_code == 202
    assert client.get(f"{BASE}/{pid}/images/count").json() == 0
    assert client.delete(f"{BASE}/{pid}/images", params={"imageIds": second}).status_code == 204


def test_source_url_and_training_time_are_never_null(client: TestClient, project: dict) -> None:
    pid = project["id"]
    raw = client.post(
        f"{BASE}/{pid}/images", content=make_image(64, 48), headers={"Content-Type": "image/jpeg"}
    )
    [result] = raw.json()["images"]
    assert isinstance(result["sourceUrl"], str)
    tags = _tags(client, pid, 2)
    for kind, tag in enumerate(tags):
        _upload(client, pid, [pattern_image(kind, n, 64, 48) for n in range(5)], tag)
    iteration = client.post(f"{BASE}/{pid}/train").json()  # queued where no job listens: still Training
    assert iteration["status"] == "Training"
    assert iteration["trainingTimeInMinutes"] == 0
    assert client.get(f"{BASE}/{pid}/iterations/{iteration['id']}").json()["trainingTimeInMinutes"] == 0


def test_tag_counts_of_an_iteration_are_its_training_set(client: TestClient, project: dict) -> None:
    pid = project["id"]
    first, second = _tags(client, pid, 2)
    _upload(client, pid, [pattern_image(0, n, 64, 48) for n in range(5)], first)
    _upload(client, pid, [pattern_image(1, n, 64, 48) for n in range(6)], second)
    iteration = client.post(f"{BASE}/{pid}/train").json()["id"]
    _upload(client, pid, [pattern_image(0, n, 64, 48) for n in range(5, 8)], first)
    late = client.post(f"{BASE}/{pid}/tags", params={"name": "late"}).json()["id"]

    def counts(params: dict) -> dict[str, int]:
        return {t["id"]: t["imageCount"] for t in client.get(f"{BASE}/{pid}/tags", params=params).json()}

    assert counts({}) == {first: 8, second: 6, late: 0}
    assert counts({"iterationId": iteration}) == {first: 5, second: 6}
    assert (
        client.get(f"{BASE}/{pid}/tags/{first}", params={"iterationId": iteration}).json()["imageCount"] == 5
    )
    assert client.get(f"{BASE}/{pid}/tags/{first}").json()["imageCount"] == 8
    missing = client.get(f"{BASE}/{pid}/tags/{late}", params={"iterationId": iteration})
    assert (missing.status_code, missing.json()["code"]) == (404, "NotFoundTag")
    unknown = client.get(f"{BASE}/{pid}/tags", params={"iterationId": "00000000-0000-0000-0000-000000000000"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NotFoundIteration")
