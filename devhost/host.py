"""LocalHost: one app object's functions, each dispatched by its trigger type in its own thread."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import azure.functions as func

from devhost.admin import ADMIN_FUNCTIONS_PATH, AdminFunctions
from devhost.app_loader import (
    HTTP_TRIGGER,
    FunctionInfo,
    UnsupportedFunctionError,
    asgi_app_of,
    index_functions,
)
from devhost.blob_binding import BlobPath, TriggerBlob
from devhost.blob_queue import BlobRegistration, SharedBlobQueueDispatcher
from devhost.blob_triggers import BlobTriggerDispatcher
from devhost.blob_webhook import WEBHOOK_PATH, BlobsWebhook
from devhost.connections import DEFAULT_CONNECTION, resolve_connection_string
from devhost.event_grid import BlobCreatedTopic, EventGridSubscription
from devhost.host_config import DEFAULT_MAX_POLLING_INTERVAL, HostConfig, default_host_id
from devhost.http_server import HttpServer
from devhost.invocation import convert_payload
from devhost.jobs import JobLauncher, JobSpec
from devhost.queue_listener import DEFAULT_MESSAGE_LEASE_SECONDS
from devhost.queue_triggers import QueueTriggerDispatcher
from devhost.timer_triggers import TimerTriggerDispatcher
from devhost.worker import PollingWorker
from pipeline.store import StorageAccount

log = logging.getLogger(__name__)

BLOB_TRIGGER = "blobTrigger"
EVENT_GRID_SOURCE = "EventGrid"


def uses_event_grid(function: FunctionInfo) -> bool:
    """A blob trigger declared with `source="EventGrid"` (the default source polls the container)."""
    return function.trigger_type == BLOB_TRIGGER and function.trigger.get("source") == EVENT_GRID_SOURCE


class LocalHost:
    """Runs an app's functions with the Functions host's semantics. Indexing happens here, once: the app
    object allows `get_functions()` only once, so build one LocalHost per app object.
    """

    def __init__(
        self,
        app: func.FunctionRegister,
        *,
        host_config: HostConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 7071,
        blob_poll_interval: float = 2.0,
        queue_poll_interval: float | None = None,
        message_lease: float = DEFAULT_MESSAGE_LEASE_SECONDS,
        jobs: Sequence[JobSpec] = (),
        job_poll_interval: float = 2.0,
        host_id: str | None = None,
        master_key: str | None = None,
    ) -> None:
        """`master_key` authorises the admin API (`devhost.admin`); None refuses every admin request."""
        self.config = host_config or HostConfig()
        self.host_id = host_id or default_host_id(Path.cwd())
        self._blob_poll_interval = blob_poll_interval
        self._queue_poll_interval = queue_poll_interval  # None: each queue's own longest wait
        self._message_lease = message_lease
        self._accounts: dict[str, StorageAccount] = {}
        self.functions = index_functions(app)
        dispatchers: dict[str, Callable[[FunctionInfo], PollingWorker]] = {
            BLOB_TRIGGER: self._blob_trigger,
            "queueTrigger": self._queue_trigger,
            "timerTrigger": TimerTriggerDispatcher,
        }
        event_grid = {f.full_name: f for f in self.functions if uses_event_grid(f)}
        asgi_app = None
        self.workers: list[PollingWorker] = []
        for function in self.functions:
            if function.trigger_type == HTTP_TRIGGER:
                if function.http_type != "asgi":
                    raise UnsupportedFunctionError(
                        f"function {function.name}: only an AsgiFunctionApp's ASGI app is served locally"
                    )
                asgi_app = asgi_app or asgi_app_of(app)
                continue
            if function.trigger_type not in dispatchers:
                raise UnsupportedFunctionError(
                    f"function {function.name}: trigger type {function.trigger_type} is not supported locally"
                )
            if function.full_name not in event_grid:
                self.workers.append(dispatchers[function.trigger_type](function))
        runtime = self._event_grid_blob_triggers(event_grid) if event_grid else {}
        self.admin = AdminFunctions(self.functions, master_key, read_blob=self._read_trigger_blob)
        runtime[ADMIN_FUNCTIONS_PATH] = self.admin
        self.http: HttpServer | None = None
        if asgi_app is not None or self.workers:
            self.http = HttpServer(
                asgi_app, host=host, port=port, route_prefix=self.config.route_prefix, runtime=runtime
            )
            self.workers.extend(self._subscriptions(event_grid.values(), self.http.local_url))
        if jobs:
            # Jobs get the host's storage, as a Container Apps Job gets its connection string setting.
            job_env = {**os.environ, DEFAULT_CONNECTION: resolve_connection_string(DEFAULT_CONNECTION)}
            account = self._account(DEFAULT_CONNECTION)
            for spec in jobs:
                self.workers.append(JobLauncher(spec, account, env=job_env, poll_interval=job_poll_interval))

    @property
    def url(self) -> str | None:
        return self.http.url if self.http else None

    def start(self) -> None:
        """Serve HTTP (raising if the port is taken), then start every dispatcher."""
        for function in self.functions:
            log.info("function %s: %s", function.name, _describe(function))
        if self.http:
            self.http.start()
        for worker in self.workers:
            worker.start()
        log.info("host %s started: %d dispatcher(s)", self.host_id, len(self.workers))

    def stop(self) -> None:
        """Ask everything to stop, then wait: running invocations finish, job executions are terminated."""
        stoppables: list[HttpServer | PollingWorker] = [*self.workers, *([self.http] if self.http else [])]
        for stoppable in stoppables:
            stoppable.request_stop()
        for stoppable in stoppables:
            stoppable.join()
        self.admin.close()
        log.info("host %s stopped", self.host_id)

    def _account(self, connection: str | None) -> StorageAccount:
        connection_string = resolve_connection_string(connection)
        if connection_string not in self._accounts:
            self._accounts[connection_string] = StorageAccount(connection_string)
        return self._accounts[connection_string]

    def _read_trigger_blob(self, function: FunctionInfo, path: str) -> Any:
        """The blob `{container}/{name}` as `function`'s blob trigger passes it (the admin API's input)."""
        container, _, name = path.partition("/")
        if not container or not name:
            raise ValueError(f"a blob trigger's input is '{{container}}/{{blob name}}', not {path!r}")
        blob = TriggerBlob.read(self._account(function.trigger.get("connection")), container, name)
        return convert_payload(function, blob.data, blob.stream)

    def _blob_trigger(self, function: FunctionInfo) -> PollingWorker:
        return BlobTriggerDispatcher(
            function,
            self._account(function.trigger.get("connection")),
            host_id=self.host_id,
            poison_blob_threshold=self.config.poison_blob_threshold,
            parallelism=self.config.blob_parallelism,
            poll_interval=self._blob_poll_interval,
        )

    def _event_grid_blob_triggers(self, functions: dict[str, FunctionInfo]) -> dict[str, Any]:
        """The blob extension's side of the Event Grid source: the internal queue in the host's storage that runs
        the functions, and the webhook that fills it (returned, to be served beside the app)."""
        queue = SharedBlobQueueDispatcher(
            self._account(DEFAULT_CONNECTION),
            self.host_id,
            {
                name: BlobRegistration(function, self._account(function.trigger.get("connection")))
                for name, function in functions.items()
            },
            poison_blob_threshold=self.config.poison_blob_threshold,
            parallelism=self.config.blob_parallelism,
            poll_interval=self._queue_poll_interval or DEFAULT_MAX_POLLING_INTERVAL,
            message_lease=self._message_lease,
        )
        self.workers.append(queue)
        return {WEBHOOK_PATH: BlobsWebhook(functions, queue.enqueue)}

    def _subscriptions(
        self, functions: Iterable[FunctionInfo], server_url: str
    ) -> Iterator[EventGridSubscription]:
        """Stand-ins for the Event Grid subscriptions a deployment creates: one per function, on its container."""
        for function in functions:
            path = BlobPath.parse(function.trigger["path"])
            topic = BlobCreatedTopic(
                self._account(function.trigger.get("connection")),
                path.container,
                path.prefix,
                self._account(DEFAULT_CONNECTION),
                f"devhost/eventgrid/{self.host_id}/{function.full_name}.json",
            )
            endpoint = f"{server_url}{WEBHOOK_PATH}?functionName={function.full_name}"
            yield EventGridSubscription(function, topic, endpoint, poll_interval=self._blob_poll_interval)

    def _queue_trigger(self, function: FunctionInfo) -> PollingWorker:
        return QueueTriggerDispatcher(
            function,
            self._account(function.trigger.get("connection")),
            max_dequeue_count=self.config.max_dequeue_count,
            visibility_timeout=self.config.visibility_timeout,
            batch_size=self.config.batch_size,
            message_encoding=self.config.message_encoding,
            poll_interval=self._queue_poll_interval or self.config.max_polling_interval,
            message_lease=self._message_lease,
        )


def _describe(function: FunctionInfo) -> str:
    trigger = function.trigger
    detail = (
        trigger.get("path") or trigger.get("queueName") or trigger.get("schedule") or trigger.get("route")
    )
    kind = (
        f"{function.trigger_type} ({EVENT_GRID_SOURCE})"
        if uses_event_grid(function)
        else function.trigger_type
    )
    return f"{kind} {detail}" if detail else kind
