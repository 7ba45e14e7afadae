"""The web portal in a real browser (Playwright driving Debian's Chromium) against the real app on Azurite.

The workflow test runs the whole service (`service` fixture: the local host with real training jobs); the others use
`live_url` (the app alone). Each page is saved as a screenshot under test-artifacts/screenshots/.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect

from pipeline.contract.evaluation import EvaluatedImage, EvaluatedLabel, EvaluationRecord
from pipeline.core.boxes import Box
from pipeline.core.vocabulary import DomainType, IterationStatus, PublishDecision
from pipeline.services import images_query
from pipeline.store import StorageAccount
from pipeline.store.iterations import IterationStore, artefact_name
from pipeline.store.records import IterationRecord, PredictedTag, SuggestionRecord
from pipeline.store.suggestions import SuggestionStore
from tests.conftest import COMPACT_DOMAIN as COMPACT_CLASSIFICATION
from tests.conftest import PREDICTION_KEY, TRAINING_KEY
from tests.images import make_image, pattern_image
from tests.portal_browser import PHONE, chromium, open_page, screenshot
from tests.published import published_iteration
from tests.trained_models import (
    COLOURS,
    DETECTION_LABELS,
    classifier_onnx,
    classifier_pictures,
    detection_pictures,
    detector_onnx,
    picture,
    relabelled,
)

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"training": TRAINING_KEY, "prediction": PREDICTION_KEY}
TRAINING = "/customvision/v3.3/training"
COMPACT_DOMAIN = "General (compact)"
DETECTION_DOMAIN = "da2e3a8a-40a5-4171-82f4-58522f70fbc1"
TRAINING_TIMEOUT_MS = 240_000
EXPORT_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium, after bundling the portal's script afresh, so that an edited module is what the tests load."""
    subprocess.run(["npm", "run", "--silent", "build:portal"], cwd=ROOT, check=True)
    with chromium() as browser:
        yield browser


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    """A desktop page with the test keys saved; fails the test on any uncaught script error."""
    page, errors = open_page(browser, KEYS)
    yield page
    page.context.close()
    assert not errors, errors


def api(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=f"{base_url}{TRAINING}", headers={"Training-Key": TRAINING_KEY}, timeout=30)


def make_project(base_url: str, domain: str | None = None) -> dict:
    params = {"name": f"portal-{uuid.uuid4().hex[:8]}"}
    if domain:
        params["domainId"] = domain
    with api(base_url) as client:
        response = client.post("/projects", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def files(kind: int, count: int, prefix: str) -> list[dict]:
    return [
        {"name": f"{prefix}-{i}.jpg", "mimeType": "image/jpeg", "buffer": pattern_image(kind, i)}
        for i in range(count)
    ]


def upload(page: Page, payload: list[dict], new_tag: str | None = None) -> None:
    """Add images through the upload dialog, optionally creating a tag applied to all of them."""
    page.get_by_role("button", name="+ Add images").click()
    dialog = page.get_by_role("dialog", name="Add images")
    dialog.get_by_label("Browse local files").set_input_files(payload)
    if new_tag:
        dialog.get_by_label("New tag").fill(new_tag)
        dialog.get_by_role("button", name="Create tag").click()
        expect(dialog.get_by_role("checkbox", name=new_tag)).to_be_checked()
    dialog.get_by_role("button", name=re.compile(r"^Upload \d+ files?$")).click()
    expect(dialog.get_by_role("status")).to_contain_text(f"{len(payload)} uploaded")
    dialog.get_by_role("button", name="Done").click()


# --- the workflow a Custom Vision user follows -----------------------------------------------------------------


def run_pasted_curl(command: str, workdir: Path, image: bytes) -> dict:
    """Run a curl example as a person pastes it into a shell, in a folder holding its `image.jpg`."""
    (workdir / "image.jpg").write_bytes(image)
    done = subprocess.run(
        ["bash", "-c", f"{command} --silent --show-error --fail-with-body"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_workflow_create_upload_tag_train_evaluate_test_publish(
    browser: Browser, service: str, image_server, tmp_path: Path
) -> None:
    page, errors = open_page(browser, KEYS)
    page.goto(service)

    # Projects: create a compact classification project.
    name = f"Trees {uuid.uuid4().hex[:6]}"
    page.get_by_role("button", name="New project").click()
    dialog = page.get_by_role("dialog", name="Create new project")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_label("Description").fill("Stripes and discs")
    expect(dialog.get_by_label("Multiclass")).to_be_checked()
    dialog.get_by_label("Domain").select_option(label=COMPACT_DOMAIN)
    screenshot(page, "01-create-project")
    dialog.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()
    project_id = page.url.split("/projects/")[1].split("/")[0]

    # Training images: one tag chosen at upload, the other given afterwards to the selected untagged images.
    upload(page, files(0, 8, "stripes"), new_tag="warm stripes")
    upload(page, files(1, 8, "discs"))
    page.get_by_role("button", name=re.compile(r"^Untagged \(8\)")).click()
    # Select all must take the untagged images, not the grid of the filter before (seen in CI before the grid
    # emptied at once on a new filter: the stripes were tagged "cool discs").
    expect(page.get_by_role("list", name="Training images").get_by_role("listitem")).to_have_count(8)
    expect(page.get_by_role("list", name="Training images")).not_to_contain_text("warm stripes")
    page.get_by_role("button", name="Select all").click()
    page.get_by_role("button", name="Tag images").click()
    dialog = page.get_by_role("dialog", name="Tag images")
    dialog.get_by_label("New tag").fill("cool discs")
    dialog.get_by_role("button", name="Create tag").click()
    expect(dialog.get_by_role("checkbox", name="cool discs")).to_be_checked()
    dialog.get_by_role("button", name="Add to images").click()
    try:
        expect(page.get_by_role("button", name=re.compile(r"^Tagged \(16\)"))).to_be_visible()
    except (
        AssertionError
    ) as failure:  # seen once in CI: say whether the service or the page holds the wrong tags
        with api(service) as client:
            images = client.get(f"/projects/{project_id}/images", params={"take": 50}).json()
            tags = client.get(f"/projects/{project_id}/tags").json()
        stored = sorted((image["created"], [t["tagName"] for t in image["tags"]]) for image in images)
        raise AssertionError(f"{failure}\nstored images (oldest first): {stored}\ntags: {tags}") from failure
    page.get_by_role("button", name=re.compile(r"^All \(16\)")).click()
    expect(page.get_by_role("list", name="Training images").get_by_role("listitem")).to_have_count(16)
    screenshot(page, "02-training-images")

    # Train (Quick) and follow the status on the Performance page without reloading.
    page.get_by_role("button", name="Train").click()
    dialog = page.get_by_role("dialog", name="Train")
    expect(dialog.get_by_label("Quick Training")).to_be_checked()
    screenshot(page, "03-train-dialog")
    dialog.get_by_role("button", name="Train").click()
    expect(page).to_have_url(re.compile(r"/performance\?iteration="))
    expect(page.locator(".training-progress")).to_contain_text("is training")
    screenshot(page, "04-training")
    expect(page.locator(".iteration .status")).to_have_text("Completed", timeout=TRAINING_TIMEOUT_MS)

    # Performance: the numbers come from the API, and the threshold slider asks it again.
    iteration_id = page.url.split("iteration=")[1]
    metrics = page.locator(".metric-value")
    expect(metrics).to_have_count(3)
    expect(page.get_by_role("table", name="Performance per tag")).to_contain_text("warm stripes")
    expect(page.get_by_role("img", name=re.compile("^Precision-recall curve. threshold"))).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("Confusion matrix"))).to_be_visible()
    with page.expect_response(lambda r: "/performance?threshold=0.95" in r.url):
        page.get_by_label("Probability threshold").fill("95")
    with api(service) as client:
        expected = client.get(
            f"/projects/{project_id}/iterations/{iteration_id}/performance", params={"threshold": 0.95}
        )
    expect(metrics.nth(1)).to_have_text(f"{expected.json()['recall'] * 100:.1f}%")
    expect(page.locator(".main-panel")).not_to_contain_text("null")
    screenshot(page, "05-performance")
    # The chart: every tick label inside the drawing, and the threshold's marker on the curve.
    chart = page.locator("svg.pr-curve")
    overflowing = chart.evaluate(
        "svg => [...svg.querySelectorAll('text')].filter(t => t.getBBox().x + t.getBBox().width > 320).length"
    )
    assert overflowing == 0
    if chart.locator(".current-point").count():
        marker = chart.locator(".current-point")
        on_curve = f"{marker.get_attribute('cx')},{marker.get_attribute('cy')}"
        assert on_curve in chart.locator(".curve").get_attribute("points").split(" ")

    # Images added after training leave the iteration's counts as they were when it trained.
    with api(service) as client:
        tags = {t["name"]: t["id"] for t in client.get(f"/projects/{project_id}/tags").json()}
        added = client.post(
            f"/projects/{project_id}/images",
            params={"tagIds": tags["warm stripes"]},
            content=pattern_image(0, 50),
        )
        assert added.status_code == 200, added.text
    page.reload()
    stripes = page.get_by_role("table", name="Performance per tag").get_by_role(
        "row", name=re.compile("warm stripes")
    )
    expect(stripes.get_by_role("cell").last).to_have_text("8")

    # The images page filtered to the iteration shows the 16 images it trained on, not today's 17, and says so in
    # its URL.
    page.get_by_role("link", name="Training Images").click()
    expect(page.get_by_role("button", name=re.compile(r"^All \(17\)"))).to_be_visible()
    page.get_by_label("Images of").select_option(label="Iteration 1")
    expect(page.get_by_role("button", name=re.compile(r"^All \(16\)"))).to_be_visible()
    expect(page).to_have_url(re.compile(rf"iteration={iteration_id}"))
    expect(page.get_by_role("list", name="Training images").get_by_role("listitem")).to_have_count(16)

    # Quick test with a new image.
    page.get_by_role("link", name="Quick Test").click()
    page.get_by_label("Browse local files").set_input_files(
        {"name": "new.jpg", "mimeType": "image/jpeg", "buffer": pattern_image(1, 99)}
    )
    table = page.get_by_role("table", name="Predictions")
    expect(table.get_by_role("row")).to_have_count(3)
    expect(table.get_by_role("row").nth(1)).to_contain_text("cool discs")
    screenshot(page, "06-quick-test")

    # Predictions: the quick test was stored.
    page.get_by_role("link", name="Predictions").click()
    expect(page.get_by_role("list", name="Predictions").get_by_role("listitem")).to_have_count(1)
    screenshot(page, "07-predictions")

    # Export to ONNX in INT8: the export job runs it, checks parity, and the dialog offers the download.
    page.get_by_role("link", name="Performance").click()
    page.get_by_role("button", name="Export").click()
    dialog = page.get_by_role("dialog", name=re.compile("^Export"))
    dialog.get_by_label("Platform").select_option("ONNX")
    dialog.get_by_label("Precision").select_option("INT8")
    dialog.get_by_role("button", name="Export", exact=True).click()
    row = dialog.get_by_role("row").filter(has_text="INT8")
    expect(row).to_contain_text("Done", timeout=EXPORT_TIMEOUT_MS)
    expect(row).to_contain_text(re.compile(r"Agrees with the service on [\d.]+ % of \d+ training images"))
    download = row.get_by_role("link", name="Download")
    model = httpx.get(download.get_attribute("href"), timeout=30)
    assert model.status_code == 200 and len(model.content) > 100_000
    screenshot(page, "09-export")
    page.keyboard.press("Escape")

    # Publish in Seer's INT8 serving mode (compact domains, from the Done INT8 export), and read the prediction URL
    # with its curl example.
    page.get_by_role("button", name="Publish").click()
    dialog = page.get_by_role("dialog", name=re.compile("^Publish"))
    dialog.get_by_label("Model name").fill("trees")
    expect(dialog.get_by_label("Prediction resource id (optional)")).to_be_hidden()
    dialog.get_by_label("Serving precision").select_option("INT8")
    dialog.get_by_role("button", name="Publish").click()
    expect(page.locator(".iteration .published")).to_have_text("Published as trees (INT8)")
    page.get_by_role("button", name="Prediction URL").click()
    dialog = page.get_by_role("dialog", name="How to use the Prediction API")
    url = f"{service}/customvision/v3.0/Prediction/{project_id}/classify/iterations/trees/image"
    expect(dialog.get_by_label("curl with an image file", exact=True)).to_contain_text(url)
    expect(dialog.get_by_label("curl with an image file", exact=True)).to_contain_text(
        f"Prediction-Key: {PREDICTION_KEY}"
    )
    screenshot(page, "08-prediction-url")
    # Both curl examples, run as pasted (the example image URL swapped for a loopback one serving an image).
    served_base, served = image_server
    served["/curl-example.jpg"] = pattern_image(0, 78)
    for label in ("curl with an image URL", "curl with an image file"):
        command = dialog.get_by_label(label, exact=True).inner_text()
        command = command.replace("https://example.com/image.png", f"{served_base}/curl-example.jpg")
        answer = run_pasted_curl(command, tmp_path, pattern_image(0, 77))
        assert {p["tagName"] for p in answer["predictions"]} == {"warm stripes", "cool discs"}, label
        assert answer["iteration"] == iteration_id
    page.keyboard.press("Escape")

    # Back on the projects page the new project has its first image as thumbnail.
    page.get_by_role("link", name="Projects").click()
    card = page.get_by_role("listitem").filter(has=page.get_by_role("link", name=name))
    expect(card.locator(".card-thumb img")).to_be_visible()
    screenshot(page, "10-projects")
    page.context.close()
    assert not errors, errors


# --- keys, errors, small screens, keyboard, regions ------------------------------------------------------------


def test_keys_dialog_checks_keys_before_saving_and_cancel_says_how_to_come_back(
    browser: Browser, live_url: str
) -> None:
    page, errors = open_page(browser, keys=None)
    page.goto(live_url)
    dialog = page.get_by_role("dialog", name="Settings")
    training = dialog.get_by_label("Training key")
    expect(training).to_have_attribute("placeholder", "Paste the Training-Key")
    expect(training).to_have_value("")
    screenshot(page, "00-keys-dialog")

    # Cancel on the first visit: the page says what is missing and how to get the dialog back.
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("heading", level=1, name="Seer needs a Training key")).to_be_visible()
    expect(page.get_by_text("the gear (Settings) at the top right")).to_be_visible()
    screenshot(page, "00-no-keys")
    page.get_by_role("button", name="Enter keys").click()

    # A wrong key is named at once, in Seer's words, and nothing is saved.
    dialog = page.get_by_role("dialog", name="Settings")
    dialog.get_by_label("Training key").fill("wrong-key")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("refused this Training key")
    expect(dialog.get_by_role("alert")).to_contain_text("SEER_TRAINING_KEY")
    expect(dialog.get_by_role("alert")).not_to_contain_text("subscription")
    screenshot(page, "00-keys-refused")
    assert page.evaluate("localStorage.getItem('seer.trainingKey')") is None
    dialog.get_by_label("Training key").fill(TRAINING_KEY)
    dialog.get_by_label("Prediction key").fill("wrong-prediction-key")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("refused this Prediction key")
    assert page.evaluate("localStorage.getItem('seer.trainingKey')") is None

    dialog.get_by_label("Prediction key").fill(PREDICTION_KEY)
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1, name="Projects")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Keys checked and saved.")
    assert page.evaluate("localStorage.getItem('seer.trainingKey')") == TRAINING_KEY
    page.reload()
    expect(page.get_by_role("heading", level=1, name="Projects")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.context.close()
    assert not errors, errors


def test_a_stored_key_the_server_refuses_reopens_the_dialog_with_seers_words(
    browser: Browser, live_url: str
) -> None:
    page, errors = open_page(browser, {"training": "stale-key", "prediction": PREDICTION_KEY})
    page.goto(live_url)
    expect(page.get_by_role("dialog", name="Settings")).to_be_visible()
    banner = page.locator("#alerts").get_by_role("alert")
    expect(banner).to_contain_text("refused this Training key")
    expect(banner).not_to_contain_text("regional API endpoint")
    page.context.close()
    assert not errors, errors


def test_bad_upload_shows_each_files_error(page: Page, live_url: str) -> None:
    project = make_project(live_url)
    page.goto(f"{live_url}/#/projects/{project['id']}/images")
    page.get_by_role("button", name="+ Add images").click()
    dialog = page.get_by_role("dialog", name="Add images")
    dialog.get_by_label("Browse local files").set_input_files(
        [
            {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"this is a text file, not a picture"},
            {"name": "good.jpg", "mimeType": "image/jpeg", "buffer": make_image(seed=3)},
        ]
    )
    dialog.get_by_role("button", name="Upload 2 files").click()
    expect(dialog.get_by_role("status")).to_contain_text("1 uploaded, 0 duplicates, 1 failed")
    rows = dialog.locator(".file-row")
    expect(rows.filter(has_text="notes.jpg")).to_contain_text("ErrorImageFormat")
    expect(rows.filter(has_text="good.jpg")).to_contain_text("Uploaded")
    screenshot(page, "10-upload-errors")


def test_projects_page_shows_thumbnails_without_a_request_per_project(page: Page, live_url: str) -> None:
    """Cards take GetProjects' thumbnailUri: fetching every card's first image queued the next page's requests
    behind them (a CI run timed out opening a project after the suite had made about 150)."""
    project = make_project(live_url)
    with api(live_url) as client:
        client.post(f"/projects/{project['id']}/images", content=make_image(seed=3))
        listed = {p["id"]: p for p in client.get("/projects").json()}
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url) if "/customvision/" in r.url else None)
    page.goto(f"{live_url}/#/")
    card = page.get_by_role("listitem").filter(has=page.get_by_role("link", name=project["name"]))
    thumbnail = card.locator(".card-thumb img")
    expect(thumbnail).to_be_visible()
    assert thumbnail.get_attribute("src").split("?")[0] == listed[project["id"]]["thumbnailUri"].split("?")[0]
    assert not [url for url in requested if "/images" in url]


# Elements wider than the phone's screen are faults, unless a box made to scroll sideways (a table's) holds them.
OVERFLOWING = """() => {
    const width = window.innerWidth;
    const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth;
    const clipped = (el) => {
        for (let a = el.parentElement; a; a = a.parentElement) {
            if (scrolls(a) || a.classList.contains('visually-hidden')) return true;
        }
        return false;
    };
    const out = [...document.querySelectorAll('body *')].filter((el) => {
        const box = el.getBoundingClientRect();
        // Wholly left of the screen is how a skip link hides until it has the focus.
        return box.width > 0 && box.height > 0 && box.right > 0 && (box.right > width + 1 || box.left < -1) && !clipped(el)
            && getComputedStyle(el).visibility !== 'hidden' && !el.classList.contains('visually-hidden');
    });
    return out.slice(0, 5).map((el) => `${el.tagName.toLowerCase()}.${el.className} "${(el.textContent || '').trim().slice(0, 40)}"`);
}"""


def fits_the_phone(page: Page, name: str) -> None:
    """Nothing sticks out sideways (the page does not scroll sideways, nor does an open dialog); then a screenshot."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
    assert page.evaluate(OVERFLOWING) == [], name
    screenshot(page, name)


def test_every_flow_fits_a_phone(browser: Browser, live_url: str, account: StorageAccount) -> None:
    """The walkthrough at 390x844: projects, images and their dialogs, the box editor, performance with its
    dialogs, quick test, predictions and the keys. Each step is saved as phone-*.png."""
    project = make_project(live_url, domain=COMPACT_CLASSIFICATION)
    base = f"/projects/{project['id']}"
    with api(live_url) as client:
        tags = {name: client.post(f"{base}/tags", params={"name": name}).json()["id"] for name in COLOURS}
        client.post(f"{base}/tags", params={"name": "a rather long tag name that has to wrap somewhere"})
        ids = []
        for scene, colour in classifier_pictures(per_colour=2):
            tag = tags[list(COLOURS)[colour]]
            created = client.post(f"{base}/images", params={"tagIds": tag}, content=png(scene)).json()
            ids.append((created["images"][0]["image"]["id"], tag))
    model_blob = artefact_name(project["id"], "phone", "model.onnx")
    store = IterationStore(account)
    store.put_artefact(model_blob, relabelled(classifier_onnx(), tags))
    evaluation = EvaluationRecord(
        classification_type="Multiclass",
        labels=[EvaluatedLabel(tag_id=tag, name=name) for name, tag in tags.items()],
        images=[
            EvaluatedImage(image_id=i, fold=n % 2, truth=[tag], probabilities={tag: 0.8})
            for n, (i, tag) in enumerate(ids)
        ],
    )
    write_iteration(store, project["id"], "Iteration 1", evaluation, model_blob=model_blob)
    write_iteration(
        store,
        project["id"],
        "Iteration 2",
        evaluation,
        model_blob=model_blob,
        publish_name="phone",
        original_publish_resource_id="seer",
    )
    page, errors = open_page(browser, KEYS, viewport=PHONE)

    page.goto(f"{live_url}/#/")
    expect(page.get_by_role("heading", level=1, name="Projects")).to_be_visible()
    fits_the_phone(page, "phone-01-projects")
    page.get_by_role("button", name="New project").click()
    fits_the_phone(page, "phone-02-new-project")
    page.keyboard.press("Escape")

    page.goto(f"{live_url}/#{base}/images")
    expect(page.get_by_label(re.compile("^Select image 1"))).to_be_visible()
    fits_the_phone(page, "phone-03-images")
    page.get_by_role("button", name="+ Add images").click()
    page.get_by_role("dialog", name="Add images").get_by_label("Browse local files").set_input_files(
        files(0, 2, "up")
    )
    fits_the_phone(page, "phone-04-upload")
    page.keyboard.press("Escape")
    page.get_by_label(re.compile("^Select image 1")).check()
    page.get_by_role("button", name="Tag images").click()
    fits_the_phone(page, "phone-05-tag-images")
    page.keyboard.press("Escape")
    page.get_by_role("button", name=re.compile("^Open image 1")).click()
    dialog = page.get_by_role("dialog", name="Image details")
    dialog.get_by_role("button", name="Suggest tags").click()
    expect(dialog.get_by_text(re.compile("^Iteration 2 suggests"))).to_be_visible()
    keyboard_hints = dialog.locator(".keyboard-only")  # the arrow keys and 1-9: no keyboard on a touch screen
    expect(keyboard_hints).to_have_count(2)
    for hint in keyboard_hints.all():
        expect(hint).to_be_hidden()
    fits_the_phone(page, "phone-06-image-dialog")
    page.keyboard.press("Escape")

    page.goto(f"{live_url}/#{base}/performance")
    expect(page.get_by_role("table", name=re.compile("Performance per tag"))).to_be_visible()
    fits_the_phone(page, "phone-07-performance")
    page.get_by_role("button", name="Prediction URL").click()
    fits_the_phone(page, "phone-08-prediction-url")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Export").click()
    fits_the_phone(page, "phone-09-export")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("dialog", name=re.compile("^Compare")).get_by_role("table")).to_be_visible()
    fits_the_phone(page, "phone-10-compare")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Train").click()
    dialog = page.get_by_role("dialog", name="Train")
    dialog.get_by_role("button", name="Train").click()  # two images a tag: too few, and the dialog says so
    expect(dialog.get_by_role("alert")).to_contain_text("ValidationFailed")
    fits_the_phone(page, "phone-11-train-refused")
    page.keyboard.press("Escape")

    page.goto(f"{live_url}/#{base}/quicktest")
    page.get_by_label("Browse local files").set_input_files(
        {"name": "test.png", "mimeType": "image/png", "buffer": png(picture(COLOURS["red"], 7))}
    )
    expect(page.get_by_role("table", name="Predictions").get_by_role("row")).to_have_count(4)
    fits_the_phone(page, "phone-12-quick-test")

    page.goto(f"{live_url}/#{base}/predictions")
    page.get_by_role("button", name=re.compile("^Open prediction")).first.click()
    fits_the_phone(page, "phone-13-stored-prediction")
    page.keyboard.press("Escape")

    _, _, dialog = detection_image_open(page, live_url, account)
    dialog.get_by_role("button", name="Propose boxes").click()
    expect(dialog.get_by_role("button", name=re.compile("^Accept proposed box")).first).to_be_visible()
    fits_the_phone(page, "phone-14-box-editor")
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Settings: API keys").click()
    fits_the_phone(page, "phone-15-keys")
    page.context.close()
    assert not errors, errors


def tab_to(page: Page, target, limit: int = 30) -> None:
    """Press Tab until `target` has the focus (or fail)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")


def open_and_escape_the_train_dialog(page: Page) -> Locator:
    """Tab to Train, open its dialog with Enter and close it with Escape, as a keyboard user; returns Train."""
    train = page.get_by_role("button", name="Train")
    tab_to(page, train)
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="Train")).to_be_visible()
    page.keyboard.press("Escape")
    return train


def test_keyboard_reaches_the_main_actions(page: Page, live_url: str) -> None:
    page.goto(live_url)
    expect(page.get_by_role("heading", level=1, name="Projects")).to_be_visible()
    new_project = page.get_by_role("button", name="New project")
    tab_to(page, new_project)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Create new project")
    expect(dialog.get_by_label("Name")).to_be_focused()
    for _ in range(15):  # focus stays inside the open dialog
        page.keyboard.press("Tab")
        assert dialog.evaluate("el => el.contains(document.activeElement)")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(new_project).to_be_focused()

    project = make_project(live_url)
    page.goto(f"{live_url}/#/projects/{project['id']}/images")
    train = open_and_escape_the_train_dialog(page)
    expect(train).to_be_focused()
    tab_to(page, page.get_by_role("link", name="Performance"))
    add_images = page.get_by_role("button", name="+ Add images")
    tab_to(page, add_images)
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="Add images")).to_be_visible()


def test_a_page_that_loads_slowly_does_not_take_the_focus_back(
    page: Page, live_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone who tabs to Train while the images still load, opens the dialog and closes it, keeps the focus on
    Train: the page's heading takes the focus when a page has loaded only if nobody moved it meanwhile."""
    list_images = images_query.list_images
    project = make_project(live_url)

    def slowly(account, project_id, **filters):
        if project_id == project["id"]:  # only this project's images: other tests' projects load as usual
            time.sleep(2)
        return list_images(account, project_id, **filters)

    page.goto(live_url)
    expect(page.get_by_role("heading", level=1, name="Projects")).to_be_visible()
    monkeypatch.setattr(images_query, "list_images", slowly)
    page.goto(f"{live_url}/#/projects/{project['id']}/images")
    train = open_and_escape_the_train_dialog(page)
    expect(page.get_by_text("No images here yet")).to_be_visible()
    page.wait_for_timeout(500)  # the page has finished loading: nothing may move the focus any more
    expect(train).to_be_focused()


def draw_box(stage: Locator, x0: float, y0: float, x1: float, y1: float) -> None:
    """Drag a box on the region editor's stage with the mouse, corners given as fractions of the image."""
    box = stage.bounding_box()
    mouse = stage.page.mouse
    mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * y0)
    mouse.down()
    mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * y1, steps=5)
    mouse.up()


def open_detection_image(page: Page, live_url: str, seed: int) -> tuple[str, Locator]:
    """A new Object Detection project with the tag "fork" and one image, opened in the image dialog: the
    project's API path and the dialog."""
    project = make_project(live_url, domain=DETECTION_DOMAIN)
    base = f"/projects/{project['id']}"
    with api(live_url) as client:
        client.post(f"{base}/tags", params={"name": "fork"})
        client.post(f"{base}/images", content=make_image(400, 300, seed=seed))
    page.goto(f"{live_url}/#{base}/images")
    page.get_by_role("button", name=re.compile("^Open image 1")).click()
    return base, page.get_by_role("dialog", name="Image details")


def test_object_detection_regions_drawn_moved_and_deleted(page: Page, live_url: str) -> None:
    base, dialog = open_detection_image(page, live_url, seed=7)
    with api(live_url) as client:

        def regions() -> list[dict]:
            return client.get(f"{base}/images").json()[0]["regions"]

        stage = dialog.locator(".region-stage")
        expect(stage).to_be_visible()
        draw_box(stage, 0.2, 0.2, 0.6, 0.7)
        region = dialog.get_by_role("button", name=re.compile("^fork region"))
        expect(region).to_have_count(1)
        [drawn] = regions()
        assert drawn["left"] == pytest.approx(0.2, abs=0.02) and drawn["width"] == pytest.approx(
            0.4, abs=0.02
        )
        screenshot(page, "15-regions")

        region.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        expect(dialog.get_by_role("status")).to_have_text("Region updated.")
        [moved] = regions()
        assert moved["left"] == pytest.approx(drawn["left"] + 0.02, abs=0.005)

        dialog.get_by_role("button", name=re.compile("^fork region")).focus()
        page.keyboard.press("Delete")
        expect(dialog.get_by_role("button", name=re.compile("^fork region"))).to_have_count(0)
        assert regions() == []


def test_box_editor_new_tag_on_enter_and_a_typed_name_tags_the_next_box(page: Page, live_url: str) -> None:
    """The walkthrough's trap: Enter in "New tag name" did nothing, so the next box silently got the previous
    tag. Enter now creates and selects the tag; a name left typed is the tag of the box drawn next; each new tag
    shows at once in the open image's region list."""
    base, dialog = open_detection_image(page, live_url, seed=8)
    with api(live_url) as client:

        def region_tags() -> list[str]:
            return sorted(r["tagName"] for r in client.get(f"{base}/images").json()[0]["regions"])

        stage = dialog.locator(".region-stage")
        expect(stage).to_be_visible()

        dialog.get_by_placeholder("New tag name").fill("knife")
        dialog.get_by_placeholder("New tag name").press("Enter")
        expect(dialog.get_by_label("Tag for new regions")).to_have_value(re.compile(".+"))
        expect(dialog.get_by_label("Tag for new regions").locator("option:checked")).to_have_text("knife")
        draw_box(stage, 0.1, 0.1, 0.4, 0.4)
        expect(dialog.get_by_role("button", name=re.compile("^knife region"))).to_have_count(1)

        dialog.get_by_placeholder("New tag name").fill("spoon")  # typed, not confirmed
        draw_box(stage, 0.5, 0.5, 0.9, 0.9)
        expect(dialog.get_by_role("button", name=re.compile("^spoon region"))).to_have_count(1)
        assert region_tags() == ["knife", "spoon"]
        first_row = dialog.get_by_role("list", name="Regions").get_by_role("combobox").first
        expect(first_row.locator("option")).to_have_text(["fork", "knife", "spoon"])

        dialog.get_by_placeholder("New tag name").fill("Fork")  # an existing tag is selected, not duplicated
        dialog.get_by_placeholder("New tag name").press("Enter")
        expect(dialog.get_by_label("Tag for new regions").locator("option:checked")).to_have_text("fork")
        assert len(client.get(f"{base}/tags").json()) == 3
        screenshot(page, "16-box-editor-new-tags")


def test_upload_dialog_selects_a_typed_existing_tag_warns_when_untagged_and_keeps_multiclass_to_one(
    page: Page, live_url: str
) -> None:
    project = make_project(live_url)
    base = f"/projects/{project['id']}"
    with api(live_url) as client:
        tags = {
            name: client.post(f"{base}/tags", params={"name": name}).json()["id"] for name in ("ants", "bees")
        }
    page.goto(f"{live_url}/#/projects/{project['id']}/images")
    page.get_by_role("button", name="+ Add images").click()
    dialog = page.get_by_role("dialog", name="Add images")
    dialog.get_by_label("Browse local files").set_input_files(files(0, 2, "bug"))
    warning = dialog.get_by_text("No tag is ticked")
    expect(warning).to_be_visible()
    expect(dialog.get_by_text("Multiclass project: one tag per image.")).to_be_visible()

    dialog.get_by_label("New tag").fill("Ants")
    dialog.get_by_label("New tag").press("Enter")
    expect(dialog.get_by_role("checkbox", name="ants")).to_be_checked()
    expect(dialog.get_by_role("alert")).to_be_hidden()
    expect(warning).to_be_hidden()
    dialog.get_by_role("checkbox", name="bees").check()
    expect(dialog.get_by_role("checkbox", name="ants")).not_to_be_checked()
    screenshot(page, "11-upload-tags")
    dialog.get_by_role("button", name="Upload 2 files").click()
    expect(dialog.get_by_role("status")).to_contain_text("2 uploaded")
    with api(live_url) as client:
        assert len(client.get(f"{base}/tags").json()) == 2
        images = client.get(f"{base}/images").json()
    assert [[t["tagId"] for t in image["tags"]] for image in images] == [[tags["bees"]]] * 2
    dialog.get_by_role("button", name="Done").click()
    page.get_by_role("button", name=re.compile(r"^Untagged \(0\)")).click()
    expect(page.get_by_role("list", name="Training images")).to_have_text(
        "No untagged images match this filter."
    )


def test_labelling_goes_image_to_image_with_arrows_and_tag_keys(page: Page, live_url: str) -> None:
    """In the image dialog, 1-9 put the project's first nine tags on the image (Multiclass: in place of its
    tag) and the arrows or Previous / Next walk the grid's images; an arrow in a form field stays there."""
    project = make_project(live_url)
    base = f"/projects/{project['id']}"
    with api(live_url) as client:
        tags = {
            name: client.post(f"{base}/tags", params={"name": name}).json()["id"] for name in ("ants", "bees")
        }
        for seed in range(3):
            client.post(f"{base}/images", content=make_image(seed=30 + seed))
        order = [image["id"] for image in client.get(f"{base}/images").json()]

        def tags_of(image_id: str) -> list[str]:
            [image] = client.get(f"{base}/images/id", params={"imageIds": image_id}).json()
            return [t["tagId"] for t in image["tags"]]

        page.goto(f"{live_url}/#/projects/{project['id']}/images")
        page.get_by_role("button", name=re.compile("^Open image 1")).click()
        dialog = page.get_by_role("dialog", name="Image details")
        chips = dialog.get_by_role("list", name="Tags of this image")
        expect(dialog.get_by_text("Image 1 of 3")).to_be_visible()
        expect(dialog.get_by_role("list", name="Tag keys")).to_contain_text("1 ants")
        page.keyboard.press("2")
        expect(chips).to_contain_text("bees")
        page.keyboard.press("1")  # Multiclass: ants replaces bees
        expect(chips).to_have_text(re.compile(r"^ants"))
        assert tags_of(order[0]) == [tags["ants"]]

        page.keyboard.press("ArrowRight")
        expect(dialog.get_by_text("Image 2 of 3")).to_be_visible()
        page.keyboard.press("2")
        expect(chips).to_contain_text("bees")
        assert tags_of(order[1]) == [tags["bees"]]
        dialog.get_by_role("button", name="Next image").click()
        expect(dialog.get_by_text("Image 3 of 3")).to_be_visible()
        expect(dialog.get_by_role("button", name="Next image")).to_be_disabled()
        dialog.get_by_label("Tag to add").focus()
        page.keyboard.press("ArrowLeft")  # the select's own key: no move
        expect(dialog.get_by_text("Image 3 of 3")).to_be_visible()
        screenshot(page, "12-labelling-keys")
        dialog.get_by_role("button", name="Previous image").click()
        expect(dialog.get_by_text("Image 2 of 3")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.get_by_role("button", name=re.compile(r"^Tagged \(2\)"))).to_be_visible()
        assert tags_of(order[2]) == []


def test_image_filters_are_in_the_url_and_survive_a_reload(page: Page, live_url: str) -> None:
    project = make_project(live_url)
    base = f"/projects/{project['id']}"
    with api(live_url) as client:
        ants = client.post(f"{base}/tags", params={"name": "ants"}).json()["id"]
        client.post(f"{base}/images", params={"tagIds": ants}, content=make_image(seed=40))
        client.post(f"{base}/images", content=make_image(seed=41))
    grid = page.get_by_role("list", name="Training images").get_by_role("listitem")
    page.goto(f"{live_url}/#/projects/{project['id']}/images?status=Untagged")
    expect(page.get_by_role("button", name=re.compile(r"^Untagged \(1\)"))).to_have_attribute(
        "aria-pressed", "true"
    )
    page.get_by_role("button", name=re.compile(r"^All \(2\)")).click()
    page.get_by_role("checkbox", name=re.compile("^ants")).check()
    expect(page).to_have_url(re.compile(rf"/images\?tags={ants}$"))
    page.reload()
    expect(page.get_by_role("checkbox", name=re.compile("^ants"))).to_be_checked()
    expect(grid).to_have_count(1)
    expect(grid.first).to_contain_text("ants")


def test_multiclass_images_with_two_tags_have_their_own_filter(page: Page, live_url: str) -> None:
    project = make_project(live_url)
    base = f"/projects/{project['id']}"
    with api(live_url) as client:
        tags = [client.post(f"{base}/tags", params={"name": name}).json()["id"] for name in ("ants", "bees")]
        client.post(f"{base}/images", params={"tagIds": tags[0]}, content=make_image(seed=42))
        both = client.post(f"{base}/images", params={"tagIds": ",".join(tags)}, content=make_image(seed=43))
        assert both.status_code == 200, both.text
    grid = page.get_by_role("list", name="Training images").get_by_role("listitem")
    page.goto(f"{live_url}/#/projects/{project['id']}/images")
    page.get_by_role("button", name=re.compile(r"^Two tags or more \(1\)")).click()
    expect(page).to_have_url(re.compile(r"/images\?status=MultipleTags$"))
    expect(grid).to_have_count(1)
    expect(grid.first).to_contain_text("ants, bees")
    screenshot(page, "23-two-tags-filter")
    page.get_by_role("checkbox", name=re.compile("^Select image 1")).check()
    page.get_by_role("button", name="Tag images").click()
    dialog = page.get_by_role("dialog", name="Tag images")
    dialog.get_by_role("checkbox", name="ants").check()
    dialog.get_by_role("button", name="Remove from images").click()
    expect(page.get_by_role("button", name=re.compile(r"^Two tags or more \(0\)"))).to_be_visible()
    expect(page.get_by_role("list", name="Training images")).to_have_text(
        "No images with two tags or more match this filter."
    )
    page.get_by_role("button", name=re.compile(r"^All \(2\)")).click()
    expect(page.get_by_role("button", name=re.compile("^Two tags or more"))).to_have_count(0)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_smart_labeller_suggests_tags_that_a_click_accepts(
    page: Page, live_url: str, account: StorageAccount
) -> None:
    """The image dialog asks the newest trained iteration (a small real classifier of colours) and offers its tags;
    a click puts the suggested tag on the image."""
    project = make_project(live_url)
    base = f"/projects/{project['id']}"
    with api(live_url) as client:
        tags = {name: client.post(f"{base}/tags", params={"name": name}).json()["id"] for name in COLOURS}
        client.post(f"{base}/images", content=png(picture(COLOURS["blue"], seed=90)))
        published_iteration(account, project, "colours", relabelled(classifier_onnx(), tags))
        page.goto(f"{live_url}/#{base}/images")
        page.get_by_role("button", name=re.compile("^Open image 1")).click()
        dialog = page.get_by_role("dialog", name="Image details")
        dialog.get_by_role("button", name="Suggest tags").click()
        accept = dialog.get_by_role("button", name=re.compile(r"^Accept suggested tag blue \("))
        expect(accept).to_be_visible()
        screenshot(page, "13-suggested-tags")
        accept.click()
        expect(dialog.get_by_role("list", name="Tags of this image")).to_contain_text("blue")
        [image] = client.get(f"{base}/images").json()
        assert [t["tagId"] for t in image["tags"]] == [tags["blue"]]


def detection_image_open(
    page: Page, live_url: str, account: StorageAccount
) -> tuple[dict, dict[str, str], Locator]:
    """A detection project with one scene and a small real detector (relabelled with the project's tags) as its
    published iteration, its image open in the image dialog: the project, {tag name: id} and the dialog."""
    project = make_project(live_url, domain=DETECTION_DOMAIN)
    base = f"/projects/{project['id']}"
    [(scene, _)] = detection_pictures(range(1))
    with api(live_url) as client:
        tags = {
            label.name: client.post(f"{base}/tags", params={"name": label.name}).json()["id"]
            for label in DETECTION_LABELS
        }
        client.post(f"{base}/images", content=png(scene))
    published_iteration(account, project, "boxes", relabelled(detector_onnx(), tags))
    page.goto(f"{live_url}/#{base}/images")
    page.get_by_role("button", name=re.compile("^Open image 1")).click()
    return project, tags, page.get_by_role("dialog", name="Image details")


def test_smart_labeller_draws_suggested_boxes_that_a_click_keeps(
    page: Page, live_url: str, account: StorageAccount
) -> None:
    """A small real detector's boxes are drawn dashed on the image; clicking one keeps it as a region with its tag.
    Its region proposals are drawn the same way, and one kept gets the tag chosen for new regions."""
    project, tags, dialog = detection_image_open(page, live_url, account)
    base = f"/projects/{project['id']}"
    with api(live_url) as client:
        dialog.get_by_role("button", name="Suggest boxes").click()
        suggested = dialog.get_by_role("button", name=re.compile("^Accept suggested box"))
        expect(suggested.first).to_be_visible()
        offered = suggested.count()
        screenshot(page, "17-suggested-boxes")
        suggested.first.focus()  # overlapping boxes: the keyboard reaches each one
        page.keyboard.press("Enter")
        expect(dialog.get_by_role("button", name=re.compile("region at"))).to_have_count(1)
        expect(suggested).to_have_count(offered - 1)
        [image] = client.get(f"{base}/images").json()
        [region] = image["regions"]
        assert region["tagId"] in tags.values()

        # Region proposals: untagged places, kept with the tag chosen for new regions.
        chosen = DETECTION_LABELS[-1].name
        dialog.get_by_label("Tag for new regions").select_option(label=chosen)
        dialog.get_by_role("button", name="Propose boxes").click()
        proposed = dialog.get_by_role("button", name=re.compile("^Accept proposed box"))
        expect(proposed.first).to_be_visible()
        expect(dialog.locator(".region-status")).to_contain_text(f"make it a region tagged {chosen}")
        screenshot(page, "24-proposed-boxes")
        proposed.last.focus()
        page.keyboard.press("Enter")
        expect(dialog.get_by_role("button", name=re.compile("region at"))).to_have_count(2)
        [image] = client.get(f"{base}/images").json()
        assert tags[chosen] in [r["tagId"] for r in image["regions"]]


def test_quick_test_takes_a_dropped_image(page: Page, live_url: str, account: StorageAccount) -> None:
    """The dashed box says "drop an image here", and a dropped file is tested like a browsed one."""
    project = make_project(live_url)
    published_iteration(account, project, "colours", classifier_onnx())
    page.goto(f"{live_url}/#/projects/{project['id']}/quicktest")
    zone = page.locator(".quick-test .drop-zone")
    expect(zone).to_contain_text("drop an image here")
    dropped = page.evaluate_handle(
        """(bytes) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], 'dropped.jpg', { type: 'image/jpeg' }));
            return data;
        }""",
        list(make_image(seed=21)),
    )
    zone.dispatch_event("drop", {"dataTransfer": dropped})
    expect(page.get_by_role("table", name="Predictions").get_by_role("row")).to_have_count(4)


# --- suggestions in the untagged view -----------------------------------------------------------------------------


def trained_classifier(base_url: str, per_tag: int = 6) -> tuple[dict, dict[str, str], str]:
    """A compact Multiclass project with "warm stripes" and "cool discs", trained by the whole service: the
    project, {tag name: id} and the Completed iteration's id."""
    project = make_project(base_url, domain=COMPACT_CLASSIFICATION)
    base = f"/projects/{project['id']}"
    with api(base_url) as client:
        tags = {
            name: client.post(f"{base}/tags", params={"name": name}).json()["id"]
            for name in ("warm stripes", "cool discs")
        }
        for kind, tag in enumerate(tags.values()):
            for seed in range(per_tag):
                response = client.post(
                    f"{base}/images", params={"tagIds": tag}, content=pattern_image(kind, seed)
                )
                assert response.status_code == 200, response.text
        iteration = client.post(f"{base}/train").json()
        deadline = time.monotonic() + TRAINING_TIMEOUT_MS / 1000
        while iteration["status"] == "Training":
            assert time.monotonic() < deadline, "training did not finish in time"
            time.sleep(0.5)
            iteration = client.get(f"{base}/iterations/{iteration['id']}").json()
    assert iteration["status"] == "Completed", iteration
    return project, tags, iteration["id"]


def test_untagged_suggestions_filtered_and_confirmed_in_bulk(browser: Browser, service: str) -> None:
    """Suggestions for the untagged images from a trained iteration, narrowed to one tag and a threshold, confirmed
    for the whole filtered set; an image deleted meanwhile is reported as failed while the others are tagged."""
    project, tags, iteration_id = trained_classifier(service)
    pid, base = project["id"], f"/projects/{project['id']}"
    with api(service) as client:
        untagged = [
            client.post(f"{base}/images", content=pattern_image(kind, seed)).json()["images"][0]["image"][
                "id"
            ]
            for kind in (0, 1)
            for seed in range(50, 54)
        ]

        page, errors = open_page(browser, KEYS)
        page.goto(f"{service}/#/projects/{pid}/images")
        page.get_by_role("button", name=re.compile(r"^Untagged \(8\)")).click()
        expect(page.get_by_role("list", name="Training images").get_by_role("listitem")).to_have_count(8)
        panel = page.get_by_role("region", name="Suggested tags")
        expect(panel.get_by_label("Iteration")).to_have_value(iteration_id)
        progress = panel.locator("p[role=status]")
        get_suggestions = panel.get_by_role("button", name="Get suggestions")
        tab_to(page, get_suggestions)
        with page.expect_response(lambda r: "/tagsandregions/suggestions" in r.url):
            page.keyboard.press("Enter")
        grid = page.get_by_role("list", name="Suggested images")
        expect(grid.get_by_role("listitem")).to_have_count(8)  # two tags: the likelier always reaches 50 %
        expect(progress).to_contain_text("suggested tags for 8 images")

        # One tag from a threshold on: the grid shows what the API answers for the same filter, with the counts.
        panel.get_by_role("checkbox", name=re.compile("^cool discs")).check()
        with page.expect_response(
            lambda r: (
                r.url.split("?")[0].endswith("/images/suggested")
                and r.request.post_data_json.get("threshold") == 0.6
            )
        ):
            panel.get_by_label("Suggestion threshold").fill("60")
        wanted = {"tagIds": [tags["cool discs"]], "threshold": 0.6}
        query = {"iterationId": iteration_id}
        with page.expect_response(
            lambda r: (
                r.url.split("?")[0].endswith("/images/suggested")
                and "labelFirst" not in r.request.post_data_json
            )
        ):
            panel.get_by_label("Order").select_option(label="Most uncertain first")
        with page.expect_response(
            lambda r: (
                r.url.split("?")[0].endswith("/images/suggested")
                and r.request.post_data_json.get("labelFirst") is True
            )
        ):
            panel.get_by_label("Order").select_option(label="Label these first")
        expected = client.post(f"{base}/images/suggested", params=query, json=wanted).json()["results"]
        count = client.post(f"{base}/images/suggested/count", params=query, json=wanted).json()
        assert len(expected) >= 3 and count == {tags["cool discs"]: len(expected)}
        expect(grid.get_by_role("listitem")).to_have_count(len(expected))
        expect(panel.get_by_role("checkbox", name=re.compile("^cool discs"))).to_have_accessible_name(
            f"cool discs ({len(expected)})"
        )
        expect(grid.get_by_role("listitem").first).to_contain_text(re.compile(r"cool discs \d+\.\d%"))

        # One image on its own, by keyboard: its suggestion and the tag confirming would give.
        grid.get_by_role("button", name=re.compile("^Open suggested image 1")).focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Suggested tags")
        expect(dialog).to_contain_text("Confirming tags the image cool discs.")
        expect(dialog.get_by_role("table", name="Predictions").get_by_role("row")).to_have_count(3)
        screenshot(page, "16-suggestion-detail")
        page.keyboard.press("Escape")
        screenshot(page, "17-suggestions")

        # Select the whole filtered set and confirm it; one image deleted meanwhile fails alone.
        page.get_by_role("button", name="Select all").click()
        expect(page.get_by_text(f"{len(expected)} selected")).to_be_visible()
        gone = expected[-1]["id"]
        assert client.delete(f"{base}/images", params={"imageIds": gone}).status_code == 204
        page.get_by_role("button", name="Confirm suggestions").click()
        report = page.get_by_role("alert").filter(has_text="not confirmed")
        expect(report).to_contain_text(f"1 of {len(expected)} images not confirmed")
        expect(report).to_contain_text(f"Image {gone}: NotFoundImage")
        expect(progress).to_have_text(f"Confirmed {len(expected) - 1} images; 1 failed.")
        expect(grid).to_contain_text(
            "No untagged image has a suggestion of the chosen tags at or above 60.0%"
        )
        expect(
            page.get_by_role("button", name=re.compile(rf"^Untagged \({8 - len(expected)}\)"))
        ).to_be_visible()
        screenshot(page, "18-suggestions-confirmed")

        confirmed = [s["id"] for s in expected[:-1]]
        images = client.get(f"{base}/images/id", params={"imageIds": ",".join(confirmed)}).json()
        assert sorted(i["id"] for i in images) == sorted(confirmed)
        assert all([t["tagId"] for t in i["tags"]] == [tags["cool discs"]] for i in images), images
        left = client.get(f"{base}/images/untagged", params={"take": 50}).json()
        assert {i["id"] for i in left} == set(untagged) - set(confirmed) - {gone}
    page.context.close()
    assert not errors, errors

    # The phone layout: the stored suggestions come back for the rest, without horizontal scrolling.
    phone, errors = open_page(browser, KEYS, viewport=PHONE)
    phone.goto(f"{service}/#/projects/{pid}/images")
    phone.get_by_role("button", name=re.compile(r"^Untagged \(")).click()
    expect(phone.get_by_role("list", name="Suggested images").get_by_role("listitem").first).to_contain_text(
        re.compile(r"(warm stripes|cool discs) \d+\.\d%")
    )
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(phone, "19-phone-suggestions")
    phone.context.close()
    assert not errors, errors


def test_detection_suggestions_drawn_on_tiles_and_confirmed_as_regions(
    page: Page, live_url: str, account: StorageAccount
) -> None:
    """A detector's stored suggestions (for a completed iteration row: querying never runs its model) are boxes on
    the tiles and in the dialog; the threshold decides which boxes show and which confirming adds as regions."""
    project = make_project(live_url, domain=DETECTION_DOMAIN)
    pid, base = project["id"], f"/projects/{project['id']}"
    with api(live_url) as client:
        fork = client.post(f"{base}/tags", params={"name": "fork"}).json()["id"]
        image = client.post(f"{base}/images", content=make_image(400, 300, seed=7)).json()["images"][0][
            "image"
        ]
        iteration = published_iteration(account, project, "suggesting", b"never loaded")
        boxes = {0.9: (0.1, 0.2, 0.3, 0.4), 0.3: (0.55, 0.5, 0.4, 0.3)}
        SuggestionStore(account).put(
            SuggestionRecord(
                project_id=pid,
                iteration_id=iteration.id,
                image_id=image["id"],
                predictions=[
                    PredictedTag(
                        tag_id=fork, tag_name="fork", probability=p, left=x, top=y, width=w, height=h
                    )
                    for p, (x, y, w, h) in boxes.items()
                ],
                uncertainty=0.1,
            )
        )

        page.goto(f"{live_url}/#/projects/{pid}/images")
        page.get_by_role("button", name=re.compile(r"^Untagged \(1\)")).click()
        tile = page.get_by_role("list", name="Suggested images").get_by_role("listitem")
        expect(tile).to_have_text(re.compile("1 region: fork"))
        expect(tile.locator(".tile-box")).to_have_count(1)
        page.get_by_label("Suggestion threshold").fill("20")
        expect(tile).to_have_text(re.compile("2 regions: fork"))
        expect(tile.locator(".tile-box")).to_have_count(2)
        page.get_by_role("button", name=re.compile("^Open suggested image 1")).click()
        dialog = page.get_by_role("dialog", name="Suggested tags")
        expect(dialog.locator(".prediction-box")).to_have_count(2)
        expect(dialog).to_contain_text("Confirming adds 2 regions (probability ≥ 20.0%).")
        screenshot(page, "20-detection-suggestion")
        page.keyboard.press("Escape")
        screenshot(page, "21-detection-suggestions")

        page.get_by_label("Suggestion threshold").fill("50")
        expect(tile.locator(".tile-box")).to_have_count(1)
        tile.get_by_role("checkbox").check()
        page.get_by_role("button", name="Confirm suggestions").click()
        expect(page.get_by_role("button", name=re.compile(r"^Untagged \(0\)"))).to_be_visible()
        [tagged] = client.get(f"{base}/images/id", params={"imageIds": image["id"]}).json()
    [region] = tagged["regions"]
    assert region["tagId"] == fork
    assert [region[k] for k in ("left", "top", "width", "height")] == pytest.approx(list(boxes[0.9]))


def test_publish_better_retrains_setting_and_a_retrains_decision(
    page: Page, live_url: str, account: StorageAccount
) -> None:
    """Seer's extension in the portal: the project setting in the edit dialog, and a scheduled retrain's decision
    with both scores on the performance page (iterations written as the training job leaves them)."""
    project = make_project(live_url)
    with api(live_url) as client:
        tags = [client.post(f"/projects/{project['id']}/tags", params={"name": n}).json() for n in ("a", "b")]
    evaluation = EvaluationRecord(
        classification_type="Multiclass",
        labels=[EvaluatedLabel(tag_id=t["id"], name=t["name"]) for t in tags],
        images=[
            EvaluatedImage(image_id=f"i{n}", fold=n % 2, truth=[t["id"]], probabilities={t["id"]: 0.9})
            for n, t in enumerate(tags * 2)
        ],
    )
    store = IterationStore(account)
    champion = write_iteration(store, project["id"], "Iteration 1", evaluation, publish_name="live")
    write_iteration(
        store,
        project["id"],
        "Iteration 2",
        evaluation,
        scheduled=True,
        publish_decision=PublishDecision.KEPT_CHAMPION,
        champion_iteration_id=champion.id,
        champion_score=0.9,
        challenger_score=0.875,
    )
    page.goto(f"{live_url}/#/projects/{project['id']}/performance")
    decision = page.locator(".retrain-decision")
    expect(decision).to_contain_text("did not score better than Iteration 1")
    expect(decision).to_contain_text("87.5% against 90.0%")
    expect(page.get_by_text("Quick training · scheduled")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("null")  # an iteration without calibration figures
    screenshot(page, "22-retrain-decision")

    page.goto(f"{live_url}/#/")
    page.get_by_role("button", name=f"Edit {project['name']}").click()
    dialog = page.get_by_role("dialog", name="Edit project")
    dialog.get_by_role("checkbox", name="Publish scheduled retrains that score better").check()
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog).to_be_hidden()
    with api(live_url) as client:
        assert client.get(f"/projects/{project['id']}").json()["settings"]["publishBetterRetrains"] is True


def test_iteration_compare_shows_both_iterations_metrics_and_the_images_that_changed(
    page: Page, live_url: str, account: StorageAccount
) -> None:
    """Two iterations written as the training job leaves them; the second gets one image wrong that the first
    got right. Compare shows both sets of figures side by side and lists that image."""
    project = make_project(live_url)
    base = f"/projects/{project['id']}"
    with api(live_url) as client:
        tags = [client.post(f"{base}/tags", params={"name": n}).json()["id"] for n in ("a", "b")]
        truth = [tags[n % 2] for n in range(4)]
        images = [
            client.post(f"{base}/images", params={"tagIds": tag}, content=make_image(seed=50 + n)).json()
            for n, tag in enumerate(truth)
        ]
    ids = [created["images"][0]["image"]["id"] for created in images]

    def evaluation(said: list[str]) -> EvaluationRecord:
        return EvaluationRecord(
            classification_type="Multiclass",
            labels=[EvaluatedLabel(tag_id=tag, name=name) for tag, name in zip(tags, "ab", strict=True)],
            images=[
                EvaluatedImage(image_id=i, fold=n % 2, truth=[truth[n]], probabilities={said[n]: 0.9})
                for n, i in enumerate(ids)
            ],
        )

    store = IterationStore(account)
    trained = {"model_blob": f"{project['id']}/none/model.onnx"}  # per-image results need a trained iteration
    write_iteration(store, project["id"], "Iteration 1", evaluation(truth), **trained)
    second = write_iteration(
        store, project["id"], "Iteration 2", evaluation([tags[1], *truth[1:]]), **trained
    )
    page.goto(f"{live_url}/#{base}/performance?iteration={second.id}")
    page.get_by_role("button", name="Compare").click()
    dialog = page.get_by_role("dialog", name="Compare Iteration 2")
    expect(dialog.get_by_label("Compare with")).to_have_value(re.compile(".+"))
    table = dialog.get_by_role("table", name="Iteration 1 against Iteration 2")
    overall = table.get_by_role("row", name=re.compile("^All"))
    expect(overall.get_by_role("cell").nth(0)).to_have_text("100.0%")  # precision, Iteration 1
    expect(overall.get_by_role("cell").nth(1)).to_have_text("75.0%")  # precision, Iteration 2
    changed = dialog.get_by_role("list", name="Changed predictions").get_by_role("listitem")
    expect(changed).to_have_count(1)
    expect(changed.get_by_role("img")).to_have_accessible_name(
        "Tagged a: Iteration 1 predicted a, Iteration 2 b"
    )
    expect(changed).to_contain_text("Iteration 2: b")
    expect(
        dialog.get_by_role("heading", name="Images whose prediction changed (1 of 4 in both)")
    ).to_be_visible()
    screenshot(page, "23-iteration-compare")

    # The comparison is in the address: a reload opens it again; closing it takes it out.
    expect(page).to_have_url(re.compile(rf"performance\?iteration={second.id}&compare=[0-9a-f-]+$"))
    page.reload()
    dialog = page.get_by_role("dialog", name="Compare Iteration 2")
    expect(dialog.get_by_role("table", name="Iteration 1 against Iteration 2")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(page).to_have_url(re.compile(rf"performance\?iteration={second.id}$"))


def test_quick_test_and_predictions_keep_their_choices_in_the_url(
    page: Page, live_url: str, account: StorageAccount
) -> None:
    project = make_project(live_url)
    base = f"/projects/{project['id']}"
    with api(live_url) as client:
        tags = [client.post(f"{base}/tags", params={"name": n}).json()["id"] for n in ("a", "b")]
    evaluation = EvaluationRecord(classification_type="Multiclass", labels=[], images=[])
    store = IterationStore(account)
    first = write_iteration(store, project["id"], "Iteration 1", evaluation)
    write_iteration(store, project["id"], "Iteration 2", evaluation)

    page.goto(f"{live_url}/#{base}/quicktest")
    page.get_by_label("Iteration").select_option(label="Iteration 1")
    expect(page).to_have_url(re.compile(rf"/quicktest\?iteration={first.id}$"))
    page.reload()
    expect(page.get_by_label("Iteration")).to_have_value(first.id)

    page.goto(f"{live_url}/#{base}/predictions")
    page.get_by_label("Iteration").select_option(label="Iteration 1")
    page.get_by_label(re.compile("^Tag")).select_option(label="b")
    expect(page).to_have_url(re.compile(rf"/predictions\?iteration={first.id}&tag={tags[1]}$"))
    page.reload()
    expect(page.get_by_label("Iteration")).to_have_value(first.id)
    expect(page.get_by_label(re.compile("^Tag"))).to_have_value(tags[1])


def test_detection_performance_shows_each_images_found_missed_and_extra_boxes(
    page: Page, live_url: str, account: StorageAccount
) -> None:
    """Per-image results for a detector: one image whose box is found, one whose box is missed (the prediction is
    elsewhere, so also extra); the overlap slider decides what counts as found."""
    project = make_project(live_url, domain=DETECTION_DOMAIN)
    base = f"/projects/{project['id']}"
    region = (0.1, 0.1, 0.4, 0.4)
    with api(live_url) as client:
        fork = client.post(f"{base}/tags", params={"name": "fork"}).json()["id"]
        ids = []
        for seed in (60, 61):
            created = client.post(f"{base}/images", content=make_image(400, 300, seed=seed)).json()
            ids.append(created["images"][0]["image"]["id"])
            client.post(
                f"{base}/images/regions",
                json={
                    "regions": [
                        dict(
                            zip(("left", "top", "width", "height"), region, strict=True),
                            imageId=ids[-1],
                            tagId=fork,
                        )
                    ]
                },
            )
    truth = Box(fork, *region)
    evaluation = EvaluationRecord(
        classification_type=None,
        domain_type=DomainType.OBJECT_DETECTION,
        labels=[EvaluatedLabel(tag_id=fork, name="fork")],
        images=[
            EvaluatedImage(image_id=image_id, fold=n, truth=[fork], regions=[truth], detections=[detected])
            for n, (image_id, detected) in enumerate(
                zip(
                    ids,
                    [Box(fork, 0.12, 0.1, 0.4, 0.4, 0.9), Box(fork, 0.55, 0.5, 0.4, 0.4, 0.9)],
                    strict=True,
                )
            )
        ],
    )
    iteration = write_iteration(
        IterationStore(account),
        project["id"],
        "Iteration 1",
        evaluation,
        model_blob=f"{project['id']}/none/model.onnx",
    )
    page.goto(f"{live_url}/#{base}/performance?iteration={iteration.id}")
    tiles = page.get_by_role("list", name="Per-image results").get_by_role("listitem")
    expect(page.get_by_role("heading", name=re.compile(r"^Per-image results \(1 of 2 wrong"))).to_be_visible()
    expect(tiles.first).to_have_text("✗ 1 missed, 1 extra")  # wrong images first
    expect(tiles.last).to_have_text("✓ 1 found")
    screenshot(page, "25-detection-per-image")
    tiles.first.get_by_role("button").click()
    expect(page.get_by_role("dialog", name="1 region").locator(".prediction-box")).to_have_count(1)


def write_iteration(
    store: IterationStore, project_id: str, name: str, evaluation: EvaluationRecord, **fields: object
) -> IterationRecord:
    """A Completed iteration with its evaluation, as the training job writes them (no model: nothing predicts)."""
    iteration_id = str(uuid.uuid4())
    blob = f"{project_id}/{iteration_id}/evaluation.json"
    store.put_artefact(blob, evaluation.dumps())
    return store.create(
        IterationRecord(
            id=iteration_id,
            project_id=project_id,
            name=name,
            status=IterationStatus.COMPLETED,
            domain_id=COMPACT_CLASSIFICATION,
            training_set_fingerprint="portal",
            trained_at=datetime.now(UTC),
            evaluation_blob=blob,
            **fields,
        )
    )


def test_unknown_detection_is_a_project_setting_and_the_quick_test_says_unknown(
    page: Page, live_url: str, account: StorageAccount
) -> None:
    """The project dialog, opened inside the project, renames it and turns Seer's unknownDetection on; then a quick
    test of noise on a small real classifier (tests/trained_models.py) says "Unknown (none of the tags)" above the
    probabilities, and so does its tile on the Predictions page."""
    project = make_project(live_url)
    pid = project["id"]
    published_iteration(account, project, "colours", classifier_onnx())
    page.goto(f"{live_url}/#/projects/{pid}/quicktest")
    page.get_by_role("button", name="Project settings").click()
    dialog = page.get_by_role("dialog", name="Edit project")
    dialog.get_by_label("Name").fill(f"{project['name']} renamed")
    setting = dialog.get_by_label(re.compile("Say when an image is none of the tags"))
    expect(setting).not_to_be_checked()
    setting.check()
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("heading", level=1, name=f"{project['name']} renamed")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/projects/{pid}/quicktest$"))
    with api(live_url) as client:
        assert client.get(f"/projects/{pid}").json()["settings"]["unknownDetection"] is True

    noise = np.random.default_rng(5).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    page.get_by_label("Browse local files").set_input_files(
        {"name": "noise.png", "mimeType": "image/png", "buffer": buffer.getvalue()}
    )
    expect(page.locator(".unknown-verdict")).to_contain_text("Unknown (none of the tags)")
    expect(page.get_by_role("table", name="Predictions").get_by_role("row")).to_have_count(4)
    screenshot(page, "22-quick-test-unknown")
    page.get_by_role("link", name="Predictions").click()
    tile = page.get_by_role("list", name="Predictions").get_by_role("listitem")
    expect(tile).to_contain_text("Unknown (none of the tags)")
    # Its dialog: the prediction table stays in its own column, clear of the tag picker beside it.
    tile.get_by_role("button", name=re.compile("^Open")).click()
    dialog = page.get_by_role("dialog", name="Image detail")
    table = dialog.get_by_role("table", name="Predictions").bounding_box()
    picker = dialog.locator(".tag-picker").bounding_box()
    assert table["x"] + table["width"] <= picker["x"] or table["y"] >= picker["y"] + picker["height"]
    screenshot(page, "24-stored-prediction")
