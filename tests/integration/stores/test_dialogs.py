"""The dialog state as append-only event rows: one insert per event, no claim unless a handler has effects,
and rows an older version wrote (a folded state row beside a marker per event) keep counting."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from devtools.samples import sample_event
from shared import settings
from shared.events.catalog import BY_TYPE
from shared.events.messages import serialize_event
from shared.events.models import DialogportenEvent, parse_event
from shared.processing.pipeline import process_message
from shared.stores import idempotency
from shared.stores.clients import StorageClients
from shared.stores.dialogs import DIALOGS_TABLE, DialogStore, fold, marker_key
from shared.stores.idempotency import IDEMPOTENCY_TABLE, event_key
from tests.conftest import app_handlers

pytestmark = pytest.mark.azurite


def events(dialog_id: str, *kinds: str) -> list[DialogportenEvent]:
    return [
        parse_event(
            sample_event(f"dialogporten.dialog.{kind}.v1", dialog_id=dialog_id, time=f"2026-03-16T11:00:{i:02d}Z")
        )
        for i, kind in enumerate(kinds, start=1)
    ]


def write_previous_layout(clients: StorageClients, applied: list[DialogportenEvent]) -> None:
    """What the previous version left for ``applied``: the folded state row and a marker per event."""
    clients.tables.create_table_if_not_exists(DIALOGS_TABLE)
    table = clients.tables.get_table_client(DIALOGS_TABLE)
    state = fold(applied)
    assert state is not None
    table.create_entity(state.to_entity())
    for event in applied:
        table.create_entity(
            {
                "PartitionKey": event.dialog_id,
                "RowKey": "event|" + event_key(event.source, event.id),
                "event_id": event.id,
                "source": event.source,
                "event_type": event.type,
                "family": BY_TYPE[event.type].family.value,
                "time": event.time_key,
                "applied_at": datetime.now(UTC),
            }
        )


def test_rows_of_the_previous_layout_keep_counting_without_conversion(clients: StorageClients) -> None:
    idempotency.forget_tables()
    dialog_id = str(uuid.uuid4())
    first, second, third = events(dialog_id, "created", "activity.information", "transmission.created")
    write_previous_layout(clients, [first, second])
    store = DialogStore(clients.tables)
    assert store.record(second) is False  # applied by the previous version: its marker refuses the insert
    assert store.record(third) is True
    assert store.get(dialog_id) == fold([first, second, third])


def test_the_state_folded_from_rows_is_the_state_of_the_events_in_any_order(clients: StorageClients) -> None:
    idempotency.forget_tables()
    dialog_id = str(uuid.uuid4())
    lifecycle = events(dialog_id, "created", "updated", "activity.information", "seen", "deleted", "restored")
    store = DialogStore(clients.tables)
    for event in reversed(lifecycle):
        assert store.record(event) is True
    assert store.get(dialog_id) == fold(lifecycle)
    rows = list(clients.tables.get_table_client(DIALOGS_TABLE).query_entities(f"PartitionKey eq '{dialog_id}'"))
    assert len(rows) == len(lifecycle)  # one row per event, nothing rewritten


class Requests:
    """Every HTTP request any client sends, counted where it leaves for the network."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[str] = []
        original = requests.Session.send

        def send(session: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
            self.sent.append(f"{request.method} {request.path_url.split('?')[0]}")
            return original(session, request, **kwargs)

        monkeypatch.setattr(requests.Session, "send", send)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Requests:
    return Requests(monkeypatch)


@pytest.fixture
def process(app_env: dict[str, str], clients: StorageClients) -> Callable[[DialogportenEvent], str]:
    idempotency.forget_tables()
    settings.current.cache_clear()
    warm = parse_event(sample_event("dialogporten.dialog.created.v1"))
    DialogStore(clients.tables).record(warm)  # tables exist, as in Azure (Bicep creates them)
    clients.tables.create_table_if_not_exists(IDEMPOTENCY_TABLE)

    def run(event: DialogportenEvent) -> str:
        body = serialize_event(event.model_dump(mode="json", by_alias=True))
        row = BY_TYPE[event.type]
        return process_message(
            body, queue=row.queue, dequeue_count=1, clients=clients, cfg=settings.current(), registry=app_handlers()
        )

    return run


def claim_record(clients: StorageClients, event: DialogportenEvent) -> dict[str, Any] | None:
    """The event's claim: on its own row in its dialog (the columns a claim writes), None when unclaimed."""
    row = clients.tables.get_table_client(DIALOGS_TABLE).get_entity(event.dialog_id, marker_key(event))
    claim = {k: row[k] for k in ("status", "owner", "expires_at") if k in row}
    return claim or None


def test_the_default_handlers_alone_cost_one_insert_and_no_claim(
    process: Callable[[DialogportenEvent], str], clients: StorageClients, sent: Requests
) -> None:
    [event] = events(str(uuid.uuid4()), "activity.information")
    sent.sent.clear()
    assert process(event) == "handled"
    assert sent.sent == [f"POST /devstoreaccount1/{DIALOGS_TABLE}"]
    assert claim_record(clients, event) is None
    assert process(event) == "duplicate"
    assert process(event.model_copy(update={"id": str(uuid.uuid4())})) == "handled"  # another event of the dialog
    state = DialogStore(clients.tables).get(event.dialog_id)
    assert state is not None
    assert state.events_applied == 2


def test_a_handler_with_effects_is_claimed_and_runs_once(
    process: Callable[[DialogportenEvent], str], clients: StorageClients
) -> None:
    seen: list[DialogportenEvent] = []
    effect = seen.append  # one bound method: each attribute access makes a new one
    app_handlers().add(effect, DialogportenEvent)  # effects unless declared otherwise
    try:
        [event] = events(str(uuid.uuid4()), "activity.information")
        assert process(event) == "handled"
        assert process(event) == "duplicate"
    finally:
        app_handlers().remove(effect)
    assert seen == [event]
    record = claim_record(clients, event)
    assert record is not None
    assert record["status"] == "COMPLETED"


def test_a_handler_declared_free_of_effects_runs_unclaimed_on_every_delivery(
    process: Callable[[DialogportenEvent], str], clients: StorageClients
) -> None:
    seen: list[DialogportenEvent] = []
    pure = seen.append
    app_handlers().add(pure, DialogportenEvent, effects=False)
    try:
        [event] = events(str(uuid.uuid4()), "activity.information")
        assert process(event) == "handled"
        assert process(event) == "duplicate"  # the dialog state found it applied before
    finally:
        app_handlers().remove(pure)
    assert seen == [event, event]
    assert claim_record(clients, event) is None


def test_a_handler_with_effects_costs_the_rows_insert_and_one_merge(
    process: Callable[[DialogportenEvent], str], clients: StorageClients, sent: Requests
) -> None:
    """The claim is the event's own row in its dialog: inserting it claims the event and counts it in the
    state; completing it is a merge of that row. Nothing else is read or written per event."""
    seen: list[DialogportenEvent] = []
    effect = seen.append
    app_handlers().add(effect, DialogportenEvent)
    try:
        first, *rest = events(str(uuid.uuid4()), "created", "activity.information", "seen", "updated")
        assert process(first) == "handled"  # a process's first claim also asks whether id-keyed records exist
        sent.sent.clear()
        assert [process(event) for event in rest] == ["handled"] * 3
        assert [process(event) for event in rest] == ["duplicate"] * 3
    finally:
        app_handlers().remove(effect)
    table = f"/devstoreaccount1/{DIALOGS_TABLE}"
    handled = [f"POST {table}", f"PATCH {table}"] * 3
    duplicates = [f"POST {table}", f"GET {table}"] * 3  # the insert refused, the row read: completed
    assert [line.split("(")[0] for line in sent.sent] == handled + duplicates
    assert seen == [first, *rest]
    state = DialogStore(clients.tables).get(first.dialog_id)
    assert state is not None
    assert state.events_applied == 4
    for event in [first, *rest]:
        record = claim_record(clients, event)
        assert record is not None
        assert record["status"] == "COMPLETED"
