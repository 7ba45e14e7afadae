"""Load a Functions app object and index its functions once, as the Python worker does at start-up."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func

HTTP_TRIGGER = "httpTrigger"
_SETTING_REFERENCE = re.compile(r"%([^%]+)%")


class UnsupportedFunctionError(ValueError):
    """A function needs something the local host cannot provide; failing at start-up beats skipping it."""


@dataclass(frozen=True)
class FunctionInfo:
    """One indexed function: its name, its trigger binding (the app's JSON, %settings% resolved) and code."""

    name: str
    trigger: dict[str, Any]
    user_function: Callable[..., Any]
    http_type: str | None

    @property
    def trigger_type(self) -> str:
        return self.trigger["type"]

    @property
    def arg_name(self) -> str:
        return self.trigger["name"]

    @property
    def full_name(self) -> str:
        """The id the real host uses in blob receipts and poison messages."""
        return f"Host.Functions.{self.name}"

    @property
    def arg_type(self) -> Any:
        """The trigger parameter's annotation, which picks the Python type the worker passes (bytes, str...)."""
        try:
            return typing.get_type_hints(self.user_function).get(self.arg_name)
        except (NameError, TypeError):
            parameter = inspect.signature(self.user_function).parameters.get(self.arg_name)
            return None if parameter is None else parameter.annotation


def load_app(spec: str) -> tuple[func.FunctionRegister, Path]:
    """Import `module:attr` (attr defaults to `app`) and return the app with its directory (host.json's)."""
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attr or "app")
    if not isinstance(app, func.FunctionRegister):
        raise TypeError(f"{spec} is a {type(app).__name__}, not an azure.functions FunctionApp")
    return app, Path(module.__file__).resolve().parent


def _resolve_settings(value: Any) -> Any:
    """Replace %Name% app-setting references, as the real host does in paths, queue names and schedules."""
    if not isinstance(value, str):
        return value

    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise UnsupportedFunctionError(f"binding expression %{name}% does not resolve: {name} is not set")
        return os.environ[name]

    return _SETTING_REFERENCE.sub(setting, value)


def _check_bindable(info: FunctionInfo, bindings: list[dict[str, Any]]) -> None:
    """Only the trigger is bound locally: refuse functions with other bindings or parameters."""
    extra = [b for b in bindings if b["name"] != info.arg_name]
    if extra:
        kinds = ", ".join(f"{b['type']} '{b['name']}'" for b in extra)
        raise UnsupportedFunctionError(
            f"function {info.name}: the local host binds only triggers, not {kinds}"
        )
    parameters = inspect.signature(info.user_function).parameters.values()
    unbound = [p.name for p in parameters if p.name != info.arg_name and p.default is inspect.Parameter.empty]
    if unbound:
        raise UnsupportedFunctionError(f"function {info.name}: cannot bind parameters {unbound}")


def index_functions(app: func.FunctionRegister) -> list[FunctionInfo]:
    """The app's functions. Calls `app.get_functions()`, which may run only once per app object."""
    functions = []
    for function in app.get_functions():
        bindings = [json.loads(raw) for raw in function.get_raw_bindings()]
        trigger_type = function.get_trigger().get_binding_name()
        trigger = next(b for b in bindings if b["type"] == trigger_type)
        info = FunctionInfo(
            name=function.get_function_name(),
            trigger={key: _resolve_settings(value) for key, value in trigger.items()},
            user_function=function.get_user_function(),
            http_type=getattr(function, "http_type", None),
        )
        if trigger_type != HTTP_TRIGGER:
            _check_bindable(info, bindings)
        functions.append(info)
    return functions


def asgi_app_of(app: func.FunctionRegister) -> Any:
    """The ASGI app an AsgiFunctionApp wraps, to serve directly with uvicorn.

    azure-functions has no public accessor: AsgiFunctionApp keeps its AsgiMiddleware on `.middleware`, which
    keeps the wrapped app on `._app` (unchanged since the middleware was introduced).
    """
    middleware = getattr(app, "middleware", None)
    if not isinstance(middleware, func.AsgiMiddleware):
        raise UnsupportedFunctionError(
            "the local host serves HTTP only for an AsgiFunctionApp; plain HTTP functions are not supported"
        )
    return middleware._app
