"""Playwright on Debian's Chromium for the portal tests: launch flags, a page that records script errors, and
screenshots under test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
# Without the background-networking flags Chromium keeps calling Google services on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@contextmanager
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium package)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(
    browser: Browser, keys: dict[str, str] | None, viewport: dict = DESKTOP
) -> tuple[Page, list[str]]:
    """A page in a fresh context, with the given keys already saved in localStorage (None: no keys saved).
    Returns the page and the list that collects its uncaught script errors."""
    phone = viewport == PHONE  # a phone also has a touch screen and honours the page's viewport tag
    context = browser.new_context(viewport=viewport, has_touch=phone, is_mobile=phone)
    if keys:
        context.add_init_script(
            f"localStorage.setItem('seer.trainingKey', {keys['training']!r});"
            f"localStorage.setItem('seer.predictionKey', {keys['prediction']!r});"
        )
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def screenshot(page: Page, name: str) -> Path:
    """The whole page. Playwright's full_page capture re-emulates the device, which drops a phone's touch screen
    (CSS for `hover: none` stops applying), so the viewport is made as tall as the page instead, then restored."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    viewport = page.viewport_size
    assert viewport is not None
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": max(height, viewport["height"])})
    try:
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(viewport)
    return path
