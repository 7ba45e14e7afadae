"""Word, within one process, that a message was just sent to a queue, so that a listener in the same process (the
local host's queue triggers and job launchers) asks the queue at once instead of at its next poll. The Functions
host does the same for the messages its own functions send (the WebJobs SDK's SharedQueueWatcher).

A hint only: listeners still poll, which finds the messages other processes send and those made visible again.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from azure.storage.queue import QueueClient

log = logging.getLogger(__name__)

Listener = Callable[[], None]


def _key(queue: QueueClient) -> str:
    """The queue's address without credentials: the same queue reached through two clients is one key."""
    return f"{queue.primary_hostname}/{queue.queue_name}"


class QueueWatch:
    """Listeners per queue, told after each message a client in this process sent there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, list[Listener]] = defaultdict(list)

    def subscribe(self, queue: QueueClient, listener: Listener) -> Callable[[], None]:
        """Call `listener` (quickly: it runs on the sender's thread) after each message sent to `queue`; returns
        the call that stops it."""
        key = _key(queue)
        with self._lock:
            self._listeners[key].append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners[key]:
                    self._listeners[key].remove(listener)

        return unsubscribe

    def announce(self, queue: QueueClient) -> None:
        """Tell `queue`'s listeners a message is there; a listener's error is logged, never the sender's."""
        with self._lock:
            listeners = list(self._listeners.get(_key(queue), ()))
        for listener in listeners:
            try:
                listener()
            except Exception:
                log.exception(
                    "a listener of queue %s failed; it finds the message at its next poll", queue.queue_name
                )


QUEUE_WATCH = QueueWatch()
"""The process's one watch: senders and listeners meet here whichever `StorageAccount` each holds."""
