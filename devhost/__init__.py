"""A local Azure Functions host for `function_app`: the real host's trigger semantics, without Core Tools.

Core Tools cannot be installed offline, so this package loads the same app object, serves its ASGI app with
uvicorn and dispatches blob, queue and timer triggers the way the Functions host does (receipts, retries,
poison queues, NCRONTAB schedules). `python -m devhost --help` lists the options.
"""

from devhost.host import LocalHost
from devhost.host_config import HostConfig
from devhost.jobs import JobSpec

__all__ = ["HostConfig", "JobSpec", "LocalHost"]
