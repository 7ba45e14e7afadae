"""Cold load of the portal: how long a browser with an empty cache takes to show a page, bundled and not.

    .venv/bin/python -m bench.portal_load [--rounds 15]

The service is started as the README's run command starts it (scripts/run.sh, which bundles the portal's script)
on a fresh Azurite, with 12 projects, one of them holding 20 generated images. Each round opens a fresh browser
context (Debian's Chromium through Playwright: nothing cached) with the keys saved, loads a page and records
`performance.now()` at the moment its content appears (a MutationObserver installed before any script runs):
  - Projects: `/`, until the first project card is in the page;
  - Images: `#/projects/{id}/images`, a deep link, until the first image tile is in the page.
Each page is loaded as served (one bundled script, `dist/portal.js`) and with the page's script tag pointed at the
source modules (`js/main.js`, 33 files fetched level by level), which is what the bundle replaced; the two
alternate round by round, so both see the machine in the same state.
The browser shares the machine's cores with the service (Azurite, the local host and its workers), as in CI; a
person's browser would have its own. (Pinning them apart does not help on two cores: Chromium's processes then
contend for one.)
Target (issue 15): a cold load under 300 ms.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, Route

from bench.common import TRAINING, machine, seer_service
from tests.portal_browser import chromium

PROJECTS = 12
IMAGES = 20
SOURCE_MODULES = '<script type="module" src="/portal/js/main.js"></script>'
BUNDLE = '<script type="module" src="/portal/dist/portal.js"></script>'
# Records when the first element matching `selector` enters the page, before the portal's own script runs.
READY_WATCH = """
window.__seerReady = null;
new MutationObserver((_, observer) => {
  if (document.querySelector(%r)) { window.__seerReady = performance.now(); observer.disconnect(); }
}).observe(document, { childList: true, subtree: true });
"""


def jpeg(seed: int) -> bytes:
    image = Image.new("RGB", (320, 240), ((seed * 40) % 256, (seed * 90) % 256, 120))
    data = io.BytesIO()
    image.save(data, "JPEG")
    return data.getvalue()


def cold_load(browser: Browser, url: str, selector: str, index_html: str | None) -> tuple[float, int]:
    """Milliseconds from navigation to `selector` appearing, and the requests made, in a fresh context."""
    context = browser.new_context(bypass_csp=True)  # Playwright's wait_for_function evaluates a string
    context.add_init_script(
        "localStorage.setItem('seer.trainingKey', 'bench-training-key');"
        "localStorage.setItem('seer.predictionKey', 'bench-prediction-key');" + READY_WATCH % selector
    )
    if index_html is not None:

        def serve_index(route: Route) -> None:
            route.fulfill(status=200, content_type="text/html", body=index_html)

        context.route(url.split("#")[0], serve_index)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.wait_for_function("window.__seerReady !== null", timeout=30_000)
    ready = float(page.evaluate("window.__seerReady"))
    context.close()
    return ready, len(requests)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with (
        tempfile.TemporaryDirectory() as logs,
        seer_service(Path(logs)) as service,
        service.client() as client,
    ):
        project_ids = [
            client.post(f"{TRAINING}/projects", params={"name": f"load {n}"}).raise_for_status().json()["id"]
            for n in range(PROJECTS)
        ]
        files = [("imageData", (f"{n}.jpg", jpeg(n), "image/jpeg")) for n in range(IMAGES)]
        client.post(f"{TRAINING}/projects/{project_ids[0]}/images", files=files).raise_for_status()
        index = client.get("/").raise_for_status().text
        assert BUNDLE in index, "the served page no longer loads dist/portal.js"
        pages = [
            ("Projects", f"{service.url}/#/", ".project-card"),
            ("Images", f"{service.url}/#/projects/{project_ids[0]}/images", ".image-grid img"),
        ]
        variants = {"bundled": None, "source modules": index.replace(BUNDLE, SOURCE_MODULES)}
        with chromium() as browser:
            for name, url, selector in pages:
                for html in variants.values():
                    cold_load(browser, url, selector, html)  # the service's first answers warm its caches
                runs: dict[str, list[tuple[float, int]]] = {variant: [] for variant in variants}
                for _ in range(args.rounds):
                    for variant, html in variants.items():
                        runs[variant].append(cold_load(browser, url, selector, html))
                for variant, results in runs.items():
                    times = sorted(ms for ms, _ in results)
                    print(
                        f"{name:8} {variant:15} median {statistics.median(times):6.0f} ms  "
                        f"p90 {times[int(0.9 * (len(times) - 1))]:6.0f} ms  worst {times[-1]:6.0f} ms  "
                        f"requests {results[-1][1]}"
                    )


if __name__ == "__main__":
    main()
