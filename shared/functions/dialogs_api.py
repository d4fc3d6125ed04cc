"""HTTP adapter: ``GET /api/dialogs/{dialogId}`` returns what the default handlers know about a dialog."""

from __future__ import annotations

import json
import uuid

import azure.functions as func

from shared.intake.problems import Problem, bad_request, render, storage_unavailable
from shared.logs import bound_text
from shared.stores import clients as storage

bp = func.Blueprint()

#: A GUID is 36 characters; more than this of a wrong id is never worth echoing.
MAX_ECHO = 100


def _problem(problem: Problem, instance: str) -> func.HttpResponse:
    status, headers, body = render(problem, instance)
    return func.HttpResponse(body=body, status_code=status, headers=headers)


def _instance(url: str) -> str:
    """The request's absolute URL without its query (the function key), its last segment bounded."""
    path = url.split("?", 1)[0]
    base, _, last = path.rpartition("/")
    return f"{base}/{bound_text(last, MAX_ECHO)}"


@bp.function_name("get_dialog")
@bp.route(route="dialogs/{dialogId}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def get_dialog(req: func.HttpRequest) -> func.HttpResponse:
    raw = req.route_params.get("dialogId", "")
    # The id is the caller's: echoed bounded, so that a huge one does not come back whole.
    shown = bound_text(raw, MAX_ECHO)
    instance = _instance(req.url)
    try:
        dialog_id = str(uuid.UUID(raw))
    except ValueError:
        return _problem(bad_request("invalid-dialog-id", f"{shown!r} is not a dialog id (a GUID)"), instance)
    from azure.core.exceptions import AzureError

    from shared.stores.dialogs import DialogStore  # on first use: the table SDK is not needed to index the app

    try:
        state = DialogStore(storage.current().tables).get(dialog_id)
    except AzureError as exc:
        return _problem(storage_unavailable(f"could not read the dialogs table: {type(exc).__name__}"), instance)
    if state is None:
        detail = f"No event has been applied for dialog {dialog_id}"
        problem = Problem(404, "dialog-not-found", "Dialog not found", detail)
        return _problem(problem, instance)
    body = json.dumps(state.to_json(), ensure_ascii=False)
    return func.HttpResponse(body=body, status_code=200, mimetype="application/json")
