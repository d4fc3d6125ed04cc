"""Hostile input against the real sink on a real Azurite: no 5xx while storage is up, no debris when refused."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from devtools.azurite import Azurite, free_port
from devtools.samples import sample_event
from shared import settings
from shared.events import catalog, cloudevent, messages
from shared.events.cloudevent import CloudEvent
from shared.functions import webhook as webhook_module
from shared.intake import plan as ingest
from shared.intake.plan import Policy, WebhookRequest
from shared.stores import clients as storage
from shared.stores.clients import StorageClients
from shared.stores.devstorage import azurite_connection_string
from shared.stores.sink import QueueSink
from tests.unit.intake.test_plan_properties import CONTENT_TYPES, HEADER_NAMES, bodies, mutated_events

pytestmark = pytest.mark.azurite
Post = Callable[..., func.HttpResponse]
BATCH = "application/cloudevents-batch+json"


@pytest.fixture
def post(app_env: dict[str, str], clients: StorageClients) -> Iterator[Post]:
    webhook_module.reset()
    fn = webhook_module.webhook.build().get_user_function()

    def _post(body: Any, content_type: str = "application/json; charset=utf-8") -> func.HttpResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = func.HttpRequest(
            "POST", "http://localhost:7071/api/events", headers={"Content-Type": content_type}, body=raw
        )
        return fn(request)  # type: ignore[no-any-return]

    yield _post
    webhook_module.reset()


def stored(clients: StorageClients) -> tuple[int, int]:
    """(messages on every queue, claim-check blobs): everything a request can leave behind."""
    count = 0
    for queue in clients.queues.list_queues():
        count += clients.queues.get_queue_client(queue.name).get_queue_properties().approximate_message_count or 0
    container = clients.blobs.get_container_client(messages.CLAIM_CHECK_CONTAINER)
    blobs = len(list(container.list_blobs())) if container.exists() else 0
    return count, blobs


def _large(event_type: str = "dialogporten.dialog.updated.v1", size: int = 60_000) -> dict[str, Any]:
    event = sample_event(event_type)
    event["data"]["padding"] = "x" * size
    return event


# ----------------------------------------------------------------------------- the sink


def test_a_reference_the_queue_refuses_as_too_large_is_413_and_its_blob_is_deleted(clients: StorageClients) -> None:
    """Built past validation (a 70,000-character id): Azurite answers 413 for the claim check."""
    event = {**_large(), "id": "i" * 70_000}
    with pytest.raises(ingest.EventTooLarge):
        QueueSink(clients).put("dialogporten-dialog-updated-v1", messages.serialize_event(event), CloudEvent(event))
    assert stored(clients) == (0, 0)


def test_a_blob_whose_reference_could_not_be_sent_is_deleted(clients: StorageClients) -> None:
    event = _large()
    with pytest.raises(ingest.StorageUnavailable):  # the queue service refuses the name: not the sender's fault
        QueueSink(clients).put("Not_A_Queue", messages.serialize_event(event), CloudEvent(event))
    assert stored(clients) == (0, 0)


def test_a_blob_is_kept_when_the_queue_send_has_no_answer(azurite: Azurite, clients: StorageClients) -> None:
    """Without an answer the reference may have landed: deleting its blob could lose the event."""
    silent = azurite_connection_string(blob=azurite.blob_port, queue=free_port(), table=azurite.table_port)
    half = storage.build(settings.load({settings.STORAGE_CONNECTION: silent}))
    event = _large()
    with pytest.raises(ingest.StorageUnavailable):
        QueueSink(half).put("dialogporten-dialog-updated-v1", messages.serialize_event(event), CloudEvent(event))
    assert stored(clients) == (0, 1)


# ----------------------------------------------------------------------------- the webhook on Azurite


@pytest.mark.parametrize("name", ["id", "type", "source", "subject", "time"])
def test_a_70000_character_attribute_is_400_and_leaves_nothing(post: Post, clients: StorageClients, name: str) -> None:
    event = {**_large(), name: "a" * 70_000}
    response = post(event)
    assert response.status_code == 400
    assert len(response.get_body()) < 2_000
    assert stored(clients) == (0, 0)


def test_a_batch_with_a_non_finite_member_is_refused_before_any_send(post: Post, clients: StorageClients) -> None:
    good = json.dumps(_large()).encode()
    response = post(b"[" + good + b',{"specversion":"1.0","id":"1","source":"s","type":"t","data":1e999}]', BATCH)
    assert response.status_code == 400
    assert stored(clients) == (0, 0)


def test_a_full_batch_is_accepted_well_inside_altinns_timeout(post: Post, clients: StorageClients) -> None:
    """The figure of record: the time to accept a batch at the cap on Azurite (printed, never asserted)."""
    rows = catalog.CATALOG
    batch = [sample_event(rows[i % len(rows)]) for i in range(ingest.MAX_BATCH_EVENTS)]
    post(batch[:1], BATCH)  # create the queues and warm the clients: the figure is for a steady state
    post(batch[1 : len(rows) + 1], BATCH)
    before = stored(clients)
    started = time.perf_counter()
    response = post(batch, BATCH)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.get_body()
    assert json.loads(response.get_body())["accepted"] == ingest.MAX_BATCH_EVENTS
    assert stored(clients)[0] == before[0] + ingest.MAX_BATCH_EVENTS
    per_event = elapsed * 1000 / ingest.MAX_BATCH_EVENTS
    print(f"\naccepted a batch of {ingest.MAX_BATCH_EVENTS} events on Azurite in {elapsed * 1000:.0f} ms "
          f"({per_event:.1f} ms per event, {45 / elapsed:.0f}x inside 45 s)")  # fmt: skip


# ----------------------------------------------------------------------------- the property


def _hostile_event(draw: st.DrawFn) -> bytes:
    event = draw(mutated_events())
    kind = draw(st.sampled_from(["non-finite", "surrogate", "newline", "huge", "future", "large", "none"]))
    text = json.dumps(event)
    if kind == "non-finite":
        return text[:-1].encode() + b',"num":1e999}'
    if kind == "surrogate":
        return text[:-1].encode() + b',"sur":"\\udc00"}'
    if kind == "newline":
        name = draw(st.sampled_from(["id", "source", "time", "type"]))
        event[name] = (event[name] if isinstance(event.get(name), str) else "x") + "\n"
    elif kind == "huge":
        event[draw(st.sampled_from(["id", "source", "subject", "ext"]))] = "h" * 70_000
    elif kind == "future":
        event["time"] = "9999-12-31T23:59:59.9999999Z"
    elif kind == "large" and isinstance(event.get("data"), dict):
        event["data"]["padding"] = "x" * 60_000  # a claim check: a blob first
    return json.dumps(event).encode()


hostile_events = st.composite(_hostile_event)()
hostile_bodies = st.one_of(
    bodies,
    hostile_events,
    st.lists(hostile_events, min_size=1, max_size=3).map(lambda members: b"[" + b",".join(members) + b"]"),
)


@hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    content_type=CONTENT_TYPES,
    extra=st.dictionaries(HEADER_NAMES, st.text(max_size=40), max_size=3),
    body=hostile_bodies,
)
def test_never_a_5xx_while_storage_is_up_and_nothing_left_when_refused(
    clients: StorageClients, content_type: str, extra: dict[str, str], body: bytes
) -> None:
    headers = {**({"content-type": content_type} if content_type else {}), **{k.lower(): v for k, v in extra.items()}}
    before = stored(clients)
    response = ingest.handle(WebhookRequest("POST", headers, body), QueueSink(clients), Policy())
    after = stored(clients)
    assert response.status < 500, response.body
    if response.status >= 400:
        assert after == before, response.body
        assert json.loads(response.body)["status"] == response.status
    else:
        sent = [e for e in json.loads(response.body)["events"] if e["queue"] is not None]
        assert after[0] == before[0] + len(sent)


def test_the_property_reaches_both_claim_checks_and_refusals(clients: StorageClients) -> None:
    """The property above is only worth something if large accepted events do make blobs."""
    body = json.dumps(_large()).encode()
    response = ingest.handle(WebhookRequest("POST", {"content-type": "application/json"}, body), QueueSink(clients),
                             Policy())  # fmt: skip
    assert response.status == 200
    assert stored(clients) == (1, 1)
    assert cloudevent.MAX_ATTRIBUTE_CHARS < 70_000
