"""The one rule for e-mail addresses users give Seer (TrainProject's `notificationEmailAddress`): a single plain
ASCII addr-spec with a dotted domain, so the address can never add a header (no CR/LF), a second recipient (no
commas, semicolons or spaces) or a display name to the message the training job sends."""

from __future__ import annotations

import re

from pipeline.core.errors import bad_request

MAX_EMAIL_ADDRESS_LENGTH = 254  # RFC 5321's forward-path limit, less the angle brackets
MAX_LOCAL_PART_LENGTH = 64  # RFC 5321

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


def is_email_address(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return (
        bool(at)
        and len(value) <= MAX_EMAIL_ADDRESS_LENGTH
        and len(local) <= MAX_LOCAL_PART_LENGTH
        and _LOCAL_PART.fullmatch(local) is not None
        and _DOMAIN.fullmatch(domain) is not None
    )


def email_address(value: str | None) -> str | None:
    """`value` as the address to store, None when absent or blank; BadRequestInvalidEmailAddress otherwise."""
    if value is None or not value.strip():
        return None
    if not is_email_address(value):
        raise bad_request(
            "BadRequestInvalidEmailAddress",
            f"notificationEmailAddress must be one e-mail address (name@domain, at most "
            f"{MAX_EMAIL_ADDRESS_LENGTH} characters).",
        )
    return value
