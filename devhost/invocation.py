"""Call a user function the way the Python worker does, with the host's Executing/Executed log lines."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from typing import Any

from devhost.app_loader import FunctionInfo

log = logging.getLogger(__name__)


def invoke(function: FunctionInfo, value: Any, reason: str) -> None:
    """Pass the trigger value by its binding name and run coroutines to completion; exceptions propagate."""
    invocation_id = uuid.uuid4()
    log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", function.name, reason, invocation_id)
    started = time.perf_counter()
    try:
        result = function.user_function(**{function.arg_name: value})
        if inspect.iscoroutine(result):
            asyncio.run(result)
    except Exception:
        elapsed = (time.perf_counter() - started) * 1000
        log.exception(
            "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms)", function.name, invocation_id, elapsed
        )
        raise
    elapsed = (time.perf_counter() - started) * 1000
    log.info(
        "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)", function.name, invocation_id, elapsed
    )


def convert_payload(function: FunctionInfo, data: bytes, binding_object: Any) -> Any:
    """What the worker passes for the annotation: bytes, str, or the azure.functions object."""
    annotation = function.arg_type
    if annotation is bytes:
        return data
    if annotation is str:
        return data.decode("utf-8")
    return binding_object
