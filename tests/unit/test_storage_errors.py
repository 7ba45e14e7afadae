"""Which storage errors the API reports as 503 (storage down or frozen) and which stay unexpected (500)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from pipeline.api.app import storage_unreachable


def _wrapped(inner: Exception) -> HttpResponseError:
    """As the blob downloader reports a body read that failed: HttpResponseError(error, error=error) from error."""
    try:
        raise HttpResponseError(inner, error=inner) from inner
    except HttpResponseError as outer:
        return outer


def _status(code: int) -> HttpResponseError:
    error = HttpResponseError("storage answered")
    error.status_code = code
    return error


@pytest.mark.parametrize(
    "error",
    [
        ServiceRequestError("connection refused"),
        ServiceResponseError("read timed out"),
        ServiceResponseTimeoutError("Response timeout"),
        _wrapped(ServiceResponseError("connection reset mid-body")),
        _status(503),
    ],
)
def test_unreachable_storage_is_503(error: Exception) -> None:
    assert storage_unreachable(error)


@pytest.mark.parametrize(
    "error",
    [ResourceNotFoundError("gone"), ResourceExistsError("there"), _status(500), _status(400), ValueError()],
)
def test_other_storage_answers_are_not(error: Exception) -> None:
    assert not storage_unreachable(error)
