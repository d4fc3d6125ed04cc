"""The apps the drain benchmark runs in the local runner (``--app devtools.bench.apps:<name>``).

* ``noop``    - one queue function on the benchmark's queue that does nothing: the runner's own cost.
* ``state``   - the app as it ships (the default dialog-state handlers: one insert per event).
* ``effects`` - the app plus a handler that keeps the default of outside effects, so each event
  is claimed (its dialog row's insert) and completed (a merge of that row) around the handlers.

Each also answers ``GET /api/bench/requests`` with the number of HTTP requests the process has
sent, counted where they leave ``requests`` for the network: the storage requests per event.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import azure.functions as func
import requests

from shared.events import catalog

ROW = catalog.BY_TYPE["dialogporten.dialog.activity.information.v1"]

_SENT = itertools.count()
_send = requests.Session.send


def _counting_send(session: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
    next(_SENT)  # itertools.count: atomic under the GIL, no lock on the hot path
    return _send(session, request, **kwargs)


requests.Session.send = _counting_send  # type: ignore[method-assign,assignment]


def sent() -> int:
    """Requests sent so far (reading the counter advances it by one; callers subtract)."""
    return next(_SENT)


def _with_counter(app: func.FunctionApp) -> func.FunctionApp:
    @app.function_name("bench_requests")
    @app.route(route="bench/requests", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def bench_requests(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(json.dumps({"sent": sent()}), mimetype="application/json")

    return app


def _noop() -> func.FunctionApp:
    app = func.FunctionApp()

    @app.function_name(ROW.function_name)
    @app.queue_trigger(arg_name="msg", queue_name=ROW.queue, connection="AzureWebJobsStorage")
    def noop(msg: func.QueueMessage) -> None:
        return None

    return _with_counter(app)


def _state() -> func.FunctionApp:
    import function_app

    return _with_counter(function_app.app)


def bench_effect(event: Any) -> None:
    """Stands for a call to another system: declares (by default) that it has outside effects."""


def _effects() -> func.FunctionApp:
    import function_app
    from shared.events.models import DialogportenEvent
    from shared.functions import queues

    queues.registry().add(bench_effect, DialogportenEvent)  # the app's registry, as discovery would fill it
    return _with_counter(function_app.app)


_BUILDERS = {"noop": _noop, "state": _state, "effects": _effects}


def __getattr__(name: str) -> Any:
    # Built on first access: each runner process loads exactly one of the apps.
    if name in _BUILDERS:
        app = _BUILDERS[name]()
        globals()[name] = app
        return app
    raise AttributeError(name)
