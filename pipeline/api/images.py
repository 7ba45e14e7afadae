"""Images: create (data, files, URLs), list, count, delete, tag and region edits."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["images"])
