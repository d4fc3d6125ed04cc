"""The host's own endpoints that Functions developers use under ``func start``.

- ``GET /``: the landing page (200, text/html); 204 when ``AzureWebJobsDisableHomepage`` is
  ``true``, as the host's homepage handler does.
- ``GET /admin/host/status``: the host status document (``state``: ``Running``).
- ``POST /admin/functions/{name}`` with ``{"input": "..."}``: runs a non-HTTP function now and
  answers ``202 Accepted`` at once, as the host's ``FunctionsController.Invoke`` does (400 without
  a JSON body, 404 for a function the host has not loaded). For a queue function the input is the
  message text; a timer function ignores it (``{"input": ""}``). The run is a one-off: a failure is
  logged and not retried or poisoned, because no queue message exists. See "Manually run a non
  HTTP-triggered function" (learn.microsoft.com, azure-functions/functions-manually-run-non-http).

Keys: the runner checks none. In Azure every ``/admin`` call needs the app's master key in the
``x-functions-key`` header; locally the host does not enforce it either (same document).

Error bodies are ``application/problem+json`` with a detail, where the host sends an empty body:
the status codes are the host's, the detail is for the developer reading curl's output.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from azure.functions.queue import QueueMessage

from devtools.runner.functions import AppFunctions, HttpFunction, QueueFunction, SkippedFunction, TimerFunction
from devtools.runner.invoker import Invoker, InvokerClosed
from devtools.runner.timers import timer_request

log = logging.getLogger("devtools.runner")

Response = tuple[int, dict[str, str], bytes]

_REASON = "This function was programmatically called via the host APIs."
_LANDING = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Your Functions app is up and running</title></head>
<body>
<h1>Your Functions app is up and running</h1>
<p>Served by the local runner (<code>python -m devtools.runner</code>), a stand-in for <code>func start</code>.</p>
<p>Host status: <a href="/admin/host/status">/admin/host/status</a></p>
</body>
</html>
"""


def _problem(status: int, title: str, detail: str) -> Response:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    return status, {"Content-Type": "application/problem+json; charset=utf-8"}, body.encode("utf-8")


@dataclass
class AdminApi:
    functions: AppFunctions
    invoker: Invoker
    stopping: threading.Event
    env: Any = field(default_factory=lambda: os.environ)
    started: float = field(default_factory=time.monotonic)
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _runs: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, method: str, path: str, body: bytes) -> Response | None:
        """The response for a host endpoint, or None when ``path`` is not one (the function routes get it)."""
        segments = [s for s in path.split("/") if s]
        if not segments:
            return self._landing(method)
        if segments[0].lower() != "admin":
            return None
        rest = [s.lower() for s in segments[1:]]
        if rest == ["host", "status"]:
            return self._status() if method in ("GET", "HEAD") else _not_allowed("GET")
        if len(rest) == 2 and rest[0] == "functions":
            if method != "POST":
                return _not_allowed("POST")
            return self._invoke(segments[2], body)
        return _problem(404, "Not Found", f"{path} is not an admin endpoint the local runner serves")

    def _landing(self, method: str) -> Response:
        if method not in ("GET", "HEAD"):
            return _not_allowed("GET")
        if str(self.env.get("AzureWebJobsDisableHomepage", "")).lower() == "true":
            return 204, {}, b""
        return 200, {"Content-Type": "text/html; charset=utf-8"}, _LANDING.encode("utf-8")

    def _status(self) -> Response:
        runtime = version("azure-functions")
        document = {
            "id": socket.gethostname().lower(),
            "state": "Stopping" if self.stopping.is_set() else "Running",
            "version": f"devtools.runner (azure-functions {runtime})",
            "versionDetails": "A local stand-in for the Functions host; not the host itself.",
            "platformVersion": "",
            "instanceId": self.instance_id,
            "computerName": socket.gethostname(),
            "processUptime": int((time.monotonic() - self.started) * 1000),
            "functionAppContentEditingState": "Unknown",
        }
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(document).encode("utf-8")

    def _invoke(self, name: str, body: bytes) -> Response:
        try:
            invocation = json.loads(body) if body.strip() else None
        except ValueError:
            invocation = None
        if not isinstance(invocation, dict):
            return _problem(400, "Bad Request", 'the body must be a JSON object: {"input": "<trigger input>"}')
        raw = invocation.get("input")
        if raw is not None and not isinstance(raw, str | int | float | bool):
            return _problem(400, "Bad Request", '"input" must be a string, a number or a boolean')
        text = "" if raw is None else raw if isinstance(raw, str) else json.dumps(raw)
        fn = self.functions.find(name)
        if fn is None:
            loaded = ", ".join(self.functions.names) or "none"
            return _problem(404, "Not Found", f"no function named {name!r} is loaded (loaded: {loaded})")
        if isinstance(fn, HttpFunction):
            return _problem(400, "Bad Request", f"{fn.name} is an HTTP function: call its route instead")
        if isinstance(fn, SkippedFunction):
            return _problem(400, "Bad Request", f"{fn.name} is not run by the local runner ({fn.reason})")
        if self.stopping.is_set():
            return _problem(503, "Service Unavailable", "the host is stopping")
        run = threading.Thread(target=self._run, args=(fn, text), name=f"admin-{fn.name}", daemon=True)
        with self._lock:
            self._runs = [t for t in self._runs if t.is_alive()]
            self._runs.append(run)
        run.start()
        return 202, {}, b""

    def _run(self, fn: QueueFunction | TimerFunction, text: str) -> None:
        value: Any
        if isinstance(fn, TimerFunction):
            value = timer_request(fn.use_monitor, None, fn.schedule.next_after(datetime.now(UTC)))
        else:
            # The queue binding turns a string input into a message with that text and no id, as for a
            # message that never was on a queue.
            value = QueueMessage(body=text.encode("utf-8"), dequeue_count=0)  # type: ignore[no-untyped-call]
        try:
            self.invoker.invoke(fn.name, fn.func, fn.arg_name, value, reason=_REASON)
        except InvokerClosed:
            log.warning("Functions.%s: not run, the host is stopping.", fn.name)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for admin-started invocations; True if none is left running."""
        deadline = time.monotonic() + timeout
        with self._lock:
            runs = list(self._runs)
        for run in runs:
            run.join(max(0.0, deadline - time.monotonic()))
        return not any(run.is_alive() for run in runs)


def _not_allowed(allowed: str) -> Response:
    status, headers, body = _problem(405, "Method Not Allowed", f"use {allowed}")
    return status, {**headers, "Allow": allowed}, body
