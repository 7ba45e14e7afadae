"""The Custom Vision error code for a request FastAPI could not bind: the spec's specific codes where it has one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Malformed JSON has no closer code in the spec's CustomVisionErrorCodes than the generic one.
_BY_ERROR_TYPE = {"json_invalid": "BadRequest", "missing": "BadRequestRequiredParamIsNull"}
# A value of the wrong type, out of range or not one of the allowed values (`take=257`, `skip=-1`, `maxCount=x`).
_INVALID_VALUE = "BadRequestInvalid"


def validation_code(errors: Sequence[dict[str, Any]]) -> str:
    """The code for the first problem, as the real service reports the first one it meets."""
    first = errors[0] if errors else {}
    return _BY_ERROR_TYPE.get(first.get("type", ""), _INVALID_VALUE)


def validation_message(errors: Sequence[dict[str, Any]]) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
        for e in errors[:5]
    )
    return f"The request is invalid: {problems}"
