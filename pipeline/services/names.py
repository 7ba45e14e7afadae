"""Unique names under races: a project, tag or iteration claims its name (`store.names`) before its row is
written or renamed, so of parallel requests for one name exactly one wins, and the others get the NameNotUnique
error. A claim is released when its owner is deleted or renamed away, and when the write it guards fails.

A create or rename that crashes between its claim and its write leaves a claim behind. A claim older than
CLAIM_GRACE whose owner is gone, or no longer bears the name, is stale and taken over, so a crash blocks a name
for at most that long; a younger one may belong to a request still in flight, so it counts as taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from pipeline.core.errors import CustomVisionError
from pipeline.store import StorageAccount
from pipeline.store.names import NameClaims
from pipeline.store.records import utcnow

log = logging.getLogger(__name__)

CLAIM_GRACE = timedelta(seconds=30)
_TAKE_OVER_TRIES = 3


def project_name_claims(account: StorageAccount) -> NameClaims:
    return NameClaims(account, "project")


def tag_name_claims(account: StorageAccount, project_id: str) -> NameClaims:
    return NameClaims(account, f"tag-{project_id}")


def iteration_name_claims(account: StorageAccount, project_id: str) -> NameClaims:
    return NameClaims(account, f"iteration-{project_id}")


def _claim(claims: NameClaims, name: str, owner: str, bears: Callable[[str], bool]) -> bool:
    for _ in range(_TAKE_OVER_TRIES):
        holder = claims.claim(name, owner)
        if holder is None or holder.owner == owner:
            return True
        if utcnow() - holder.claimed_at < CLAIM_GRACE or bears(holder.owner):
            return False
        if claims.take_over(name, holder, owner):
            log.warning("took over the stale claim on %r (%s) from %s", name, claims.scope, holder.owner)
            return True
    return False


@contextmanager
def claimed(
    claims: NameClaims, name: str, owner: str, bears: Callable[[str], bool], taken: CustomVisionError
) -> Iterator[None]:
    """Hold `name` (as normalised for its kind) for `owner` during the block, or raise `taken`; if the block
    fails, the claim is released. `bears(other)` says whether another claim's owner exists and still bears the
    name."""
    if not _claim(claims, name, owner, bears):
        raise taken
    try:
        yield
    except BaseException:
        claims.release(name, owner)
        raise


@contextmanager
def renamed(
    claims: NameClaims, old: str, new: str, owner: str, bears: Callable[[str], bool], taken: CustomVisionError
) -> Iterator[None]:
    """`claimed` for a rename: hold `new` during the block (nothing to claim if it is `old`), and release `old`
    once the block has succeeded."""
    if new == old:
        yield
        return
    with claimed(claims, new, owner, bears, taken):
        yield
    claims.release(old, owner)
