"""The webhook function against a real Azurite: which queue holds what, in which encoding, and storage outages."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest
from azure.storage.queue import QueueClient

from devtools.azurite import Azurite
from devtools.samples import sample_event
from shared import settings
from shared.events import catalog, messages
from shared.functions import webhook as webhook_module
from shared.stores import clients as storage
from shared.stores.clients import StorageClients

pytestmark = pytest.mark.azurite
Post = Callable[..., func.HttpResponse]


@pytest.fixture
def post(app_env: dict[str, str], clients: StorageClients) -> Iterator[Post]:
    """POST through the very function the host runs, with its per-process clients on the test Azurite."""
    webhook_module.reset()
    fn = webhook_module.webhook.build().get_user_function()

    def _post(body: Any, content_type: str = "application/json; charset=utf-8", **headers: str) -> func.HttpResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = func.HttpRequest(
            "POST", "http://localhost:7071/api/events", headers={"Content-Type": content_type, **headers}, body=raw
        )
        return fn(request)  # type: ignore[no-any-return]

    yield _post
    webhook_module.reset()


def raw_messages(clients: StorageClients, queue: str) -> list[Any]:
    """Peek without any decode policy: what is really on the wire."""
    return list(clients.queues.get_queue_client(queue).peek_messages(max_messages=32))


def stored_events(clients: StorageClients, queue: str) -> list[dict[str, Any]]:
    return [json.loads(base64.b64decode(m.content)) for m in raw_messages(clients, queue)]


def test_every_type_lands_base64_encoded_on_its_own_queue(post: Post, clients: StorageClients) -> None:
    sent = {row.queue: sample_event(row) for row in catalog.CATALOG}
    for event in sent.values():
        assert post(event).status_code == 200
    for queue, event in sent.items():
        assert stored_events(clients, queue) == [event]
    names = {q.name for q in clients.queues.list_queues()}
    assert set(sent) <= names
    assert catalog.UNROUTED_QUEUE not in names


def test_messages_never_expire(post: Post, clients: StorageClients) -> None:
    event = sample_event("dialogporten.dialog.created.v1")
    assert post(event).status_code == 200
    client = storage.queue_client(clients.queues, "dialogporten-dialog-created-v1")
    (message,) = client.receive_messages(visibility_timeout=1)
    assert message.expires_on is not None
    assert message.expires_on.year >= 9999 or message.expires_on > datetime.now(UTC).replace(year=2100)
    assert json.loads(message.content) == event


def test_unknown_type_is_parked_on_the_unrouted_queue(post: Post, clients: StorageClients) -> None:
    event = {**sample_event("dialogporten.dialog.created.v1"), "type": "dialogporten.dialog.something-new.v1"}
    assert post(event).status_code == 200
    assert stored_events(clients, catalog.UNROUTED_QUEUE) == [event]


def test_validation_ping_enqueues_nothing(post: Post, clients: StorageClients) -> None:
    ping = {
        "id": "694caa35-8b25-4cd7-b800-f6eeb93c56ed",
        "source": "https://platform.altinn.no/events/api/v1/subscriptions/1234",
        "type": "platform.events.validatesubscription",
        "specversion": "1.0",
    }
    assert post(ping).status_code == 200
    assert list(clients.queues.list_queues()) == []


def _event_of_size(size: int) -> tuple[dict[str, Any], str]:
    event = sample_event("dialogporten.dialog.updated.v1")
    event["data"]["padding"] = ""
    base = len(messages.serialize_event(event).encode())
    event["data"]["padding"] = "x" * (size - base)
    body = messages.serialize_event(event)
    assert len(body.encode()) == size
    return event, body


def test_largest_inline_event_fits_one_queue_message(post: Post, clients: StorageClients) -> None:
    event, _ = _event_of_size(messages.MAX_INLINE_EVENT_BYTES)
    assert post(event).status_code == 200
    (raw,) = raw_messages(clients, "dialogporten-dialog-updated-v1")
    assert len(raw.content) == messages.MAX_QUEUE_MESSAGE_BYTES
    assert json.loads(base64.b64decode(raw.content)) == event


@pytest.mark.parametrize("size", [messages.MAX_INLINE_EVENT_BYTES + 1, 100 * 1024, 1000 * 1024])
def test_large_events_are_claim_checked_in_a_blob(post: Post, clients: StorageClients, size: int) -> None:
    event, body = _event_of_size(size)
    response = post(event)
    assert response.status_code == 200, response.get_body()
    (reference,) = stored_events(clients, "dialogporten-dialog-updated-v1")
    check = reference[messages.CLAIM_CHECK_KEY]
    assert check["bytes"] == size
    assert reference["id"] == event["id"]
    assert reference["resourceinstance"] == event["resourceinstance"]
    blob = clients.blobs.get_blob_client(check["container"], check["blob"]).download_blob().readall()
    assert blob == body.encode()

    def fetch(container: str, name: str) -> bytes:
        return bytes(clients.blobs.get_blob_client(container, name).download_blob().readall())

    assert messages.decode_message(json.dumps(reference), fetch) == event


def test_over_one_mebibyte_is_413_and_nothing_stored(post: Post, clients: StorageClients) -> None:
    event, _ = _event_of_size(1024 * 1024 + 1)
    assert post(event).status_code == 413
    assert list(clients.queues.list_queues()) == []
    assert list(clients.blobs.list_containers()) == []


def test_batch_all_members_stored_or_none(post: Post, clients: StorageClients) -> None:
    good = [sample_event(row) for row in catalog.CATALOG[:3]]
    bad = [*good, {**good[0], "id": ""}]
    assert post(bad, "application/cloudevents-batch+json").status_code == 400
    assert list(clients.queues.list_queues()) == []
    assert post(good, "application/cloudevents-batch+json").status_code == 200
    for row, event in zip(catalog.CATALOG[:3], good, strict=True):
        assert stored_events(clients, row.queue) == [event]


def test_storage_down_is_503_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """Azurite stopped: a prompt, retryable 503 (within Altinn's 45 s timeout), never a 2xx."""
    down = Azurite.on_free_ports().start()
    down.stop()
    monkeypatch.setenv(settings.STORAGE_CONNECTION, down.connection_string)
    settings.current.cache_clear()
    storage.current.cache_clear()
    webhook_module.reset()
    try:
        fn = webhook_module.webhook.build().get_user_function()
        request = func.HttpRequest(
            "POST",
            "http://localhost:7071/api/events",
            headers={"Content-Type": "application/json"},
            body=json.dumps(sample_event("dialogporten.dialog.created.v1")).encode(),
        )
        started = time.monotonic()
        response = fn(request)
        elapsed = time.monotonic() - started
    finally:
        settings.current.cache_clear()
        storage.current.cache_clear()
        webhook_module.reset()
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert elapsed < 45


def test_storage_recovers_after_an_outage(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop storage, get 503; start it again on the same ports, and the same process accepts the retry."""
    instance = Azurite.on_free_ports().start()
    monkeypatch.setenv(settings.STORAGE_CONNECTION, instance.connection_string)
    settings.current.cache_clear()
    storage.current.cache_clear()
    webhook_module.reset()
    fn = webhook_module.webhook.build().get_user_function()
    event = sample_event("dialogporten.dialog.created.v1")

    def send() -> int:
        request = func.HttpRequest(
            "POST", "http://x/api/events", headers={"Content-Type": "application/json"}, body=json.dumps(event).encode()
        )
        return int(fn(request).status_code)

    try:
        assert send() == 200
        instance.stop()
        assert send() == 503
        instance.start()  # in memory: a fresh, empty account
        assert send() == 200
        client = QueueClient.from_connection_string(instance.connection_string, "dialogporten-dialog-created-v1")
        (message,) = client.peek_messages()
        assert json.loads(base64.b64decode(message.content)) == event
    finally:
        instance.stop()
        settings.current.cache_clear()
        storage.current.cache_clear()
        webhook_module.reset()
