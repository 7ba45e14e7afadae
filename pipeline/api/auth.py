"""Key checks: Training-Key / Prediction-Key headers (any case), or Ocp-Apim-Subscription-Key.

They run as ASGI middleware, before routing, so a request without the right key is answered 401 before
anything reads its body: a keyless client cannot make Seer parse or hold a large body."""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.api.routing import PREFIX
from pipeline.core.errors import unauthorized
from pipeline.core.settings import Settings

# Paths (after CaseInsensitivePaths) -> the header that must carry the key; the portal's pages need none.
_TRAINING, _PREDICTION = "training-key", "prediction-key"


def _required_header(path: str) -> str | None:
    if path == "/openapi.json":
        return _TRAINING
    segments = path.split("/")
    if not path.startswith(PREFIX) or len(segments) < 4:
        return None
    return {"training": _TRAINING, "prediction": _PREDICTION}.get(segments[3])


def _authorized(headers: Headers, header: str, expected: str | None) -> bool:
    supplied = headers.get(header) or headers.get("ocp-apim-subscription-key")
    return bool(expected and supplied and hmac.compare_digest(supplied.encode(), expected.encode()))


class RequireKeys:
    """ASGI middleware: the Training API and `/openapi.json` need the training key, the Prediction API the
    prediction key (the keys come from settings)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.expected = {
            _TRAINING: settings.effective_training_key,
            _PREDICTION: settings.effective_prediction_key,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = _required_header(scope["path"]) if scope["type"] == "http" else None
        if header is not None and not _authorized(Headers(scope=scope), header, self.expected[header]):
            error = unauthorized()
            response = JSONResponse({"code": error.code, "message": error.message}, status_code=error.status)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
