"""What each non-HTTP trigger does, callable without the Functions runtime."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def ingest_upload(blob_path: str, data: bytes) -> None:
    """Blob trigger on `uploads/{name}`: hand the file to ingestion (see `pipeline.services.ingest`)."""
    from pipeline.services.ingest import ingest_blob

    ingest_blob(blob_path, data)


def retrain_on_schedule() -> None:
    """Timer trigger: queue training for projects that gained enough labelled images."""
    from pipeline.core.settings import get_settings
    from pipeline.services.retrain import retrain_due_projects
    from pipeline.store import get_storage

    retrain_due_projects(get_storage(), get_settings())


def sweep_orphans() -> None:
    """Timer trigger: remove what interrupted uploads and deletions left (see `pipeline.services.sweeper`)."""
    from pipeline.core.settings import get_settings
    from pipeline.services.sweeper import sweep
    from pipeline.store import get_storage

    sweep(get_storage(), get_settings())
