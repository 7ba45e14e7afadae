"""LocalHost: one app object's functions, each dispatched by its trigger type in its own thread."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import azure.functions as func

from devhost.app_loader import (
    HTTP_TRIGGER,
    FunctionInfo,
    UnsupportedFunctionError,
    asgi_app_of,
    index_functions,
)
from devhost.blob_triggers import BlobTriggerDispatcher
from devhost.connections import DEFAULT_CONNECTION, resolve_connection_string
from devhost.host_config import HostConfig, default_host_id
from devhost.http_server import HttpServer
from devhost.jobs import JobLauncher, JobSpec
from devhost.queue_triggers import DEFAULT_MESSAGE_LEASE_SECONDS, QueueTriggerDispatcher
from devhost.timer_triggers import TimerTriggerDispatcher
from devhost.worker import PollingWorker
from pipeline.store import StorageAccount

log = logging.getLogger(__name__)


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
        queue_poll_interval: float = 1.0,
        message_lease: float = DEFAULT_MESSAGE_LEASE_SECONDS,
        jobs: Sequence[JobSpec] = (),
        job_poll_interval: float = 2.0,
        host_id: str | None = None,
    ) -> None:
        self.config = host_config or HostConfig()
        self.host_id = host_id or default_host_id(Path.cwd())
        self._blob_poll_interval = blob_poll_interval
        self._queue_poll_interval = queue_poll_interval
        self._message_lease = message_lease
        self._accounts: dict[str, StorageAccount] = {}
        self.functions = index_functions(app)
        dispatchers: dict[str, Callable[[FunctionInfo], PollingWorker]] = {
            "blobTrigger": self._blob_trigger,
            "queueTrigger": self._queue_trigger,
            "timerTrigger": TimerTriggerDispatcher,
        }
        self.http: HttpServer | None = None
        self.workers: list[PollingWorker] = []
        for function in self.functions:
            if function.trigger_type == HTTP_TRIGGER:
                if function.http_type != "asgi":
                    raise UnsupportedFunctionError(
                        f"function {function.name}: only an AsgiFunctionApp's ASGI app is served locally"
                    )
                if self.http is None:
                    self.http = HttpServer(
                        asgi_app_of(app), host=host, port=port, route_prefix=self.config.route_prefix
                    )
                continue
            if function.trigger_type not in dispatchers:
                raise UnsupportedFunctionError(
                    f"function {function.name}: trigger type {function.trigger_type} is not supported locally"
                )
            self.workers.append(dispatchers[function.trigger_type](function))
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
        log.info("host %s stopped", self.host_id)

    def _account(self, connection: str | None) -> StorageAccount:
        connection_string = resolve_connection_string(connection)
        if connection_string not in self._accounts:
            self._accounts[connection_string] = StorageAccount(connection_string)
        return self._accounts[connection_string]

    def _blob_trigger(self, function: FunctionInfo) -> PollingWorker:
        return BlobTriggerDispatcher(
            function,
            self._account(function.trigger.get("connection")),
            host_id=self.host_id,
            max_dequeue_count=self.config.max_dequeue_count,
            retry_delay=self.config.visibility_timeout,
            batch_size=self.config.batch_size,
            poll_interval=self._blob_poll_interval,
        )

    def _queue_trigger(self, function: FunctionInfo) -> PollingWorker:
        return QueueTriggerDispatcher(
            function,
            self._account(function.trigger.get("connection")),
            max_dequeue_count=self.config.max_dequeue_count,
            visibility_timeout=self.config.visibility_timeout,
            batch_size=self.config.batch_size,
            message_encoding=self.config.message_encoding,
            poll_interval=self._queue_poll_interval,
            message_lease=self._message_lease,
        )


def _describe(function: FunctionInfo) -> str:
    trigger = function.trigger
    detail = (
        trigger.get("path") or trigger.get("queueName") or trigger.get("schedule") or trigger.get("route")
    )
    return f"{function.trigger_type} {detail}" if detail else function.trigger_type
