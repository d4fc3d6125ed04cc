"""``GET /api/dialogs/{dialogId}``: the row as JSON, 404 and 400 as problem+json."""

from __future__ import annotations

import json
import uuid
from typing import Any

import azure.functions as func
import pytest

from devtools.azurite import Azurite
from devtools.samples import sample_event
from shared import settings
from shared.events.models import parse_event
from shared.functions import webhook as webhook_module
from shared.intake.problems import RETRY_AFTER_SECONDS
from shared.stores import clients as storage
from shared.stores.clients import StorageClients
from shared.stores.dialogs import DialogStore
from tests.conftest import app_functions

pytestmark = pytest.mark.azurite


#: What the webhook sends too: one renderer for every endpoint's problems.
PROBLEM_JSON = "application/problem+json; charset=utf-8"
GET_DIALOG = next(f for f in app_functions() if f.get_function_name() == "get_dialog")


def get(dialog_id: str) -> func.HttpResponse:
    request = func.HttpRequest(
        method="GET",
        url=f"http://localhost:7071/api/dialogs/{dialog_id}",
        body=b"",
        route_params={"dialogId": dialog_id},
    )
    response: func.HttpResponse = GET_DIALOG.get_user_function()(request)
    return response


def body(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


def test_the_route_is_get_only_and_needs_a_function_key() -> None:
    [trigger] = [b for b in GET_DIALOG.get_bindings_dict()["bindings"] if b["type"] == "httpTrigger"]
    assert trigger["route"] == "dialogs/{dialogId}"
    assert [str(m.value) for m in trigger["methods"]] == ["GET"]
    assert trigger["authLevel"].value == "function"


def test_a_known_dialog_answers_200_with_its_row(app_env: dict[str, str], clients: StorageClients) -> None:
    dialog_id = str(uuid.uuid4())
    store = DialogStore(clients.tables)
    created = sample_event("dialogporten.dialog.created.v1", dialog_id=dialog_id, time="2026-03-16T11:43:32.4136593Z")
    paid = sample_event(
        "dialogporten.dialog.activity.payment-made.v1", dialog_id=dialog_id, time="2026-03-16T12:00:00.0000001Z"
    )
    store.record(parse_event(created))
    store.record(parse_event(paid))
    response = get(dialog_id.upper())  # GUIDs compare case-insensitively
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    row = body(response)
    assert row == {
        "dialogId": dialog_id,
        "party": "urn:altinn:organization:identifier-no:991825827",
        "serviceResource": "super-simple-service",
        "status": "active",
        "createdAt": "2026-03-16T11:43:32.4136593Z",
        "updatedAt": None,
        "deletedAt": None,
        "restoredAt": None,
        "lastSeenAt": None,
        "lastActivity": {
            "type": "dialogporten.dialog.activity.payment-made.v1",
            "id": paid["data"]["activityId"],
            "at": "2026-03-16T12:00:00.0000001Z",
        },
        "transmissionCount": 0,
        "activityCount": 1,
        "lastEventAt": "2026-03-16T12:00:00.0000001Z",
        "lastEventType": "dialogporten.dialog.activity.payment-made.v1",
        "eventsApplied": 2,
    }


def test_an_unknown_dialog_answers_404_problem_json(app_env: dict[str, str], clients: StorageClients) -> None:
    dialog_id = str(uuid.uuid4())
    response = get(dialog_id)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == PROBLEM_JSON
    problem = body(response)
    assert problem["status"] == 404
    assert problem["title"] == "Dialog not found"
    assert dialog_id in problem["detail"]
    assert problem["type"].endswith("dialog-not-found")


@pytest.mark.parametrize("bad", ["not-a-guid", "123", "019ebbb5-ac51-75ab-a98b"])
def test_an_id_that_is_not_a_guid_answers_400_problem_json(bad: str) -> None:
    response = get(bad)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == PROBLEM_JSON
    problem = body(response)
    assert (problem["status"], problem["title"]) == (400, "Bad request")
    assert set(problem) >= {"type", "title", "status", "detail"}
    assert bad in problem["detail"]


def test_a_40000_character_id_is_refused_without_being_echoed_whole() -> None:
    response = get("x" * 40_000)
    assert response.status_code == 400
    problem = body(response)
    assert len(response.get_body()) < 1_000
    assert problem["detail"].startswith("'" + "x" * 100 + "...[+39900 chars]'")


def test_a_problem_reads_as_the_webhooks_do_charset_and_absolute_instance(app_env: dict[str, str]) -> None:
    webhook = webhook_module.webhook.build().get_user_function()
    refused = webhook(func.HttpRequest("GET", "http://localhost:7071/api/events?code=secret", body=b""))
    assert refused.status_code == 405
    response = get("not-a-guid")
    assert response.headers["Content-Type"] == refused.headers["Content-Type"] == PROBLEM_JSON
    assert body(refused)["instance"] == "http://localhost:7071/api/events"
    assert body(response)["instance"] == "http://localhost:7071/api/dialogs/not-a-guid"


def test_a_huge_id_is_bounded_in_the_instance_too() -> None:
    problem = body(get("x" * 40_000))
    assert problem["instance"] == "http://localhost:7071/api/dialogs/" + "x" * 100 + "...[+39900 chars]"


def test_storage_down_is_503_with_the_webhooks_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    down = Azurite.on_free_ports().start()
    down.stop()
    monkeypatch.setenv(settings.STORAGE_CONNECTION, down.connection_string)
    settings.current.cache_clear()
    storage.current.cache_clear()
    try:
        response = get(str(uuid.uuid4()))
    finally:
        settings.current.cache_clear()
        storage.current.cache_clear()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS) == "10"
    assert response.headers["Content-Type"] == PROBLEM_JSON
