"""Custom Vision's documented limits that are not settings (settings.py holds the S0 tier's tunable ones)."""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 256  # project, tag and iteration names
MAX_TAGS_PER_IMAGE = 20
MAX_METADATA_ENTRIES = 10
MAX_METADATA_KEY_LENGTH = 128
MAX_METADATA_VALUE_LENGTH = 256
MAX_IMAGE_IDS = 256  # get by ids, delete
MAX_EDIT_BATCH = 64  # image tag / region / metadata edits
MAX_TAG_IDS = 20  # tag ids in a query string or a prediction query
MAX_PAGE_SIZE = 256  # `take` of every paged list, `maxCount` of a prediction query
MAX_DELETE_PREDICTIONS = 64
MAX_SUGGESTION_IMAGES = 64

# Publish names and application names become URL path segments or query values.
URL_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
