"""The image index (issue 12) on real Azurite: pages agree with a plain sort whatever the skip, across buckets;
counters stay exact under concurrent uploads and edits; an old partition is migrated on first use; reconcile
finds and repairs what a crash leaves."""

from __future__ import annotations

import contextlib
import random
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from azure.core.exceptions import ResourceNotFoundError
from fastapi.testclient import TestClient

from bench.storage_ops import RequestCounter
from pipeline.core.settings import Settings
from pipeline.core.vocabulary import new_id
from pipeline.store import StorageAccount, StoragePolicy
from pipeline.store.entities import to_entity
from pipeline.store.image_index import ALL, MULTI, TAGGED, UNTAGGED, ImageIndex, tag_view, views_of
from pipeline.store.image_reconcile import reconcile
from pipeline.store.images import COUNTS_TABLE, SCAN_FROM, TABLE, ImageStore
from pipeline.store.records import ImageRecord, ImageTagRecord, utcnow
from tests.conftest import PROJECTS
from tests.images import make_image

TAGS = [str(uuid.uuid4()) for _ in range(3)]


def record(project_id: str, seq: int | None, tags: list[str], created=None) -> ImageRecord:
    return ImageRecord(
        id=new_id(),
        project_id=project_id,
        width=1,
        height=1,
        content_hash=uuid.uuid4().hex,
        original_blob="o",
        resized_blob="r",
        thumbnail_blob="t",
        tags=[ImageTagRecord(tag_id=t) for t in tags],
        seq=seq,
        created=created or utcnow(),
    )


def write(index: ImageIndex, before: ImageRecord | None, after: ImageRecord | None) -> None:
    """What ImageStore does, with the test's index (small buckets): the image row, then the index rows."""
    if after is None:
        assert before is not None
        index.table.delete_entity(before.project_id, before.id)
    else:
        index.table.upsert_entity(to_entity(after, after.project_id, after.id))
    index.apply(index.change(before, after))


def expected(images: dict[str, ImageRecord], view: str) -> list[str]:
    members = [i for i in images.values() if view == ALL or _in(i, view)]
    return [i.id for i in sorted(members, key=lambda i: i.seq or 0, reverse=True)]


def _in(image: ImageRecord, view: str) -> bool:
    tags = image.tag_ids
    return {
        TAGGED: bool(tags),
        UNTAGGED: not tags,
        MULTI: len(tags) > 1,
    }.get(view, view.startswith("t.") and view[2:] in tags)


def test_pages_match_a_plain_sort_across_buckets(account: StorageAccount) -> None:
    project_id = new_id()
    index = ImageIndex(account.table(TABLE), account.table(COUNTS_TABLE), project_id, bucket=5)
    rng = random.Random(7)
    images: dict[str, ImageRecord] = {}
    seq = 0
    for _ in range(60):
        seq += rng.choice((1, 1, 1, 3))  # holes, as failed uploads leave
        image = record(project_id, seq, rng.sample(TAGS, rng.choice((0, 1, 1, 2))))
        write(index, None, image)
        images[image.id] = image
    for image in rng.sample(list(images.values()), 12):  # deletions and retagging empty some buckets
        write(index, image, None)
        del images[image.id]
    for image in rng.sample(list(images.values()), 10):
        retagged = image.model_copy(update={"tags": [ImageTagRecord(tag_id=t) for t in rng.sample(TAGS, 2)]})
        write(index, image, retagged)
        images[image.id] = retagged

    views = [ALL, TAGGED, UNTAGGED, MULTI, *(tag_view(t) for t in TAGS)]
    for view in views:
        order = expected(images, view)
        assert index.total(view) == len(order), view
        for skip in (0, 1, 4, 5, 6, 13, 29, len(order) - 1, len(order), len(order) + 3):
            for take in (1, 5, 7, 50):
                assert index.page(view, skip, take) == order[skip : skip + take], (view, skip, take)
                oldest = order[::-1]
                assert index.page(view, skip, take, newest_first=False) == oldest[skip : skip + take]
    both = [tag_view(TAGS[0]), tag_view(TAGS[1])]
    union = [i for i in expected(images, ALL) if any(_in(images[i], v) for v in both)]
    assert list(index.stream_union(both, newest_first=True)) == union
    assert list(index.stream_union(both, newest_first=False)) == union[::-1]


def _upload(client: TestClient, project_id: str, tag_ids: list[str], seed: int, count: int) -> list[str]:
    import base64

    images = [
        {
            "name": f"{seed}-{i}.png",
            "contents": base64.b64encode(
                make_image(40, 30, color=(seed % 250, i * 9, 99), fmt="PNG")
            ).decode(),
        }
        for i in range(count)
    ]
    response = client.post(
        f"{PROJECTS}/{project_id}/images/files", json={"images": images, "tagIds": tag_ids}
    )
    assert response.status_code == 200, response.text
    return [entry["image"]["id"] for entry in response.json()["images"]]


def test_counters_stay_exact_under_concurrent_writes(client: TestClient, account: StorageAccount) -> None:
    project = client.post(PROJECTS, params={"name": f"index-{uuid.uuid4()}"}).json()
    pid = project["id"]
    tags = [client.post(f"{PROJECTS}/{pid}/tags", params={"name": n}).json()["id"] for n in ("a", "b")]
    try:
        with ThreadPoolExecutor(4) as pool:
            batches = list(
                pool.map(lambda n: _upload(client, pid, [tags[n % 2]] if n % 3 else [], n, 6), range(8))
            )
        ids = [i for batch in batches for i in batch]
        edits = [{"imageId": image_id, "tagId": tags[1]} for image_id in ids[::2]]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda e: client.post(f"{PROJECTS}/{pid}/images/tags", json={"tags": [e]}), edits))
        client.delete(f"{PROJECTS}/{pid}/images", params={"imageIds": ",".join(ids[:5])})

        report = reconcile(account.table(TABLE), account.table(COUNTS_TABLE), pid)
        assert report.clean, report
        stored = ImageStore(account).list(pid)
        assert client.get(f"{PROJECTS}/{pid}/images/count").json() == len(stored) == len(ids) - 5
        assert client.get(f"{PROJECTS}/{pid}/images/untagged/count").json() == sum(
            not i.tag_ids for i in stored
        )
        counts = {t["id"]: t["imageCount"] for t in client.get(f"{PROJECTS}/{pid}/tags").json()}
        assert counts == {t: sum(t in i.tag_ids for i in stored) for t in tags}
        newest = client.get(f"{PROJECTS}/{pid}/images", params={"take": 100}).json()
        assert [i["id"] for i in newest] == [i.id for i in sorted(stored, key=lambda i: i.seq, reverse=True)]
    finally:
        client.delete(f"{PROJECTS}/{pid}")


def test_an_old_partition_is_migrated_on_first_use(client: TestClient, account: StorageAccount) -> None:
    """Rows written before the index (no sequence number, not indexed) are numbered in creation order the
    first time the project's images are read, and then read like any others."""
    project = client.post(PROJECTS, params={"name": f"legacy-{uuid.uuid4()}"}).json()
    pid = project["id"]
    tag = client.post(f"{PROJECTS}/{pid}/tags", params={"name": "t"}).json()["id"]
    table = account.table(TABLE)
    start = utcnow() - timedelta(days=1)
    legacy = [
        record(pid, None, [tag] if n % 2 else [], created=start + timedelta(minutes=n)) for n in range(7)
    ]
    for image in reversed(legacy):
        table.create_entity(to_entity(image, pid, image.id))
    with contextlib.suppress(ResourceNotFoundError):  # make the partition look older than the index
        table.delete_entity(pid, "~v")
    try:
        import pipeline.store.images as images_module

        images_module._INDEXED.discard(pid)
        listed = client.get(f"{PROJECTS}/{pid}/images", params={"take": 50}).json()
        assert [i["id"] for i in listed] == [i.id for i in reversed(legacy)]
        assert client.get(f"{PROJECTS}/{pid}/images/tagged/count").json() == 3
        assert client.get(f"{PROJECTS}/{pid}/tags/{tag}").json()["imageCount"] == 3
        assert reconcile(table, account.table(COUNTS_TABLE), pid).clean
    finally:
        client.delete(f"{PROJECTS}/{pid}")


def test_reconcile_repairs_what_a_crash_leaves(account: StorageAccount) -> None:
    project_id = new_id()
    table = account.table(TABLE)
    index = ImageIndex(table, account.table(COUNTS_TABLE), project_id)
    images = [record(project_id, n, [TAGS[n % 2]]) for n in range(6)]
    for image in images:
        write(index, None, image)
    index.counts.upsert_entity({"PartitionKey": project_id, "RowKey": index.total_row(ALL), "n": 40})  # drift
    unindexed = record(project_id, 6, [TAGS[0]])  # a crash between the image row and its index rows
    table.create_entity(to_entity(unindexed, project_id, unindexed.id))
    gone = images.pop()  # a crash between deleting the row and its index rows
    table.delete_entity(project_id, gone.id)

    report = reconcile(table, account.table(COUNTS_TABLE), project_id)
    assert (report.members_added, report.members_removed) == (3, 3)  # all, tagged, t.{tag}
    assert report.counters_fixed >= 1
    order = [unindexed.id, *(i.id for i in reversed(images))]
    assert index.total(ALL) == 6 == index.total(TAGGED) and index.page(ALL, 0, 10) == order
    assert index.page(tag_view(TAGS[0]), 0, 10) == [
        i for i in order if i != images[1].id and i != images[3].id
    ]
    assert reconcile(table, account.table(COUNTS_TABLE), project_id).clean


def test_an_index_in_the_first_layout_is_converted_on_first_use(account: StorageAccount) -> None:
    """Layout 1 kept index rows `~i.{view}.{10^12-1-seq}` beside the image rows (and a snapshot's under
    `~s.{iteration}.`), and buckets held counts only: the first use converts them into bucket members."""
    import pipeline.store.images as images_module

    project_id = new_id()
    store = ImageStore(account)
    table, counts = account.table(TABLE), account.table(COUNTS_TABLE)
    images = [record(project_id, n, [TAGS[0]] if n % 2 else []) for n in range(5)]
    iteration_id = new_id()
    rows = [{"PartitionKey": project_id, "RowKey": "~v", "version": 1}]
    rows.append({"PartitionKey": project_id, "RowKey": f"~S.{iteration_id}"})
    for image in images:
        rows.append(to_entity(image, project_id, image.id))
        for prefix in ("~", f"~s.{iteration_id}."):
            for view in views_of(image):
                key = f"{prefix}i.{view}.{10**12 - 1 - image.seq:012d}"
                rows.append({"PartitionKey": project_id, "RowKey": key, "image_id": image.id})
    table.submit_transaction([("upsert", row) for row in rows])
    for prefix in ("~", f"~s.{iteration_id}."):  # layout 1's counters: totals, and buckets without members
        for view, n in ((ALL, 5), (TAGGED, 2), (UNTAGGED, 3), (tag_view(TAGS[0]), 2)):
            counts.upsert_entity({"PartitionKey": project_id, "RowKey": f"{prefix}n.{view}", "n": n})
            counts.upsert_entity(
                {"PartitionKey": project_id, "RowKey": f"{prefix}b.{view}.000000000", "n": n}
            )

    images_module._INDEXED.discard(project_id)
    index = store.index(project_id)
    newest = [i.id for i in reversed(images)]
    assert index.page(ALL, 0, 10) == newest and index.page(ALL, 1, 2, newest_first=False) == newest[::-1][1:3]
    assert list(index.ids(tag_view(TAGS[0]))) == [images[3].id, images[1].id]
    assert store.snapshot(project_id, iteration_id).page(UNTAGGED, 0, 10) == [
        images[4].id,
        images[2].id,
        images[0].id,
    ]
    leftovers = table.query_entities("PartitionKey eq @pk and RowKey ge '~'", parameters={"pk": project_id})
    assert sorted(row["RowKey"] for row in leftovers) == [f"~S.{iteration_id}", "~v"]
    assert table.get_entity(project_id, "~v")["version"] == 2
    assert store.reconcile(project_id).clean


@pytest.mark.parametrize("take", [0, 1])
def test_empty_views_page_to_nothing(account: StorageAccount, take: int) -> None:
    index = ImageIndex(account.table(TABLE), account.table(COUNTS_TABLE), new_id())
    assert index.page(ALL, 0, take) == [] and index.total(ALL) == 0


def test_a_snapshot_outlives_image_changes_and_goes_with_its_iteration(
    account: StorageAccount, settings
) -> None:
    from pipeline.services.projects import create_project
    from pipeline.services.sweeper import SweepReport, sweep_project

    project = create_project(account, settings, f"snapshot-{uuid.uuid4()}")
    store = ImageStore(account)
    images = [record(project.id, n, [TAGS[n % 2]]) for n in range(4)]
    iteration_id = new_id()  # no iteration row: as if the iteration was deleted after training
    store.write_snapshot(project.id, iteration_id, images)
    store.write_snapshot(project.id, iteration_id, images)  # a retried job writes it again: nothing doubles
    snapshot = store.snapshot(project.id, iteration_id)
    assert snapshot.total(ALL) == 4 and snapshot.total(tag_view(TAGS[0])) == 2
    assert snapshot.page(ALL, 0, 10) == [i.id for i in reversed(images)]
    assert store.snapshot_ids(project.id) == [iteration_id]

    report = SweepReport()
    sweep_project(account, project.id, utcnow(), report)
    assert report.removed["training-set snapshots"] == 1
    assert (
        store.snapshot_ids(project.id) == [] and snapshot.total(ALL) == 0 and snapshot.page(ALL, 0, 10) == []
    )


def test_reading_most_of_a_project_takes_one_scan_and_answers_as_point_reads_do(settings: Settings) -> None:
    """A training run reads its whole training set: at least SCAN_FROM images that are half the project or more
    come from one query of its image rows instead of a point read each, in the order asked, without the ids that
    do not exist, repeats kept."""
    counter = RequestCounter()
    account = StorageAccount(
        settings.connection_string, StoragePolicy.from_settings(settings), raw_request_hook=counter
    )
    store = ImageStore(account)
    project_id = new_id()
    images = [record(project_id, seq, [TAGS[seq % 3]]) for seq in range(1, 2 * SCAN_FROM + 3)]
    for image in images:
        store.insert(image)
    ids = [image.id for image in reversed(images)]
    by_id = {image.id: image.model_dump() for image in images}

    def read(wanted: list[str]) -> list[dict]:
        return [image.model_dump() for image in store.get_many(project_id, wanted)]

    half = ids[: SCAN_FROM + 1]
    counter.take()
    assert read([*half, new_id(), half[0]]) == [by_id[i] for i in (*half, half[0])]
    # One point read of the project's total, then the one query.
    assert counter.take() == Counter({"table point read": 1, "table query": 1})

    under_half = ids[:SCAN_FROM]
    assert read(under_half) == [by_id[i] for i in under_half]
    assert counter.take() == Counter({"table point read": 1 + len(under_half)})
    few = ids[: SCAN_FROM - 1]
    assert read(few) == [by_id[i] for i in few]
    assert counter.take() == Counter({"table point read": len(few)})


def test_regions_are_found_by_their_id_without_a_scan(client: TestClient, account: StorageAccount) -> None:
    """A region id begins with its image's id, so DeleteImageRegions reads one key range; a region made before
    that (a random id) is still found, by the scan kept for them."""
    from pipeline.store.records import RegionRecord

    detection = "da2e3a8a-40a5-4171-82f4-58522f70fbc1"
    project = client.post(PROJECTS, params={"name": f"regions-{uuid.uuid4()}", "domainId": detection}).json()
    pid = project["id"]
    try:
        tag = client.post(f"{PROJECTS}/{pid}/tags", params={"name": "box"}).json()["id"]
        [image_id] = _upload(client, pid, [], 1, 1)
        box = {"imageId": image_id, "tagId": tag, "left": 0.1, "top": 0.1, "width": 0.3, "height": 0.3}
        created = client.post(f"{PROJECTS}/{pid}/images/regions", json={"regions": [box]}).json()["created"]
        region_id = created[0]["regionId"]
        assert region_id[:18] == image_id[:18] and uuid.UUID(region_id).version == 4
        legacy = RegionRecord(id=new_id(), tag_id=tag, left=0.5, top=0.5, width=0.2, height=0.2)
        ImageStore(account).update(
            pid, image_id, lambda i: i.model_copy(update={"regions": [*i.regions, legacy]})
        )
        response = client.delete(
            f"{PROJECTS}/{pid}/images/regions", params={"regionIds": f"{region_id},{legacy.id}"}
        )
        assert response.status_code == 204, response.text
        assert ImageStore(account).get(pid, image_id).regions == []
    finally:
        client.delete(f"{PROJECTS}/{pid}")
