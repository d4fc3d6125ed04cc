"""The idempotency store on a real table (Azurite): claim, complete, release, expiry, races.

Every case runs twice: on a claim in the event's own row of its dialog (what the app does since
the claim moved there) and on a record of its own in the ``idempotency`` table (what older
versions wrote, which still counts after an upgrade).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline import PipelineResponse
from azure.data.tables import TableServiceClient

from devtools.azurite import Azurite
from shared.events.catalog import Family
from shared.stores import idempotency
from shared.stores.clients import StorageClients
from shared.stores.dialogs import DIALOGS_TABLE, DialogStore, EventFact
from shared.stores.idempotency import (
    COMPLETED,
    IDEMPOTENCY_TABLE,
    INPROGRESS,
    AlreadyCompleted,
    AlreadyInProgress,
    Claim,
    ClaimLost,
    IdempotencyStore,
    event_key,
)
from shared.stores.tables import record_key

pytestmark = pytest.mark.azurite

EVENT = "a4f4e30d-564e-4e36-b111-41e08238ebce"
SOURCE = "https://platform.tt02.altinn.no/dialogporten/api/v1/dialogs/0194bd8a-94f7-7a84-9e3e-2cf3a0e2c0b4"
DIALOG = "0194bd8a-94f7-7a84-9e3e-2cf3a0e2c0b4"
#: Where a claim is kept: the event's row in its dialog (the app's), or a record of its own (older versions').
PLACES = ["dialog-row", "record"]


def fact(event_id: str, dialog_id: str = DIALOG) -> EventFact:
    """An event as its dialog row knows it, with the id ``event_id``."""
    return EventFact(
        dialog_id=dialog_id,
        id=event_id,
        source=SOURCE,
        type="dialogporten.dialog.updated.v1",
        time_key="2026-03-16T11:00:00.0000000Z",
        party="urn:altinn:person:identifier-no:01017012345",
        service_resource="super-simple-service",
        family=Family.DIALOG.value,
    )


class Claims:
    """One store claiming where ``place`` says, with events named by their id, so every case runs on both."""

    def __init__(self, store: IdempotencyStore, place: str) -> None:
        self.store = store
        self.place = place

    def claim(self, event_id: str, **info: Any) -> Claim:
        if self.place == "record":
            return self.store.claim(event_id, **info)
        return self.store.claim_event(fact(event_id))

    def status(self, event_id: str) -> tuple[str, datetime] | None:
        if self.place == "record":
            return self.store.status(event_id)
        return self.store.status(event_key(SOURCE, event_id), dialog_id=DIALOG)

    def complete(self, claim: Claim) -> None:
        self.store.complete(claim)

    def release(self, claim: Claim) -> None:
        self.store.release(claim)

    def purge_expired(self) -> int:
        return self.store.purge_expired()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=PLACES)
def place(request: pytest.FixtureRequest) -> str:
    idempotency.forget_tables()
    return str(request.param)


@pytest.fixture
def make_store(clients: StorageClients, clock: Clock, place: str) -> Callable[[], Claims]:
    def make() -> Claims:
        store = IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=7 * 86400, clock=clock)
        return Claims(store, place)

    return make


def test_a_completed_event_is_a_duplicate_for_the_whole_retention(
    make_store: Callable[[], Claims], clock: Clock
) -> None:
    store = make_store()
    store.complete(store.claim(EVENT, event_type="dialogporten.dialog.created.v1"))
    assert store.status(EVENT) == (COMPLETED, clock.now + timedelta(days=7))
    clock.advance(7 * 86400 - 1)
    with pytest.raises(AlreadyCompleted):
        store.claim(EVENT)
    clock.advance(2)  # retention over: the id is as good as new
    claim = store.claim(EVENT)
    assert claim.taken_over


def test_a_live_claim_makes_a_duplicate_wait_and_an_expired_one_is_taken_over(
    make_store: Callable[[], Claims], clock: Clock
) -> None:
    store = make_store()
    first = store.claim(EVENT)
    assert not first.taken_over
    clock.advance(599)
    with pytest.raises(AlreadyInProgress) as info:
        store.claim(EVENT)
    assert info.value.expires_at == first.expires_at
    clock.advance(2)  # the first worker died: its claim expired
    second = store.claim(EVENT)
    assert second.taken_over
    assert store.status(EVENT) == (INPROGRESS, second.expires_at)
    with pytest.raises(ClaimLost):
        store.complete(first)  # the dead worker woke up: it cannot overwrite the new owner
    store.release(first)  # nor delete the new owner's claim
    assert store.status(EVENT) == (INPROGRESS, second.expires_at)
    store.complete(second)
    status = store.status(EVENT)
    assert status is not None
    assert status[0] == COMPLETED


def test_a_released_claim_lets_the_next_delivery_run_at_once(make_store: Callable[[], Claims]) -> None:
    store = make_store()
    store.release(store.claim(EVENT))
    assert store.status(EVENT) is None
    assert not store.claim(EVENT).taken_over


def test_of_many_concurrent_claims_exactly_one_wins(make_store: Callable[[], Claims]) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        store = make_store()
        barrier.wait()
        try:
            store.claim(EVENT)
            results.append("won")
        except AlreadyInProgress:
            results.append("busy")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["busy"] * 7 + ["won"]


def test_of_many_concurrent_takeovers_of_an_expired_claim_exactly_one_wins(
    make_store: Callable[[], Claims], clock: Clock
) -> None:
    make_store().claim(EVENT)
    clock.advance(601)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        store = make_store()
        barrier.wait()
        try:
            results.append(store.claim(EVENT).taken_over)
        except AlreadyInProgress:
            results.append(False)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_event_ids_with_characters_a_table_key_refuses_still_work(make_store: Callable[[], Claims]) -> None:
    store = make_store()
    odd = "weird/id#with?chars\\"
    assert record_key(odd).startswith("sha256-")
    store.complete(store.claim(odd))
    with pytest.raises(AlreadyCompleted):
        store.claim(odd)


@pytest.mark.parametrize("place", ["record"])
def test_purge_removes_only_expired_records(make_store: Callable[[], Claims], clock: Clock) -> None:
    store = make_store()
    store.complete(store.claim("old"))
    clock.advance(8 * 86400)
    store.claim("fresh")
    assert store.purge_expired() == 1
    assert store.status("old") is None
    assert store.status("fresh") is not None


@pytest.mark.parametrize("place", ["dialog-row"])
def test_purge_never_deletes_a_claim_in_a_dialog_row(
    make_store: Callable[[], Claims], clock: Clock, clients: StorageClients
) -> None:
    """The row is the dialog state: long after its claim expired, the event still counts, and still once."""
    store = make_store()
    store.complete(store.claim("old"))
    clock.advance(8 * 86400)
    assert store.purge_expired() == 0
    state = DialogStore(clients.tables).get(DIALOG)
    assert state is not None
    assert state.events_applied == 1
    store.complete(store.claim("old"))  # the completed claim aged out: taken over, as a record's would be
    assert DialogStore(clients.tables).get(DIALOG).events_applied == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("place", ["dialog-row"])
def test_a_claim_in_the_dialog_row_counts_the_event_before_the_handlers_and_after_a_release(
    make_store: Callable[[], Claims], clients: StorageClients
) -> None:
    store = make_store()
    claim = store.claim(EVENT)
    state = DialogStore(clients.tables).get(DIALOG)
    assert state is not None
    assert state.events_applied == 1  # the claim's insert is the dialog state's row
    store.release(claim)  # the handlers failed: the claim goes, the event stays counted
    assert store.status(EVENT) is None
    assert DialogStore(clients.tables).get(DIALOG).events_applied == 1  # type: ignore[union-attr]
    again = store.claim(EVENT)  # the retry runs at once
    assert not again.taken_over
    store.complete(again)
    with pytest.raises(AlreadyCompleted):
        store.claim(EVENT)
    assert DialogStore(clients.tables).get(DIALOG).events_applied == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("place", ["dialog-row"])
def test_a_row_applied_without_a_claim_is_claimed_by_the_first_delivery_that_needs_one(
    make_store: Callable[[], Claims], clients: StorageClients
) -> None:
    """No handler needed a claim when the event was first applied; one does now (a handler was added)."""
    DialogStore(clients.tables).record(fact(EVENT))  # type: ignore[arg-type]
    store = make_store()
    claim = store.claim(EVENT)
    assert not claim.taken_over
    with pytest.raises(AlreadyInProgress):
        make_store().claim(EVENT)
    store.complete(claim)
    assert DialogStore(clients.tables).get(DIALOG).events_applied == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("place", ["dialog-row"])
def test_a_claim_an_older_version_kept_in_a_record_of_its_own_still_counts(
    make_store: Callable[[], Claims], clock: Clock, clients: StorageClients
) -> None:
    """What the version that claimed in the idempotency table left: its record, and the event's row it wrote
    before its handlers ran. While the record is live it decides; once it expired, the row is taken over."""
    key = event_key(SOURCE, EVENT)
    old = IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=7 * 86400, clock=clock)
    old_claim = old.claim(key, event_id=EVENT, source=SOURCE, event_type="t", dialog_id=DIALOG)
    DialogStore(clients.tables).record(fact(EVENT))  # type: ignore[arg-type]
    store = make_store()
    with pytest.raises(AlreadyInProgress):
        store.claim(EVENT)  # its handlers may be running on an old instance
    old.complete(old_claim)
    with pytest.raises(AlreadyCompleted):
        store.claim(EVENT)
    clock.advance(7 * 86400 + 1)  # its retention is over: as good as new, as it was before the upgrade
    assert store.claim(EVENT).taken_over
    assert DialogStore(clients.tables).get(DIALOG).events_applied == 1  # type: ignore[union-attr]


class LoseFirstResponse:
    """A network fault, not a fake store: the request reaches Azurite, its answer never comes back."""

    def __init__(self, method: str, table: str) -> None:
        self.method = method
        self.table = table
        self.lost = 0

    def __call__(self, response: PipelineResponse) -> None:  # type: ignore[type-arg]
        url = response.http_request.url
        ours = response.http_request.method == self.method and "Tables" not in url and f"/{self.table}" in url
        if ours and not self.lost:
            self.lost += 1
            raise ServiceResponseError("the response was lost on the way back")


def _table_of(place: str) -> str:
    return IDEMPOTENCY_TABLE if place == "record" else DIALOGS_TABLE


def test_a_claim_whose_response_was_lost_is_still_ours(azurite: Azurite, clients: StorageClients, place: str) -> None:
    """The insert landed but its answer was lost: the claim is ours, and the event runs now (not in 10 minutes)."""
    clients.tables.create_table_if_not_exists(_table_of(place))
    fault = LoseFirstResponse("POST", _table_of(place))
    tables = TableServiceClient.from_connection_string(azurite.connection_string, raw_response_hook=fault)
    store = Claims(IdempotencyStore(tables, claim_timeout_seconds=600, retention_seconds=3600), place)
    claim = store.claim(EVENT, event_type="t", dialog_id=None)
    assert fault.lost == 1
    store.complete(claim)
    assert store.status(EVENT) is not None
    assert store.status(EVENT)[0] == COMPLETED  # type: ignore[index]
    other = Claims(IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=3600), place)
    with pytest.raises(AlreadyCompleted):
        other.claim(EVENT, event_type="t", dialog_id=None)


def test_another_workers_live_claim_is_still_refused(clients: StorageClients, place: str) -> None:
    first = Claims(IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=3600), place)
    second = Claims(IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=3600), place)
    first.claim(EVENT, event_type="t", dialog_id=None)
    with pytest.raises(AlreadyInProgress):
        second.claim(EVENT, event_type="t", dialog_id=None)


def test_a_completion_whose_response_was_lost_still_completes(
    azurite: Azurite, clients: StorageClients, place: str
) -> None:
    """After the handlers ran, a lost answer must not leave the record in progress (it would expire and rerun)."""
    clients.tables.create_table_if_not_exists(_table_of(place))
    fault = LoseFirstResponse("PATCH", _table_of(place))  # the SDK's MERGE update
    tables = TableServiceClient.from_connection_string(azurite.connection_string, raw_response_hook=fault)
    store = Claims(IdempotencyStore(tables, claim_timeout_seconds=600, retention_seconds=3600), place)
    claim = store.claim(EVENT, event_type="t", dialog_id=None)
    store.complete(claim)
    assert fault.lost == 1
    status = store.status(EVENT)
    assert status is not None
    assert status[0] == COMPLETED


def test_completing_a_claim_someone_else_took_over_is_refused(
    clients: StorageClients, clock: Clock, place: str
) -> None:
    store = Claims(
        IdempotencyStore(clients.tables, claim_timeout_seconds=10, retention_seconds=3600, clock=clock), place
    )
    mine = store.claim(EVENT, event_type="t", dialog_id=None)
    clock.advance(11)
    theirs = store.claim(EVENT, event_type="t", dialog_id=None)
    assert theirs.taken_over
    with pytest.raises(ClaimLost):
        store.complete(mine)
    store.complete(theirs)
