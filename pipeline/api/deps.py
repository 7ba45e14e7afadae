"""FastAPI dependencies that hand routes the app's settings, storage account and predictor."""

from __future__ import annotations

from fastapi import Request

from pipeline.core.settings import Settings
from pipeline.services.prediction import Predictor
from pipeline.store import StorageAccount


def settings(request: Request) -> Settings:
    return request.app.state.settings


def account(request: Request) -> StorageAccount:
    return request.app.state.account


def predictor(request: Request) -> Predictor:
    return request.app.state.predictor


def csv_list(value: str | None) -> list[str]:
    """Custom Vision sends arrays in the query string comma-separated (`tagIds=a,b`)."""
    if not value:
        return []
    return [item.strip().lower() for item in value.split(",") if item.strip()]
