"""Custom Vision's documented limits that are not settings (settings.py holds the S0 tier's tunable ones)."""

from __future__ import annotations

import re

from pipeline.core.errors import bad_request

MAX_NAME_LENGTH = 256  # project, tag and iteration names
# The spec sets no limit on descriptions and URIs; these keep every stored text far inside a table property (64 KiB).
MAX_DESCRIPTION_LENGTH = 8192
MAX_URI_LENGTH = 2048
MAX_TAGS_PER_IMAGE = 20
MAX_METADATA_ENTRIES = 10
MAX_METADATA_KEY_LENGTH = 128
MAX_METADATA_VALUE_LENGTH = 256
# The spec sets none for GetImages' $filter; these bound its parsing (characters, nesting of parentheses).
MAX_FILTER_LENGTH = 2048
MAX_FILTER_DEPTH = 32
MAX_IMAGE_IDS = 256  # get by ids, delete
MAX_EDIT_BATCH = 64  # image region / metadata edits, DeleteImageTags
MAX_IMAGE_TAG_ENTRIES = 128  # CreateImageTags entries
MAX_TAG_IDS = 20  # tag ids in a query string or a prediction query
MAX_PAGE_SIZE = 256  # `take` of every paged list, `maxCount` of a prediction query
MAX_DELETE_PREDICTIONS = 64
MAX_SUGGESTION_IMAGES = 64

# Publish names and application names become URL path segments or query values.
URL_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def check_length(text: str | None, limit: int, code: str, what: str) -> None:
    """Refuse `text` with the Custom Vision error `code` if it has more than `limit` characters."""
    if text is not None and len(text) > limit:
        raise bad_request(code, f"{what} must be at most {limit} characters.")
