"""QueryPredictions with `orderBy: "Suggested"` through the real app on real Azurite: stored predictions of known
probabilities come back most uncertain first (the prediction whose most ambiguous probability lies nearest 0.5),
ties newest first, paged with the continuation token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.core.vocabulary import new_id
from pipeline.store.predictions import PredictionStore
from pipeline.store.records import PredictedTag, PredictionRecord

TRAINING = "/customvision/v3.3/training"

# Name -> the probabilities its prediction gave two tags, oldest first.
STORED = {
    "sure": (0.97, 0.02),  # 0.47 from the threshold
    "split": (0.55, 0.45),  # 0.05
    "leaning": (0.70, 0.30),  # 0.20
    "nothing": (),  # no judgement at all: last
    "coin": (0.49, 0.10),  # 0.01
    "leaning-later": (0.30, 0.70),  # 0.20 as "leaning", but newer: first of the two
}
SUGGESTED = ["coin", "split", "leaning-later", "leaning", "sure", "nothing"]


def _store_predictions(account, project: dict) -> dict[str, str]:
    """Stored prediction id -> name; each created a second after the one before."""
    tags = [new_id(), new_id()]
    start = datetime.now(UTC) - timedelta(minutes=1)
    names = {}
    for offset, (name, probabilities) in enumerate(STORED.items()):
        record = PredictionRecord(
            id=new_id(),
            project_id=project["id"],
            iteration_id=new_id(),
            domain_id=project["settings"]["domainId"],
            predictions=[
                PredictedTag(tag_id=t, tag_name=f"tag {i}", probability=p)
                for i, (t, p) in enumerate(zip(tags, probabilities, strict=False))
            ],
            original_blob=f"{name}/original",
            resized_blob=f"{name}/resized",
            thumbnail_blob=f"{name}/thumbnail",
            width=10,
            height=10,
            created=start + timedelta(seconds=offset),
        )
        PredictionStore(account).insert(record)
        names[record.id] = name
    return names


def _query(client, project: dict, body: dict) -> dict:
    response = client.post(f"{TRAINING}/projects/{project['id']}/predictions/query", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_suggested_order_puts_the_least_certain_first(client, account, project):
    names = _store_predictions(account, project)
    first = _query(client, project, {"orderBy": "Suggested", "maxCount": 4})
    assert first["token"]["orderBy"] == "Suggested"
    assert first["token"]["continuation"]
    second = _query(client, project, first["token"])
    assert "continuation" not in second["token"]  # the last page: a non-nullable string, left out
    pages = [[names[r["id"]] for r in page["results"]] for page in (first, second)]
    assert pages == [SUGGESTED[:4], SUGGESTED[4:]]

    assert [names[r["id"]] for r in _query(client, project, {"orderBy": "suggested"})["results"]] == SUGGESTED
    newest = [names[r["id"]] for r in _query(client, project, {"orderBy": "Newest"})["results"]]
    assert newest == list(reversed(STORED))


def test_suggested_order_keeps_the_filters(client, account, project):
    names = _store_predictions(account, project)
    some_tag = _query(client, project, {})["results"][0]["predictions"][0]["tagId"]
    window = {"orderBy": "Suggested", "tags": [{"id": some_tag, "minThreshold": 0.4, "maxThreshold": 0.8}]}
    assert [names[r["id"]] for r in _query(client, project, window)["results"]] == [
        "coin",
        "split",
        "leaning",
    ]


def test_a_foreign_continuation_is_refused(client, account, project):
    _store_predictions(account, project)
    body = {"orderBy": "Suggested", "continuation": "not a suggested-order token"}
    response = client.post(f"{TRAINING}/projects/{project['id']}/predictions/query", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "BadRequestPredictionInvalidQueryParameters"
