"""`python -m devhost`: run function_app locally (Azurite included) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from dataclasses import replace
from pathlib import Path

from devhost.admin import describe_master_key, master_key_from_settings
from devhost.app_loader import load_app
from devhost.azurite import Azurite
from devhost.connections import is_development_storage
from devhost.host import LocalHost
from devhost.host_config import HostConfig, default_host_id
from devhost.jobs import JobSpec
from pipeline.core.settings import get_settings

log = logging.getLogger("devhost")


def job_spec(text: str, *, standby: bool = False) -> JobSpec:
    """argparse type for `--job QUEUE=COMMAND`, so a malformed one is a usage error, not a traceback."""
    try:
        return JobSpec.parse(text, standby=standby)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def standby_job_spec(text: str) -> JobSpec:
    """argparse type for `--standby-job QUEUE=COMMAND`."""
    return job_spec(text, standby=True)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Run an Azure Functions Python app locally with the Functions host's trigger semantics.",
    )
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument(
        "--host", default="127.0.0.1", help="HTTP bind address (keys default only on loopback)"
    )
    parser.add_argument("--port", type=int, default=7071, help="HTTP port")
    parser.add_argument(
        "--azurite-location",
        type=Path,
        default=Path(".azurite"),
        help="Azurite's data directory (used only when AzureWebJobsStorage is UseDevelopmentStorage=true)",
    )
    parser.add_argument(
        "--job",
        action="append",
        type=job_spec,
        default=[],
        metavar="QUEUE=COMMAND",
        help="start COMMAND whenever QUEUE has visible messages (repeatable), like a KEDA-scaled job",
    )
    parser.add_argument(
        "--standby-job",
        action="append",
        type=standby_job_spec,
        default=[],
        dest="job",
        metavar="QUEUE=COMMAND",
        help="as --job, and keep one execution started while QUEUE is empty: COMMAND must wait for its message",
    )
    parser.add_argument(
        "--job-parallelism", type=positive_int, default=1, help="most executions of each job at once"
    )
    parser.add_argument(
        "--blob-poll-interval",
        type=float,
        default=2.0,
        help="seconds between blob scans (polling triggers, and the Event Grid stand-in's listing)",
    )
    parser.add_argument(
        "--queue-poll-interval",
        type=float,
        default=None,
        help="the longest wait in seconds between receives while a queue stays empty (waits double from 0.2 s, as "
        "the Functions host's do; default: host.json's queues.maxPollingInterval for queue triggers, else 60, and 60 "
        "for the blob queue)",
    )
    parser.add_argument(
        "--job-poll-interval",
        type=float,
        default=2.0,
        help="seconds between job queue checks (one also runs at once when the app sends the queue a message)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level")
    return parser


def main(args: argparse.Namespace) -> None:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDKs log every request at INFO
    jobs = [replace(spec, parallelism=args.job_parallelism) for spec in args.job]

    # The bind address decides whether the development keys apply; the app reads settings when imported.
    os.environ["SEER_BIND_HOST"] = args.host
    get_settings.cache_clear()
    settings = get_settings()
    for line in settings.describe_keys():
        log.info(line)
    master_key = master_key_from_settings()
    log.info(describe_master_key(master_key))

    stopping = threading.Event()

    def handle_signal(signum: int, _frame: object) -> None:
        log.info("received %s; stopping (again to force)", signal.Signals(signum).name)
        stopping.set()
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGINT, handle_signal)
    signal.signal(signal.SIGTERM, handle_signal)

    azurite = None
    if is_development_storage(settings.storage_connection_string):
        azurite = Azurite(location=args.azurite_location.resolve())
        azurite.start()
    else:
        log.info("storage: using AzureWebJobsStorage as configured (no Azurite)")
    try:
        app, app_dir = load_app(args.app)
        host = LocalHost(
            app,
            host_config=HostConfig.from_directory(app_dir),
            host=args.host,
            port=args.port,
            blob_poll_interval=args.blob_poll_interval,
            queue_poll_interval=args.queue_poll_interval,
            jobs=jobs,
            job_poll_interval=args.job_poll_interval,
            host_id=default_host_id(app_dir),
            master_key=master_key,
        )
        host.start()
        try:
            stopping.wait()
        finally:
            host.stop()
    finally:
        if azurite:
            azurite.stop()


if __name__ == "__main__":
    main(get_args_parser().parse_args())
