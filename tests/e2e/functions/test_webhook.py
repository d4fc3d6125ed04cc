"""The webhook over real HTTP through the local runner: what Altinn (or anyone) sees on the wire."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from devtools.samples import sample_event
from shared.events import catalog
from shared.stores.clients import StorageClients
from tests.conftest import load_fixture
from tests.e2e.harness import Runner

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]


def send(
    runner: Runner, body: bytes, headers: dict[str, str], method: str = "POST", path: str = "/events?code=e2e"
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"{runner.base}{path}", data=body or None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status), dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), dict(error.headers.items()), error.read()


def queued(clients: StorageClients, queue: str) -> list[Any]:
    if queue not in {q.name for q in clients.queues.list_queues()}:
        return []
    return [json.loads(base64.b64decode(m.content)) for m in clients.queues.get_queue_client(queue).peek_messages(32)]


@pytest.fixture
def webhook_only(start_runner: Callable[..., Runner]) -> Runner:
    # Only the HTTP function: the queue functions would drain what these tests inspect.
    return start_runner("--functions", "webhook")


ALTINN = {"Content-Type": "application/json; charset=utf-8"}


def test_altinn_delivery_and_validation_ping(webhook_only: Runner, clients: StorageClients) -> None:
    for name in ("seed-created.json", "seed-activity-signature-provided.json", "tt02-dialog-created.json"):
        event = load_fixture(name)
        status, _, body = send(webhook_only, json.dumps(event).encode(), ALTINN)
        assert status == 200, body
        assert json.loads(body)["events"][0]["queue"] == catalog.queue_name_for(event["type"])
    assert len(queued(clients, "dialogporten-dialog-created-v1")) == 2
    assert queued(clients, "dialogporten-dialog-activity-signature-provided-v1") == [
        load_fixture("seed-activity-signature-provided.json")
    ]
    status, _, _ = send(webhook_only, json.dumps(load_fixture("validate-subscription.json")).encode(), ALTINN)
    assert status == 200
    assert {q.name for q in clients.queues.list_queues()} == {
        "dialogporten-dialog-created-v1",
        "dialogporten-dialog-activity-signature-provided-v1",
    }


def test_every_content_mode_over_http(webhook_only: Runner, clients: StorageClients) -> None:
    structured = sample_event("dialogporten.dialog.updated.v1")
    assert (
        send(webhook_only, json.dumps(structured).encode(), {"Content-Type": "application/cloudevents+json"})[0] == 200
    )

    batch = [sample_event("dialogporten.dialog.seen.v1"), sample_event("dialogporten.dialog.deleted.v1")]
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    assert send(webhook_only, json.dumps(batch).encode(), headers)[0] == 200

    binary = sample_event("dialogporten.dialog.restored.v1")
    attributes: dict[str, Any] = {k: v for k, v in binary.items() if k not in ("data", "time")}
    message = ce_http.to_binary(SdkEvent(attributes={**attributes, "datacontenttype": "application/json"},
                                         data=binary["data"]), JSONFormat())  # fmt: skip
    status, _, body = send(webhook_only, message.body, dict(message.headers))
    assert status == 200, body

    assert queued(clients, "dialogporten-dialog-updated-v1") == [structured]
    assert queued(clients, "dialogporten-dialog-seen-v1") == [batch[0]]
    assert queued(clients, "dialogporten-dialog-deleted-v1") == [batch[1]]
    (restored,) = queued(clients, "dialogporten-dialog-restored-v1")
    assert restored["id"] == binary["id"]
    assert restored["data"] == binary["data"]


@pytest.mark.parametrize(
    ("method", "body", "headers", "status"),
    [
        ("POST", b"{not json", ALTINN, 400),
        ("POST", b"", ALTINN, 400),
        ("POST", json.dumps({"specversion": "1.0", "id": "x", "type": "t", "source": "s", "time": "2018-04-05T18:31Z"})
         .encode(), ALTINN, 400),
        ("POST", b"x" * (1024 * 1024 + 1), ALTINN, 413),
        ("POST", b"hello", {"Content-Type": "text/plain"}, 415),
        ("PUT", b"{}", ALTINN, 405),
        ("GET", b"", {}, 405),
    ],
)  # fmt: skip
def test_refusals_over_http(
    webhook_only: Runner, clients: StorageClients, method: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    got, response_headers, response_body = send(webhook_only, body, headers, method)
    assert got == status
    assert response_headers["Content-Type"].startswith("application/problem+json")
    problem = json.loads(response_body)
    assert problem["status"] == status
    assert "code=" not in json.dumps(problem)  # the function key is never echoed back
    if status == 405:
        assert response_headers["Allow"] == "POST, OPTIONS"
    assert list(clients.queues.list_queues()) == []


def test_options_handshake_over_http(webhook_only: Runner) -> None:
    status, headers, _ = send(webhook_only, b"", {"WebHook-Request-Origin": "events.altinn.example"}, "OPTIONS")
    assert status == 200
    assert headers["WebHook-Allowed-Origin"] == "events.altinn.example"
    assert "POST" in headers["Allow"]
