"""Images through the HTTP API and the official SDK, on real Azurite: uploads, listing, tags, regions, bad input."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from PIL import Image

from pipeline.services import images_create as service
from pipeline.store.images import ImageStore
from tests.conftest import TRAINING_KEY
from tests.images import make_image, noise_image, png_declaring

BASE = "/customvision/v3.3/training"


def _url(project_id: str, path: str = "") -> str:
    return f"{BASE}/projects/{project_id}/images{path}"


def _tag(client, project_id: str, name: str, tag_type: str = "Regular") -> str:
    response = client.post(f"{BASE}/projects/{project_id}/tags", params={"name": name, "type": tag_type})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def _files(*images: bytes, tag_ids: list[str] | None = None, **entry) -> dict:
    """An ImageFileCreateBatch body."""
    return {
        "images": [
            {"name": f"img{i}.jpg", "contents": base64.b64encode(data).decode(), **entry}
            for i, data in enumerate(images)
        ],
        "tagIds": tag_ids or [],
    }


def _upload(client, project_id: str, *images: bytes, tag_ids: list[str] | None = None, **entry) -> list[dict]:
    response = client.post(_url(project_id, "/files"), json=_files(*images, tag_ids=tag_ids, **entry))
    assert response.status_code == 200, response.text
    return [r["image"] for r in response.json()["images"]]


def _counts(client, project_id: str) -> tuple[int, dict[str, int]]:
    """Total images and each tag's image count: what bad input must leave unchanged."""
    total = client.get(_url(project_id, "/count")).json()
    tags = client.get(f"{BASE}/projects/{project_id}/tags").json()
    return total, {t["name"]: t["imageCount"] for t in tags}


# --- the official SDK ---------------------------------------------------------------------------------------


def test_sdk_image_workflow(trainer):
    from azure.cognitiveservices.vision.customvision.training.models import (
        ImageFileCreateBatch,
        ImageFileCreateEntry,
    )

    project = trainer.create_project(f"sdk-images-{uuid.uuid4()}")
    ants = trainer.create_tag(project.id, "ants")
    bees = trainer.create_tag(project.id, "bees")

    summary = trainer.create_images_from_data(project.id, make_image(400, 300, seed=1), tag_ids=[ants.id])
    assert summary.is_batch_successful
    [created] = summary.images
    assert created.status == "OK"
    assert (created.image.width, created.image.height) == (400, 300)
    assert [t.tag_name for t in created.image.tags] == ["ants"]
    thumbnail = httpx.get(created.image.thumbnail_uri)  # a working SAS URL
    assert thumbnail.status_code == 200
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) <= 256

    batch = ImageFileCreateBatch(
        images=[ImageFileCreateEntry(name=f"bee{i}.jpg", contents=make_image(seed=10 + i)) for i in range(3)],
        tag_ids=[bees.id],
    )
    summary = trainer.create_images_from_files(project.id, batch)
    assert summary.is_batch_successful
    assert [i.source_url for i in summary.images] == ["bee0.jpg", "bee1.jpg", "bee2.jpg"]
    trainer.create_images_from_data(project.id, make_image(seed=20))  # untagged

    assert len(trainer.get_tagged_images(project.id)) == 4
    assert {i.id for i in trainer.get_tagged_images(project.id, tag_ids=[ants.id])} == {created.image.id}
    assert trainer.get_tagged_image_count(project.id) == 4
    assert trainer.get_tagged_image_count(project.id, tag_ids=[bees.id]) == 3
    assert trainer.get_untagged_image_count(project.id) == 1
    assert len(trainer.get_untagged_images(project.id)) == 1
    assert {t.name: t.image_count for t in trainer.get_tags(project.id)} == {"ants": 1, "bees": 3}

    bee_ids = [i.image.id for i in summary.images]
    assert [i.id for i in trainer.get_images_by_ids(project.id, image_ids=bee_ids[:2])] == bee_ids[:2]
    trainer.delete_images(project.id, image_ids=bee_ids[:2])
    assert trainer.get_tagged_image_count(project.id) == 2
    assert {t.name: t.image_count for t in trainer.get_tags(project.id)} == {"ants": 1, "bees": 1}
    trainer.delete_images(project.id, all_images=True)
    assert trainer.get_image_count(project.id) == 0


def test_sdk_urls_tags_regions_and_metadata(trainer, image_server):
    from azure.cognitiveservices.vision.customvision.training.models import (
        ImageRegionCreateEntry,
        ImageTagCreateEntry,
        ImageUrlCreateBatch,
        ImageUrlCreateEntry,
        Region,
    )

    base, served = image_server
    served["/sdk.jpg"] = make_image(seed=30)
    project = trainer.create_project(f"sdk-edits-{uuid.uuid4()}")
    fork = trainer.create_tag(project.id, "fork")
    knife = trainer.create_tag(project.id, "knife")
    box = Region(tag_id=fork.id, left=0.1, top=0.2, width=0.3, height=0.4)
    batch = ImageUrlCreateBatch(images=[ImageUrlCreateEntry(url=f"{base}/sdk.jpg", regions=[box])])
    [result] = trainer.create_images_from_urls(project.id, batch).images
    assert (result.status, result.source_url) == ("OK", f"{base}/sdk.jpg")
    image_id = result.image.id
    assert [(r.tag_name, r.left, r.height) for r in result.image.regions] == [("fork", 0.1, 0.4)]

    tags = trainer.create_image_tags(
        project.id, tags=[ImageTagCreateEntry(image_id=image_id, tag_id=knife.id)]
    )
    assert [e.tag_id for e in tags.created] == [knife.id]
    entry = ImageRegionCreateEntry(
        image_id=image_id, tag_id=knife.id, left=0.5, top=0.5, width=0.5, height=0.5
    )
    [region] = trainer.create_image_regions(project.id, regions=[entry]).created
    assert region.tag_name == "knife"
    summary = trainer.update_image_metadata(project.id, image_ids=[image_id], metadata={"source": "sdk"})
    assert summary.is_batch_successful

    trainer.delete_image_regions(project.id, region_ids=[region.region_id])
    trainer.delete_image_tags(project.id, image_ids=[image_id], tag_ids=[knife.id])
    [image] = trainer.get_images_by_ids(project.id, image_ids=[image_id])
    assert (image.tags, [r.tag_name for r in image.regions], image.metadata) == (
        [],
        ["fork"],
        {"source": "sdk"},
    )


# --- uploads over raw HTTP ----------------------------------------------------------------------------------


def test_octet_stream_upload(client, project):
    response = client.post(
        _url(project["id"]),
        content=make_image(300, 200),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    [result] = response.json()["images"]
    assert result["status"] == "OK"
    # Custom Vision reports the normalised size: shortest side upscaled to 256.
    assert (result["image"]["width"], result["image"]["height"]) == (384, 256)


def test_multipart_with_several_named_parts(client, project):
    files = [
        ("one", ("a.png", make_image(fmt="PNG", seed=1))),
        ("two", ("b.gif", make_image(fmt="GIF", seed=2))),
    ]
    response = client.post(_url(project["id"]), files=files)
    assert response.status_code == 200, response.text
    assert [(r["sourceUrl"], r["status"]) for r in response.json()["images"]] == [
        ("a.png", "OK"),
        ("b.gif", "OK"),
    ]


def test_url_upload(client, project, image_server):
    base, served = image_server
    served["/good.jpg"] = make_image(seed=3)
    served["/big.bmp"] = noise_image(1600, 1500)
    tag = _tag(client, project["id"], "web")
    urls = [f"{base}/good.jpg", f"{base}/missing.jpg", "ftp://example.com/x.jpg", f"{base}/big.bmp"]
    body = {"images": [{"url": u} for u in urls], "tagIds": [tag]}
    response = client.post(_url(project["id"], "/urls"), json=body)
    assert response.status_code == 207, response.text
    summary = response.json()
    assert summary["isBatchSuccessful"] is False
    assert [(r["sourceUrl"], r["status"]) for r in summary["images"]] == [
        (urls[0], "OK"),
        (urls[1], "ErrorSource"),
        (urls[2], "ErrorSource"),
        (urls[3], "ErrorImageSize"),
    ]
    assert _counts(client, project["id"]) == (1, {"web": 1})


def test_listing_order_paging_and_tag_filter(client, project):
    pid = project["id"]
    red = _tag(client, pid, "red")
    first = _upload(client, pid, make_image(seed=1), tag_ids=[red])[0]["id"]
    second = _upload(client, pid, make_image(seed=2))[0]["id"]
    third = _upload(client, pid, make_image(seed=3), tag_ids=[red])[0]["id"]

    ids = lambda response: [i["id"] for i in response.json()]  # noqa: E731
    assert ids(client.get(_url(pid))) == [third, second, first]
    assert ids(client.get(_url(pid), params={"orderBy": "Oldest"})) == [first, second, third]
    assert ids(client.get(_url(pid), params={"orderBy": "Oldest", "take": 1, "skip": 1})) == [second]
    assert ids(client.get(_url(pid), params={"tagIds": red})) == [third, first]
    assert ids(client.get(_url(pid), params={"taggingStatus": "Untagged"})) == [second]
    assert ids(client.get(_url(pid, "/tagged"), params={"orderBy": "Oldest"})) == [first, third]
    assert client.get(_url(pid, "/count"), params={"taggingStatus": "Tagged", "tagIds": red}).json() == 2
    assert client.get(_url(pid), params={"take": 257}).json()["code"] == "BadRequestInvalid"
    assert client.get(_url(pid), params={"orderBy": "Sideways"}).status_code == 400


def test_duplicate_returns_existing_image_and_adds_tags(client, project):
    pid = project["id"]
    a, b = _tag(client, pid, "a"), _tag(client, pid, "b")
    data = make_image(seed=7)
    [original] = _upload(client, pid, data, tag_ids=[a])
    response = client.post(_url(pid, "/files"), json=_files(data, tag_ids=[b]))
    assert response.status_code == 200
    [result] = response.json()["images"]
    assert result["status"] == "OKDuplicate"
    assert result["image"]["id"] == original["id"]
    assert {t["tagName"] for t in result["image"]["tags"]} == {"a", "b"}
    assert _counts(client, pid) == (1, {"a": 1, "b": 1})


def test_same_image_twice_in_one_batch_is_stored_once(client, project):
    response = client.post(_url(project["id"], "/files"), json=_files(make_image(seed=8), make_image(seed=8)))
    assert response.status_code == 200
    results = response.json()["images"]
    assert sorted(r["status"] for r in results) == ["OK", "OKDuplicate"]
    assert results[0]["image"]["id"] == results[1]["image"]["id"]
    assert _counts(client, project["id"])[0] == 1


def test_stale_hash_claim_is_taken_over(client, project, account, monkeypatch):
    """A claim left by an upload that died before writing its row must not block the image for ever."""
    data = make_image(seed=9)
    ImageStore(account).claim_hash(project["id"], hashlib.sha256(data).hexdigest(), str(uuid.uuid4()))
    monkeypatch.setattr(service, "CLAIM_GRACE", timedelta(0))
    [image] = _upload(client, project["id"], data)
    assert (
        client.get(_url(project["id"], "/id"), params={"imageIds": image["id"]}).json()[0]["id"]
        == image["id"]
    )


def test_a_hash_claim_that_never_settles_gives_up_instead_of_hanging(client, project, monkeypatch):
    """Whatever the claims do (here: held by an image that never appears, and gone whenever looked at), one
    upload ends with ErrorStorage after the claim deadline; it must never spin for ever."""
    monkeypatch.setattr(service, "CLAIM_DEADLINE_SECONDS", 1.0)
    monkeypatch.setattr(
        ImageStore, "claim_hash", lambda self, project_id, content_hash, image_id: "elsewhere"
    )
    monkeypatch.setattr(ImageStore, "hash_claim", lambda self, project_id, content_hash: None)
    outcome: dict = {}
    upload = threading.Thread(
        target=lambda: outcome.update(
            response=client.post(_url(project["id"], "/files"), json=_files(make_image(seed=10)))
        ),
        daemon=True,
    )
    upload.start()
    upload.join(timeout=20)
    assert not upload.is_alive(), "the upload is still looping on the hash claim"
    assert outcome["response"].status_code == 207
    assert outcome["response"].json()["images"][0]["status"] == "ErrorStorage"


def test_partial_batch_is_207(client, project):
    tag = _tag(client, project["id"], "t")
    response = client.post(
        _url(project["id"], "/files"), json=_files(make_image(seed=1), b"not an image", tag_ids=[tag])
    )
    assert response.status_code == 207
    summary = response.json()
    assert summary["isBatchSuccessful"] is False
    assert [r["status"] for r in summary["images"]] == ["OK", "ErrorImageFormat"]
    assert summary["images"][1]["image"] is None
    assert _counts(client, project["id"]) == (1, {"t": 1})


def test_negative_and_regular_tag_on_one_image(client, project):
    pid = project["id"]
    regular, negative = _tag(client, pid, "cat"), _tag(client, pid, "none", "Negative")
    response = client.post(_url(pid, "/files"), json=_files(make_image(), tag_ids=[regular, negative]))
    assert response.status_code == 207
    assert response.json()["images"][0]["status"] == "ErrorNegativeAndRegularTagOnSameImage"
    assert _counts(client, pid) == (0, {"cat": 0, "none": 0})


def test_regions_add_and_delete(client, project):
    pid = project["id"]
    tag = _tag(client, pid, "box")
    [image] = _upload(
        client,
        pid,
        make_image(),
        regions=[{"tagId": tag, "left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2}],
    )
    assert len(image["regions"]) == 1

    box = {"imageId": image["id"], "tagId": tag, "left": 0.5, "top": 0.5, "width": 0.25, "height": 0.5}
    response = client.post(_url(pid, "/regions"), json={"regions": [box]})
    assert response.status_code == 200, response.text
    [created] = response.json()["created"]
    assert (created["tagName"], created["left"], created["height"]) == ("box", 0.5, 0.5)

    response = client.post(_url(pid, "/regions"), json={"regions": [box]})
    assert response.status_code == 207
    assert len(response.json()["duplicated"]) == 1

    outside = dict(box, left=0.9, width=0.2)
    response = client.post(_url(pid, "/regions"), json={"regions": [outside]})
    assert (response.status_code, response.json()["code"]) == (400, "BadRequestImageRegions")

    assert client.delete(_url(pid, "/regions"), params={"regionIds": created["regionId"]}).status_code == 204
    [stored] = client.get(_url(pid, "/id"), params={"imageIds": image["id"]}).json()
    assert [r["regionId"] for r in stored["regions"]] == [image["regions"][0]["regionId"]]


def test_image_tags_add_and_delete(client, project):
    pid = project["id"]
    a, b = _tag(client, pid, "a"), _tag(client, pid, "b")
    [image] = _upload(client, pid, make_image(), tag_ids=[a])
    entries = [{"imageId": image["id"], "tagId": a}, {"imageId": image["id"], "tagId": b}]
    response = client.post(_url(pid, "/tags"), json={"tags": entries})
    assert response.status_code == 200
    summary = response.json()
    assert [e["tagId"] for e in summary["created"]] == [b]
    assert [e["tagId"] for e in summary["duplicated"]] == [a]
    assert _counts(client, pid) == (1, {"a": 1, "b": 1})

    response = client.post(
        _url(pid, "/tags"), json={"tags": [{"imageId": image["id"], "tagId": str(uuid.uuid4())}]}
    )
    assert (response.status_code, response.json()["code"]) == (400, "BadRequestImageTags")

    response = client.delete(_url(pid, "/tags"), params={"imageIds": image["id"], "tagIds": f"{a},{b}"})
    assert response.status_code == 204
    assert _counts(client, pid) == (1, {"a": 0, "b": 0})
    assert client.get(_url(pid, "/untagged/count")).json() == 1


def test_update_metadata(client, project):
    [image] = _upload(client, project["id"], make_image())
    missing = str(uuid.uuid4())
    response = client.post(
        _url(project["id"], "/metadata"),
        params={"imageIds": f"{image['id']},{missing}"},
        json={"camera": "A"},
    )
    assert response.status_code == 207
    assert [(e["status"], e["metadata"]) for e in response.json()["images"]] == [
        ("OK", {"camera": "A"}),
        ("ErrorImageNotFound", None),
    ]


# --- bad input: the right code, and nothing stored ----------------------------------------------------------


BAD_IMAGES = {
    "truncated jpeg": (lambda: make_image(800, 600)[:3000], "ErrorImageFormat"),
    "text named .jpg": (lambda: b"just some text, not a picture\n" * 10, "ErrorImageFormat"),
    "7 MB image": (lambda: noise_image(1600, 1500), "ErrorImageSize"),
    "20000x10": (lambda: make_image(20000, 10, fmt="PNG"), "ErrorImageDimensions"),
    "png bomb 100000x100000": (lambda: png_declaring(100_000, 100_000), "ErrorImageDimensions"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_image_is_refused_and_nothing_stored(client, project, case):
    make, status = BAD_IMAGES[case]
    pid = project["id"]
    tag = _tag(client, pid, "tag")
    before = _counts(client, pid)
    response = client.post(_url(pid), params={"tagIds": tag}, files={"imageData": ("bad.jpg", make())})
    assert response.status_code == 207, response.text
    [result] = response.json()["images"]
    assert (result["status"], result["image"]) == (status, None)
    assert _counts(client, pid) == before == (0, {"tag": 0})
    assert not list(ImageStore(client.app.state.account).container.list_blobs(name_starts_with=f"{pid}/"))


def test_an_unknown_tag_fails_only_its_image(client, project):
    """As v3.4-preview's ImageCreateStatus says: the image naming a tag the project does not have is
    ErrorInvalidTag and is not stored (nor fetched); the rest of the batch is."""
    tag = _tag(client, project["id"], "known")
    unknown = str(uuid.uuid4())
    for response in (
        client.post(_url(project["id"], "/files"), json=_files(make_image(), tag_ids=[tag, unknown])),
        client.post(_url(project["id"]), params={"tagIds": unknown}, content=make_image()),
    ):
        assert response.status_code == 207, response.text
        [result] = response.json()["images"]
        assert (result["status"], result["image"]) == ("ErrorInvalidTag", None)
    assert _counts(client, project["id"]) == (0, {"known": 0})

    region = {"tagId": unknown, "left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2}
    good, bad = _files(make_image(color=(10, 200, 10)), make_image(color=(10, 10, 200)))["images"]
    entries = [good | {"tagIds": [tag]}, bad | {"regions": [region]}]
    response = client.post(_url(project["id"], "/files"), json={"images": entries})
    assert response.status_code == 207, response.text
    assert [r["status"] for r in response.json()["images"]] == ["OK", "ErrorInvalidTag"]
    assert _counts(client, project["id"]) == (1, {"known": 1})


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"images": [', "BadRequest"),  # JSON that does not parse: the spec has no closer code
        (b'{"images": [{"contents": "not base64!!"}]}', "BadRequestInvalid"),
        (b'{"images": "nope"}', "BadRequestInvalid"),
    ],
    ids=["truncated json", "not base64", "wrong shape"],
)
def test_malformed_json_is_400(client, project, body, code):
    response = client.post(
        _url(project["id"], "/files"), content=body, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert _counts(client, project["id"]) == (0, {})


def test_batch_over_64_is_400_and_nothing_stored(client, project):
    tiny = [make_image(40, 40, seed=i) for i in range(65)]
    response = client.post(_url(project["id"], "/files"), json=_files(*tiny))
    assert (response.status_code, response.json()["code"]) == (400, "BadRequestExceededBatchSize")
    files = [("imageData", (None, data)) for data in tiny]
    response = client.post(_url(project["id"]), files=files)
    assert (response.status_code, response.json()["code"]) == (400, "BadRequestExceededBatchSize")
    assert _counts(client, project["id"]) == (0, {})


def test_missing_key_is_401(app, project):
    from fastapi.testclient import TestClient

    anonymous = TestClient(app)
    response = anonymous.post(_url(project["id"]), content=make_image())
    assert (response.status_code, response.json()["code"]) == (401, "Unauthorized")
    response = anonymous.get(_url(project["id"]), headers={"Training-Key": TRAINING_KEY + "x"})
    assert response.status_code == 401
    assert (
        TestClient(app, headers={"Training-Key": TRAINING_KEY}).get(_url(project["id"], "/count")).json() == 0
    )


def test_unknown_project_is_404(client):
    response = client.post(_url(str(uuid.uuid4())), content=make_image())
    assert (response.status_code, response.json()["code"]) == (404, "NotFoundProject")


def test_bad_ids_are_400(client, project):
    response = client.get(_url(project["id"], "/id"), params={"imageIds": "not-a-guid"})
    assert (response.status_code, response.json()["code"]) == (400, "BadRequestInvalidIds")


def test_parallel_tag_writes_on_one_image_all_land(app, project):
    """Sixteen clients tag one image at once, each with its own tag: every write lands (ETag retries back off
    instead of giving up with a 500)."""
    from fastapi.testclient import TestClient

    pid = project["id"]
    client = TestClient(app, headers={"Training-Key": TRAINING_KEY})
    tags = [_tag(client, pid, f"t{i}") for i in range(16)]
    [image] = _upload(client, pid, make_image(seed=11))
    clients = [TestClient(app, headers={"Training-Key": TRAINING_KEY}) for _ in tags]

    def tag_it(pair: tuple) -> int:
        each, tag = pair
        body = {"tags": [{"imageId": image["id"], "tagId": tag}]}
        return each.post(_url(pid, "/tags"), json=body).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(tag_it, zip(clients, tags, strict=True))) == [200] * 16
    stored = client.get(_url(pid, "/id"), params={"imageIds": image["id"]}).json()[0]
    assert {t["tagId"] for t in stored["tags"]} == set(tags)
