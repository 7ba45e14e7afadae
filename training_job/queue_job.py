"""What the training and the export job share (each run is one Container Apps Job execution): take one message
from the job's queue, keep it leased while working, and settle it. The queue gives the retries: a run that crashes
or is killed leaves its message to reappear, and the run that sees it past the last try fails the request."""

from __future__ import annotations

import logging
import os
import select
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from azure.storage.queue import QueueMessage

from pipeline.store import StorageAccount
from pipeline.store.message_lease import MessageLease

log = logging.getLogger(__name__)

WAIT_POLL_SECONDS = 0.2  # how often a waiting execution asks the queue again
NUDGED_POLL_SECONDS = 2.0  # the same, while a launcher can nudge it: for messages other processes send

Request = TypeVar("Request")
Subject = TypeVar("Subject")


class FailNow(Exception):
    """A failure no retry can fix (bad data, a model the platform cannot express): the request fails at once."""


@dataclass(frozen=True)
class Work(Generic[Request, Subject]):
    """One job's handling of its requests. `load` reads what a request is about (the iteration, the export row)
    once; `run` does the work on it and records its success; `fail` records the failure reason (the exception,
    when there is one, may carry more)."""

    noun: str  # what a message holds, for logs: "training request", "export request"
    decode: Callable[[str], Request]  # ValueError: not a request (the message is poisoned)
    describe: Callable[[Request], str]
    load: Callable[[Request], Subject | None]  # None: gone, settled or asked for again: drop the message
    run: Callable[[Request, Subject], None]
    fail: Callable[[Request, Subject, str, Exception | None], None]


@dataclass(frozen=True)
class JobQueue:
    name: str
    visibility_timeout_seconds: int
    max_attempts: int


def poison(account: StorageAccount, queue_name: str, message: QueueMessage) -> None:
    account.queue(f"{queue_name}-poison").send_message(message.content)


def handle(
    account: StorageAccount, queue: JobQueue, message: QueueMessage, work: Work[Request, Subject]
) -> int:
    """Settle one message; 1 when it is left to reappear for another try, else 0."""
    with MessageLease(account.queue(queue.name), message, queue.visibility_timeout_seconds) as lease:
        try:
            request = work.decode(message.content)
        except ValueError:
            log.error("message %s is not a %s; moved to %s-poison", message.id, work.noun, queue.name)
            poison(account, queue.name, message)
            lease.complete()
            return 0
        name = work.describe(request)
        subject = work.load(request)
        if subject is None:
            log.info("%s is gone, finished or asked for again; dropping its message", name)
            lease.complete()
            return 0
        if message.dequeue_count > queue.max_attempts:
            reason = (
                f"The job stopped before finishing on each of its {queue.max_attempts} tries (it crashed or was "
                "killed)."
            )
            log.error("%s: %s", name, reason)
            work.fail(request, subject, reason, None)
            poison(account, queue.name, message)
            lease.complete()
            return 0
        log.info("%s (try %d of %d)", name, message.dequeue_count, queue.max_attempts)
        try:
            work.run(request, subject)
        except FailNow as error:
            log.warning("%s failed: %s", name, error)
            work.fail(request, subject, str(error), error)
            lease.complete()
            return 0
        except Exception as error:
            log.exception("%s failed", name)
            if message.dequeue_count < queue.max_attempts:
                return 1
            work.fail(request, subject, f"It failed on its last try: {error}", error)
            poison(account, queue.name, message)
            lease.complete()
            return 0
        lease.complete()
        return 0


def nudge_pipe() -> int | None:
    """Standard input when it is a pipe: the local host's job launcher writes a line there when its app has just
    sent the job's queue a message (devhost.jobs), so a waiting execution asks the queue at once and otherwise
    seldom. A terminal, /dev/null or a closed standard input nudges nothing."""
    try:
        return 0 if stat.S_ISFIFO(os.fstat(0).st_mode) else None
    except OSError:
        return None


def wait_for_nudge(pipe: int, seconds: float) -> bool:
    """Wait up to `seconds` for a line on `pipe`, consuming what came; False when the pipe is closed."""
    readable, _, _ = select.select([pipe], [], [], seconds)
    return not readable or bool(os.read(pipe, 4096))


def receive(
    account: StorageAccount, queue: JobQueue, wait_seconds: float = 0.0, nudges: int | None = None
) -> QueueMessage | None:
    """One message from the queue, asking for up to `wait_seconds` until one is visible: every
    `WAIT_POLL_SECONDS`, or with a `nudges` pipe (`nudge_pipe`) on each nudge and every `NUDGED_POLL_SECONDS`;
    None when none came."""
    client = account.queue(queue.name)
    deadline = time.monotonic() + wait_seconds
    while True:
        messages = client.receive_messages(
            max_messages=1, visibility_timeout=queue.visibility_timeout_seconds
        )
        message = next(iter(messages), None)
        left = deadline - time.monotonic()
        if message is not None or left <= 0:
            return message
        if nudges is None:
            time.sleep(min(WAIT_POLL_SECONDS, left))
        elif not wait_for_nudge(nudges, min(NUDGED_POLL_SECONDS, left)):
            nudges = None  # the launcher is gone: poll as often as without one


def run_once(
    account: StorageAccount,
    queue: JobQueue,
    work: Work[Request, Subject],
    wait_seconds: float = 0.0,
    nudges: int | None = None,
    while_idle: Callable[[], None] | None = None,
) -> int:
    """Take one message, waiting up to `wait_seconds` for one (a standby execution, see devhost.jobs), and
    settle it. `while_idle` runs before the wait when no message is waiting yet: preparation that only some
    requests need, which a request already queued should not wait for."""
    message = None
    if while_idle is not None:
        message = receive(account, queue)
        if message is None:
            while_idle()
    message = message or receive(account, queue, wait_seconds, nudges)
    if message is None:
        log.info("no %s waiting on %s", work.noun, queue.name)
        return 0
    return handle(account, queue, message, work)


def configure_logging() -> None:
    """The job's own progress at INFO; the Azure SDKs' at WARNING: at INFO they log every request's headers
    (over 1,000 entries, 14,000 lines, for one 245-image training run)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
