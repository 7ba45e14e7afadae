"""Key checks: Training-Key / Prediction-Key headers (any case), or Ocp-Apim-Subscription-Key."""

from __future__ import annotations

import hmac

from fastapi import Request

from pipeline.core.errors import unauthorized


def _check(request: Request, header: str, expected: str | None) -> None:
    supplied = request.headers.get(header) or request.headers.get("ocp-apim-subscription-key")
    if not expected or not supplied or not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise unauthorized()


def require_training_key(request: Request) -> None:
    _check(request, "training-key", request.app.state.settings.effective_training_key)


def require_prediction_key(request: Request) -> None:
    _check(request, "prediction-key", request.app.state.settings.effective_prediction_key)
