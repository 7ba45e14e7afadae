"""The portal's page and static files, served by the router alone (no storage needed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pipeline.portal import router as portal

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def client() -> TestClient:
    subprocess.run(["npm", "run", "--silent", "build:portal"], cwd=ROOT, check=True)
    app = FastAPI()
    app.include_router(portal.router)
    return TestClient(app)


def test_the_page_loads_the_one_bundled_script(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.text.count("<script") == 1 and 'src="/portal/dist/portal.js"' in page.text
    script = client.get("/portal/dist/portal.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert not re.search(r"(^|[;}])import[\s{*(]", script.text, re.M), "the bundle still imports modules"


def test_an_unbuilt_portal_says_how_to_build_it(client: TestClient, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(portal, "BUNDLE", tmp_path / "missing.js")
    page = client.get("/")
    assert page.status_code == 503
    assert "npm run build:portal" in page.text
