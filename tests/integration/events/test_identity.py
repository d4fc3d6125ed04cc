"""An event is ``source`` + ``id`` (CloudEvents 1.0), not ``id`` alone.

The Dialogporten docs' two published examples (``tests/fixtures/events/seed-*.json``,
verbatim) share the id ``91f2388f-…``: a dialog.created and a signature-provided
activity from different sources. Both must run. Records and markers an older
version wrote, keyed on the id alone, must still stop a real duplicate after
an upgrade: those are written here exactly as that version wrote them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.functions.queue import QueueMessage

from shared import settings
from shared.events.catalog import BY_TYPE
from shared.events.messages import serialize_event
from shared.events.models import DialogportenEvent, parse_event
from shared.stores import idempotency
from shared.stores.clients import StorageClients
from shared.stores.dialogs import DIALOGS_TABLE, DialogStore
from shared.stores.idempotency import IDEMPOTENCY_TABLE, IdempotencyStore, event_key
from shared.stores.tables import record_key
from tests.conftest import app_functions, app_handlers, load_fixture

pytestmark = pytest.mark.azurite

FUNCTIONS = {f.get_function_name(): f.get_user_function() for f in app_functions()}


def deliver(obj: dict[str, Any]) -> None:
    body = serialize_event(obj).encode("utf-8")
    message = QueueMessage(id=str(uuid.uuid4()), body=body, dequeue_count=1)  # type: ignore[no-untyped-call]
    FUNCTIONS[BY_TYPE[obj["type"]].function_name](message)


@pytest.fixture
def seen(app_env: dict[str, str], clients: StorageClients) -> Iterator[list[DialogportenEvent]]:
    idempotency.forget_tables()
    settings.current.cache_clear()
    events: list[DialogportenEvent] = []
    record = events.append  # one bound method: each attribute access makes a new one
    app_handlers().add(record, DialogportenEvent)
    yield events
    app_handlers().remove(record)


def test_the_published_examples_that_share_an_id_are_two_events(
    seen: list[DialogportenEvent], clients: StorageClients
) -> None:
    created, signed = load_fixture("seed-created.json"), load_fixture("seed-activity-signature-provided.json")
    assert created["id"] == signed["id"]
    assert created["source"] != signed["source"]
    deliver(created)
    deliver(signed)
    assert [e.type for e in seen] == [created["type"], signed["type"]]
    state = DialogStore(clients.tables).get("f4e6df3c-7434-44c3-875e-8dca1cdf0b20")
    assert state is not None
    assert (state.events_applied, state.activity_count) == (2, 1)
    assert state.to_json()["lastActivity"]["id"] == "21241c7e-819f-462b-b8a4-d5d32352311a"
    deliver(signed)  # a real duplicate (same source and id) is still a duplicate
    assert len(seen) == 2


def test_the_key_is_a_digest_of_both_attributes_and_unambiguous() -> None:
    assert event_key("s", "1") != event_key("s1", "")
    assert event_key("a", "b") != event_key("b", "a")
    assert event_key("x" * 70_000, "\n") == event_key("x" * 70_000, "\n")
    assert len(event_key("x" * 70_000, "y")) == 3 + 64


def _legacy_record(
    clients: StorageClients, obj: dict[str, Any], status: str = "COMPLETED", kept: timedelta = timedelta(days=7)
) -> None:
    """The record the id-keyed version wrote for a handled event (its fields, as it wrote them)."""
    now = datetime.now(UTC)
    event = parse_event(obj)
    clients.tables.create_table_if_not_exists(IDEMPOTENCY_TABLE)
    clients.tables.get_table_client(IDEMPOTENCY_TABLE).create_entity(
        {
            "PartitionKey": record_key(event.id),
            "RowKey": "",
            "event_id": event.id,
            "status": status,
            "expires_at": now + kept,
            "claimed_at": now,
            "owner": uuid.uuid4().hex,
            "event_type": event.type,
            "dialog_id": event.dialog_id,
            "completed_at": now,
        }
    )


def _legacy_marker(clients: StorageClients, obj: dict[str, Any]) -> None:
    """The marker the id-keyed version wrote in the dialog's partition."""
    event = parse_event(obj)
    clients.tables.create_table_if_not_exists(DIALOGS_TABLE)
    clients.tables.get_table_client(DIALOGS_TABLE).create_entity(
        {
            "PartitionKey": event.dialog_id,
            "RowKey": "event|" + record_key(event.id),
            "event_id": event.id,
            "event_type": event.type,
            "family": "dialog",
            "time": event.time_key,
            "applied_at": datetime.now(UTC),
        }
    )


def test_a_duplicate_of_an_event_handled_before_the_upgrade_does_not_run_again(
    seen: list[DialogportenEvent], clients: StorageClients
) -> None:
    created = load_fixture("seed-created.json")
    _legacy_record(clients, created)
    deliver(created)
    assert seen == []
    # ...while the other event that shares the id is not mistaken for it.
    deliver(load_fixture("seed-activity-signature-provided.json"))
    assert [e.type for e in seen] == ["dialogporten.dialog.activity.signature-provided.v1"]


def test_an_event_in_progress_before_the_upgrade_is_not_run_alongside(
    seen: list[DialogportenEvent], clients: StorageClients
) -> None:
    created = load_fixture("seed-created.json")
    _legacy_record(clients, created, status="INPROGRESS")
    deliver(created)  # put back on its queue for later, not run
    assert seen == []


def test_a_dialog_marker_written_before_the_upgrade_still_counts_once(clients: StorageClients) -> None:
    idempotency.forget_tables()
    created, signed = load_fixture("seed-created.json"), load_fixture("seed-activity-signature-provided.json")
    _legacy_marker(clients, created)
    store = DialogStore(clients.tables)
    # The insert cannot see an id-keyed marker; the fold leaves the event out (its state row counts it).
    store.record(parse_event(created))
    assert store.record(parse_event(signed)) is True  # same id, another event
    assert store.record(parse_event(signed)) is False
    state = store.get(created["resourceinstance"])
    assert state is not None
    assert (state.events_applied, state.activity_count, state.created_at) == (1, 1, None)


def test_the_store_keeps_the_event_attributes_on_the_record(clients: StorageClients) -> None:
    idempotency.forget_tables()
    store = IdempotencyStore(clients.tables, claim_timeout_seconds=60, retention_seconds=60)
    key = event_key("https://example.test/a", "1")
    store.claim(key, event_id="1", source="https://example.test/a", event_type="t", dialog_id=None)
    entity = clients.tables.get_table_client(IDEMPOTENCY_TABLE).get_entity(key, "")
    assert (entity["event_id"], entity["source"], entity["idempotency_key"]) == ("1", "https://example.test/a", key)


def test_the_legacy_look_up_stops_once_no_legacy_record_can_be_live(clients: StorageClients) -> None:
    idempotency.forget_tables()
    created = load_fixture("seed-created.json")
    # Kept far longer than any older version kept a record: only the look-up's own end lets it through.
    _legacy_record(clients, created, kept=timedelta(days=60))
    info = {"event_type": created["type"], "dialog_id": created["resourceinstance"]}
    key = event_key(created["source"], created["id"])
    now = IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=7 * 86400)
    with pytest.raises(idempotency.AlreadyCompleted):
        now.claim(key, legacy_key=created["id"], **info)
    since = now.keyed_since()
    # Nine days on, every record an older version wrote has expired: no look-up, no refusal.
    later = IdempotencyStore(
        clients.tables,
        claim_timeout_seconds=600,
        retention_seconds=7 * 86400,
        clock=lambda: since + timedelta(days=9),
    )
    idempotency.forget_tables()
    assert later.keyed_since() == since  # recorded once, in the table
    assert not later.claim(key, legacy_key=created["id"], **info).taken_over
    later.purge_expired()
    idempotency.forget_tables()
    assert later.keyed_since() == since  # housekeeping never purges the row


class Sent:
    """Every HTTP request any client sends, counted where it leaves for the network."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lines: list[str] = []
        original = requests.Session.send

        def send(session: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
            self.lines.append(f"{request.method} {request.path_url}")
            return original(session, request, **kwargs)

        monkeypatch.setattr(requests.Session, "send", send)

    def to_idempotency_table(self) -> list[str]:
        return [line for line in self.lines if f"/{IDEMPOTENCY_TABLE}" in line.split("?")[0]]

    def reads_of(self, record: str) -> list[str]:
        return [line for line in self.to_idempotency_table() if line.startswith("GET") and record in line]


def test_an_install_that_never_held_an_id_keyed_record_reads_none(
    seen: list[DialogportenEvent], clients: StorageClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh install: after the process's first look, no event touches the idempotency table."""
    sent = Sent(monkeypatch)
    dialog_id = str(uuid.uuid4())
    first = load_fixture("seed-created.json") | {"resourceinstance": dialog_id}
    deliver(first)
    sent.lines.clear()
    for n in range(3):
        deliver(first | {"id": str(uuid.uuid4()), "time": f"2026-03-16T11:00:0{n}Z"})
    assert len(seen) == 4
    assert sent.to_idempotency_table() == []


def test_the_id_keyed_look_up_runs_exactly_while_such_a_record_can_be_live(
    clients: StorageClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked once per process (and again each minute), not per event: none at first, so no read; one that an
    instance of the older version writes during the deployment's overlap is found at the next look; once none
    is live and no such instance can be left (a day on), the question is closed for good."""
    idempotency.forget_tables()
    now = [datetime.now(UTC)]
    store = IdempotencyStore(
        clients.tables, claim_timeout_seconds=600, retention_seconds=7 * 86400, clock=lambda: now[0]
    )
    sent = Sent(monkeypatch)
    created, fresh = load_fixture("seed-created.json"), load_fixture("seed-activity-signature-provided.json")
    fresh["id"] = str(uuid.uuid4())

    def claim(obj: dict[str, Any]) -> None:
        info = {"event_type": obj["type"], "dialog_id": obj["resourceinstance"]}
        store.claim(event_key(obj["source"], obj["id"]), legacy_key=obj["id"], **info)

    claim(fresh)
    assert sent.reads_of(record_key(fresh["id"])) == []  # none anywhere: not looked up
    _legacy_record(clients, created)  # an old instance, still running, handles the event
    now[0] += idempotency.ID_KEYED_RECHECK
    with pytest.raises(idempotency.AlreadyCompleted):
        claim(created)  # its duplicate, a minute later, on this version: refused
    assert len(sent.reads_of(record_key(created["id"]))) == 1
    now[0] += timedelta(days=7, minutes=1)  # that record expired; a day has passed: no old instance is left
    later = load_fixture("seed-created.json") | {"id": str(uuid.uuid4())}
    claim(later)
    sent.lines.clear()
    for _ in range(3):
        now[0] += 2 * idempotency.ID_KEYED_RECHECK
        claim(later | {"id": str(uuid.uuid4())})
    assert [line for line in sent.to_idempotency_table() if line.startswith("GET")] == []
