"""A publish or an unpublish takes effect at once on the prediction URLs of the app that made it, although the
Prediction API remembers a URL's published iteration for `SEER_PUBLISHED_CACHE_SECONDS`: the retrain flow (unpublish
the old iteration, publish the new one under the same name, predict) used to get the old model's answer for up to
that long."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pipeline.contract.onnx_model import ModelLabel
from pipeline.core.vocabulary import new_id
from pipeline.store import StorageAccount
from tests.conftest import PREDICTION_KEY, PROJECTS
from tests.images import make_image
from tests.published import published_iteration, tiny_classifier

RED = make_image(color=(220, 20, 20))


def test_the_app_that_changes_publishing_predicts_with_the_change_at_once(
    app, client: TestClient, account: StorageAccount, project: dict
) -> None:
    red, blue = ModelLabel(new_id(), "red"), ModelLabel(new_id(), "blue")
    old = published_iteration(account, project, "live", tiny_classifier([red, blue]))
    new = published_iteration(account, project, "staging", tiny_classifier([blue, red]))  # says blue for red
    iterations = f"{PROJECTS}/{project['id']}/iterations"
    predictor = TestClient(app, headers={"Prediction-Key": PREDICTION_KEY})
    live = f"/customvision/v3.0/prediction/{project['id']}/classify/iterations/live/image/nostore"

    def top_tag() -> str:
        answer = predictor.post(live, content=RED)
        assert answer.status_code == 200, answer.text
        return answer.json()["predictions"][0]["tagName"]

    assert top_tag() == "red"  # and now remembered
    assert client.delete(f"{iterations}/{old.id}/publish").status_code == 204
    gone = predictor.post(live, content=RED)
    assert gone.status_code == 404 and gone.json()["code"] == "NotFoundIteration", gone.text

    assert client.delete(f"{iterations}/{new.id}/publish").status_code == 204
    published = client.post(
        f"{iterations}/{new.id}/publish", params={"publishName": "live", "predictionId": "resource"}
    )
    assert published.status_code == 200, published.text
    assert top_tag() == "blue"
