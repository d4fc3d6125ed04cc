"""Parked events (types the catalog did not know) stay, byte for byte, until an operator re-routes or discards them.

They are parked by the webhook as it runs in production; an event of a type the
catalog knows now is parked here as an older deployment, without that row,
parked it (the sink's own functions write it). Re-routed messages are then
processed by the very queue functions the host runs.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueServiceClient

from devtools.azurite import Azurite
from devtools.cli import parking as parked
from devtools.samples import sample_event
from shared import settings
from shared.events import catalog, messages
from shared.functions import webhook as webhook_module
from shared.stores import clients as storage
from shared.stores.clients import StorageClients
from tests.cli_support import dpctl
from tests.conftest import app_functions

pytestmark = pytest.mark.azurite

UNKNOWN = "dialogporten.dialog.archived.v1"
FUNCTIONS = {f.get_function_name(): f.get_user_function() for f in app_functions()}


@pytest.fixture
def service(app_env: dict[str, str], clients: StorageClients) -> Iterator[QueueServiceClient]:
    settings.current.cache_clear()
    webhook_module.reset()
    yield QueueServiceClient.from_connection_string(app_env[settings.STORAGE_CONNECTION])
    webhook_module.reset()


def post(event: dict[str, Any]) -> func.HttpResponse:
    fn = webhook_module.webhook.build().get_user_function()
    request = func.HttpRequest(
        "POST",
        "http://localhost:7071/api/events",
        headers={"Content-Type": "application/json; charset=utf-8"},
        body=json.dumps(event).encode(),
    )
    return fn(request)  # type: ignore[no-any-return]


def park_as_an_older_deployment(clients: StorageClients, event: dict[str, Any], *, big: bool = False) -> str:
    """Put ``event`` on the parking queue as the sink does (a claim check when ``big``); returns the raw body."""
    body = messages.serialize_event(event)
    if big:
        name = messages.claim_check_blob_name(catalog.UNROUTED_QUEUE)
        container = clients.blobs.get_container_client(messages.CLAIM_CHECK_CONTAINER)
        if not container.exists():
            container.create_container()
        container.upload_blob(name, body.encode("utf-8"))
        body = messages.claim_check_message(event, name, len(body.encode("utf-8")))
    storage.send_creating_queue(clients.queue(catalog.UNROUTED_QUEUE), body, time_to_live=storage.NEVER_EXPIRE)
    return base64.b64encode(body.encode("utf-8")).decode("ascii")


def raw(service: QueueServiceClient, queue: str) -> list[str]:
    try:
        return sorted(m.content for m in service.get_queue_client(queue).peek_messages(max_messages=32))
    except Exception:
        return []


def test_an_unknown_type_is_parked_untouched_logged_for_the_alert_and_rerouted_once_known(
    service: QueueServiceClient, clients: StorageClients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="dialogporten")
    unknown = sample_event("dialogporten.dialog.created.v1") | {"type": UNKNOWN}
    assert post(unknown).status_code == 200
    assert any(r.getMessage().startswith('dialogporten.ingest {"outcome":"parked"') for r in caplog.records)

    seen_type = "dialogporten.dialog.seen.v1"
    info_type = "dialogporten.dialog.activity.information.v1"
    small = sample_event(seen_type)
    big = sample_event(info_type)
    big["data"]["bigField"] = "x" * 70_000
    small_raw = park_as_an_older_deployment(clients, small)
    big_raw = park_as_an_older_deployment(clients, big, big=True)
    before = raw(service, catalog.UNROUTED_QUEUE)
    assert len(before) == 3

    listed = {p.event_type: p for p in parked.list_parked(service)}
    assert set(listed) == {UNKNOWN, seen_type, info_type}
    assert listed[UNKNOWN].route_to is None
    assert listed[UNKNOWN].event_id == unknown["id"]
    assert listed[seen_type].route_to == catalog.BY_TYPE[seen_type].queue
    assert listed[info_type].claim_check
    assert raw(service, catalog.UNROUTED_QUEUE) == before  # listing changes nothing

    dry = parked.reroute(service, dry_run=True)
    assert sorted(m.event_type or "" for m in dry) == sorted([seen_type, info_type])
    assert all(m.dry_run for m in dry)
    assert raw(service, catalog.UNROUTED_QUEUE) == before

    moved = parked.reroute(service)
    assert {(m.event_type, m.to) for m in moved} == {
        (seen_type, catalog.BY_TYPE[seen_type].queue),
        (info_type, catalog.BY_TYPE[info_type].queue),
    }
    assert raw(service, catalog.BY_TYPE[seen_type].queue) == [small_raw]  # byte for byte
    assert raw(service, catalog.BY_TYPE[info_type].queue) == [big_raw]
    [still] = raw(service, catalog.UNROUTED_QUEUE)
    assert json.loads(base64.b64decode(still)) == unknown
    for message in service.get_queue_client(catalog.BY_TYPE[seen_type].queue).peek_messages():
        assert message.expires_on is not None
        assert message.expires_on.year == 9999

    # The moved messages are processed as if the webhook had routed them (the claim check resolves).
    for event_type, body in ((seen_type, small_raw), (info_type, big_raw)):
        delivery = QueueMessage(id=str(uuid.uuid4()), body=base64.b64decode(body), dequeue_count=1)  # type: ignore[no-untyped-call]
        FUNCTIONS[catalog.BY_TYPE[event_type].function_name](delivery)
    handled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dialogporten.process ")]
    assert [json.loads(x.partition(" ")[2])["outcome"] for x in handled] == ["handled", "handled"]


def test_reroute_honours_its_limit_and_discard_deletes_only_what_it_names(
    service: QueueServiceClient, clients: StorageClients
) -> None:
    for _ in range(3):
        park_as_an_older_deployment(clients, sample_event("dialogporten.dialog.seen.v1"))
    assert len(parked.reroute(service, limit=1)) == 1
    remaining = parked.list_parked(service)
    assert len(remaining) == 2
    victim = remaining[0].message_id
    assert [p.message_id for p in parked.discard(service, {victim}, dry_run=True)] == [victim]
    assert len(parked.list_parked(service)) == 2
    assert [p.message_id for p in parked.discard(service, {victim})] == [victim]
    assert [p.message_id for p in parked.list_parked(service)] == [remaining[1].message_id]


def test_a_body_that_is_not_base64_json_is_listed_as_unreadable_and_never_moved(
    service: QueueServiceClient, clients: StorageClients
) -> None:
    client = service.get_queue_client(catalog.UNROUTED_QUEUE)
    client.create_queue()
    client.send_message("not base64 {", time_to_live=-1)
    [item] = parked.list_parked(service)
    assert (item.readable, item.route_to) == (False, None)
    assert parked.reroute(service) == []
    assert raw(service, catalog.UNROUTED_QUEUE) == ["not base64 {"]


def test_the_command_line(service: QueueServiceClient, clients: StorageClients, azurite: Azurite) -> None:
    env = {"AzureWebJobsStorage": azurite.connection_string}
    park_as_an_older_deployment(clients, sample_event("dialogporten.dialog.seen.v1"))
    listed = dpctl("parked", "list", env=env)
    assert (listed.code, listed.out.splitlines()[-1]) == (0, "1 parked, 1 routable now")
    [row] = dpctl("parked", "list", "--json", env=env).json()
    assert (row["eventType"], row["routeTo"]) == ("dialogporten.dialog.seen.v1", "dialogporten-dialog-seen-v1")
    dry = dpctl("parked", "reroute", "--dry-run", env=env)
    assert (dry.code, dry.out.splitlines()[-1]) == (0, "would move 1 message(s)")
    assert len(parked.list_parked(service)) == 1
    moved = dpctl("parked", "reroute", env=env)
    assert (moved.code, moved.out.splitlines()[-1]) == (0, "moved 1 message(s)")
    assert parked.list_parked(service) == []
    missing = dpctl("parked", "discard", "no-such-message", env=env)
    assert missing.code == 1
    assert "no parked message with id no-such-message" in missing.err


def test_python_m_devtools_parked_is_the_same_command(
    service: QueueServiceClient, clients: StorageClients, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    park_as_an_older_deployment(clients, sample_event("dialogporten.dialog.seen.v1"))
    from devtools import parked as entry_point

    assert entry_point.main(["--settings", "/nonexistent/local.settings.json", "reroute"]) == 0
    assert parked.list_parked(service) == []


def test_an_empty_account_has_nothing_parked(service: QueueServiceClient) -> None:
    assert parked.list_parked(service) == []
    assert parked.reroute(service) == []


def test_two_published_examples_that_share_an_id_are_both_parked_and_listed(service: QueueServiceClient) -> None:
    # Altinn's Correspondence and Broker event pages (docs.altinn.studio, .../developer-guides/events)
    # publish examples with one id, resourceinstance and time, from two sources.
    common = {
        "specversion": "1.0",
        "id": "1faa107f-3c0a-4fa6-9fce-7cee8838e258",
        "resourceinstance": "da4ceacc-ad44-4e54-99b6-b58e3c13c785",
        "time": "2024-04-19T07:22:19.438039Z",
        "subject": "urn:altinn:organization:identifier-no:123456789",
    }
    correspondence = common | {
        "type": "no.altinn.correspondence.correspondencepublished",
        "source": "https://platform.tt02.altinn.no/correspondence/api/v1/correspondence",
        "resource": "urn:altinn:resource:altinn-correspondence-test-resource-1",
    }
    broker = common | {
        "type": "no.altinn.broker.Published",
        "source": "https://platform.tt02.altinn.no/broker/api/v1/filetransfer",
        "resource": "urn:altinn:resource:altinn-broker-test-resource-1",
    }
    assert post(correspondence).status_code == 200
    assert post(broker).status_code == 200
    listed = parked.list_parked(service)
    assert sorted((p.event_id, p.source) for p in listed) == sorted(
        (e["id"], e["source"]) for e in (correspondence, broker)
    )
    assert all(p.route_to is None for p in listed)
