"""Read a v2 ``FunctionApp`` the way the host indexes it: one spec per function, from ``app.get_functions()``."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.runner.routes import RouteTemplate
from devtools.runner.schedules import Schedule, parse_schedule

#: HTTP methods the host binds when a function lists none.
ALL_METHODS: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
DEFAULT_CONNECTION = "AzureWebJobsStorage"


@dataclass(frozen=True)
class HttpFunction:
    name: str
    func: Callable[..., Any]
    arg_name: str
    route: RouteTemplate
    methods: tuple[str, ...]
    auth_level: str
    returns_http: bool


@dataclass(frozen=True)
class QueueFunction:
    name: str
    func: Callable[..., Any]
    arg_name: str
    queue_name: str
    connection: str


@dataclass(frozen=True)
class TimerFunction:
    name: str
    func: Callable[..., Any]
    arg_name: str
    schedule: Schedule
    run_on_startup: bool
    use_monitor: bool


@dataclass(frozen=True)
class SkippedFunction:
    name: str
    reason: str


@dataclass
class AppFunctions:
    http: list[HttpFunction] = field(default_factory=list)
    queue: list[QueueFunction] = field(default_factory=list)
    timer: list[TimerFunction] = field(default_factory=list)
    skipped: list[SkippedFunction] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [f.name for group in (self.http, self.queue, self.timer, self.skipped) for f in group]

    def find(self, name: str) -> HttpFunction | QueueFunction | TimerFunction | SkippedFunction | None:
        """The function of that name, compared without case as the host does."""
        for group in (self.http, self.queue, self.timer, self.skipped):
            for fn in group:
                if fn.name.lower() == name.lower():
                    return fn
        return None


def load_app(script_root: Path, spec: str = "function_app:app") -> Any:
    """Import ``module:attr`` with the script root first on ``sys.path``, as the Python worker does."""
    module_name, _, attr = spec.partition(":")
    root = str(script_root.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr or "app")
    except AttributeError as exc:
        raise SystemExit(f"{module_name} has no attribute {attr or 'app'!r}") from exc


def _value(raw: Any) -> Any:
    """Binding dicts hold enums (HttpMethod, AuthLevel) where function.json holds strings."""
    return getattr(raw, "value", raw)


def _str_list(raw: Iterable[Any] | None) -> list[str]:
    return [str(_value(v)).upper() for v in raw or []]


_INDEXED: dict[int, tuple[Any, list[Any]]] = {}


def _indexed(app: Any) -> list[Any]:
    """``app.get_functions()`` once per app: azure-functions refuses a second call ("not a unique function name")."""
    key = id(app)
    if key not in _INDEXED:
        # The tests' conftest keeps its own copy on the app: share it, whoever indexed first.
        built = getattr(app, "_built_functions", None)
        if built is None:
            built = list(app.get_functions())
            app._built_functions = built
        _INDEXED[key] = (app, list(built))  # holding the app keeps its id from being reused
    return _INDEXED[key][1]


def read_functions(app: Any, only: Iterable[str] | None = None) -> AppFunctions:
    """Classify every function; ``only`` keeps those names (like ``func start --functions``)."""
    wanted = set(only) if only else None
    found = AppFunctions()
    seen: set[str] = set()
    for fn in _indexed(app):
        name = fn.get_function_name()
        seen.add(name)
        if wanted is not None and name not in wanted:
            continue
        trigger = fn.get_trigger()
        user = fn.get_user_function()
        bindings = [b.get_dict_repr() for b in fn.get_bindings()]
        trigger_dict: Mapping[str, Any] = trigger.get_dict_repr() if trigger is not None else {}
        ttype = str(trigger_dict.get("type", "none"))
        others = [b for b in bindings if b.get("name") != trigger_dict.get("name")]
        returns_http = any(b.get("type") == "http" and b.get("name") == "$return" for b in others)
        extra = [str(b.get("type")) for b in others if not (b.get("type") == "http" and b.get("name") == "$return")]
        if extra:
            found.skipped.append(SkippedFunction(name, f"{ttype} with {', '.join(extra)} binding(s)"))
            continue
        arg_name = str(trigger_dict.get("name"))
        if ttype == "httpTrigger":
            methods = tuple(_str_list(trigger_dict.get("methods"))) or ALL_METHODS
            route = str(trigger_dict.get("route") or name)
            auth = str(_value(trigger_dict.get("authLevel", "function"))).lower()
            found.http.append(HttpFunction(name, user, arg_name, RouteTemplate(route), methods, auth, returns_http))
        elif ttype == "queueTrigger":
            connection = str(trigger_dict.get("connection") or DEFAULT_CONNECTION)
            found.queue.append(QueueFunction(name, user, arg_name, str(trigger_dict["queueName"]), connection))
        elif ttype == "timerTrigger":
            schedule = parse_schedule(str(trigger_dict.get("schedule") or ""))
            found.timer.append(
                TimerFunction(
                    name,
                    user,
                    arg_name,
                    schedule,
                    bool(trigger_dict.get("runOnStartup", False)),
                    # The extension defaults it to true for schedules a minute apart or more; here it only
                    # decides whether the function gets schedule_status.
                    bool(trigger_dict.get("useMonitor", True)),
                )
            )
        else:
            found.skipped.append(SkippedFunction(name, ttype))
    if wanted is not None:
        missing = sorted(wanted - seen)
        if missing:
            raise UnknownFunctionError(missing, sorted(seen))
    return found


class UnknownFunctionError(ValueError):
    """``--functions`` named a function the app does not have."""

    def __init__(self, missing: list[str], known: list[str]) -> None:
        self.missing, self.known = missing, known
        names = "\n  ".join(known)
        super().__init__(f"--functions: no function named {', '.join(missing)}. The app's functions are:\n  {names}")


def call_arguments(func: Callable[..., Any], trigger_arg: str, value: Any, context: Any) -> dict[str, Any]:
    """The keyword arguments the worker passes: the trigger by binding name, plus ``context`` if declared."""
    kwargs = {trigger_arg: value}
    if "context" in inspect.signature(func).parameters and trigger_arg != "context":
        kwargs["context"] = context
    return kwargs
