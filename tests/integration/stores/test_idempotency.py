"""The idempotency store on a real table (Azurite): claim, complete, release, expiry, races."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline import PipelineResponse
from azure.data.tables import TableServiceClient

from devtools.azurite import Azurite
from shared.stores.clients import StorageClients
from shared.stores.idempotency import (
    COMPLETED,
    INPROGRESS,
    AlreadyCompleted,
    AlreadyInProgress,
    ClaimLost,
    IdempotencyStore,
)
from shared.stores.tables import record_key

pytestmark = pytest.mark.azurite

EVENT = "a4f4e30d-564e-4e36-b111-41e08238ebce"


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


@pytest.fixture
def make_store(clients: StorageClients, clock: Clock) -> Callable[[], IdempotencyStore]:
    def make() -> IdempotencyStore:
        return IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=7 * 86400, clock=clock)

    return make


def test_a_completed_event_is_a_duplicate_for_the_whole_retention(
    make_store: Callable[[], IdempotencyStore], clock: Clock
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
    make_store: Callable[[], IdempotencyStore], clock: Clock
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


def test_a_released_claim_lets_the_next_delivery_run_at_once(make_store: Callable[[], IdempotencyStore]) -> None:
    store = make_store()
    store.release(store.claim(EVENT))
    assert store.status(EVENT) is None
    assert not store.claim(EVENT).taken_over


def test_of_many_concurrent_claims_exactly_one_wins(make_store: Callable[[], IdempotencyStore]) -> None:
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
    make_store: Callable[[], IdempotencyStore], clock: Clock
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


def test_event_ids_with_characters_a_table_key_refuses_still_work(make_store: Callable[[], IdempotencyStore]) -> None:
    store = make_store()
    odd = "weird/id#with?chars\\"
    assert record_key(odd).startswith("sha256-")
    store.complete(store.claim(odd))
    with pytest.raises(AlreadyCompleted):
        store.claim(odd)


def test_purge_removes_only_expired_records(make_store: Callable[[], IdempotencyStore], clock: Clock) -> None:
    store = make_store()
    store.complete(store.claim("old"))
    clock.advance(8 * 86400)
    store.claim("fresh")
    assert store.purge_expired() == 1
    assert store.status("old") is None
    assert store.status("fresh") is not None


class LoseFirstResponse:
    """A network fault, not a fake store: the request reaches Azurite, its answer never comes back."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.lost = 0

    def __call__(self, response: PipelineResponse) -> None:  # type: ignore[type-arg]
        if response.http_request.method == self.method and "Tables" not in response.http_request.url and not self.lost:
            self.lost += 1
            raise ServiceResponseError("the response was lost on the way back")


def test_a_claim_whose_response_was_lost_is_still_ours(azurite: Azurite, clients: StorageClients) -> None:
    """The insert landed but its answer was lost: the claim is ours, and the event runs now (not in 10 minutes)."""
    clients.tables.create_table_if_not_exists("idempotency")
    fault = LoseFirstResponse("POST")
    tables = TableServiceClient.from_connection_string(azurite.connection_string, raw_response_hook=fault)
    store = IdempotencyStore(tables, claim_timeout_seconds=600, retention_seconds=3600)
    claim = store.claim(EVENT, event_type="t", dialog_id=None)
    assert fault.lost == 1
    store.complete(claim)
    assert store.status(EVENT) is not None
    assert store.status(EVENT)[0] == COMPLETED  # type: ignore[index]
    other = IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=3600)
    with pytest.raises(AlreadyCompleted):
        other.claim(EVENT, event_type="t", dialog_id=None)


def test_another_workers_live_claim_is_still_refused(clients: StorageClients) -> None:
    first = IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=3600)
    second = IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=3600)
    first.claim(EVENT, event_type="t", dialog_id=None)
    with pytest.raises(AlreadyInProgress):
        second.claim(EVENT, event_type="t", dialog_id=None)


def test_a_completion_whose_response_was_lost_still_completes(azurite: Azurite, clients: StorageClients) -> None:
    """After the handlers ran, a lost answer must not leave the record in progress (it would expire and rerun)."""
    clients.tables.create_table_if_not_exists("idempotency")
    fault = LoseFirstResponse("PATCH")  # the SDK's MERGE update
    tables = TableServiceClient.from_connection_string(azurite.connection_string, raw_response_hook=fault)
    store = IdempotencyStore(tables, claim_timeout_seconds=600, retention_seconds=3600)
    claim = store.claim(EVENT, event_type="t", dialog_id=None)
    store.complete(claim)
    assert fault.lost == 1
    status = store.status(EVENT)
    assert status is not None
    assert status[0] == COMPLETED


def test_completing_a_claim_someone_else_took_over_is_refused(clients: StorageClients, clock: Clock) -> None:
    store = IdempotencyStore(clients.tables, claim_timeout_seconds=10, retention_seconds=3600, clock=clock)
    mine = store.claim(EVENT, event_type="t", dialog_id=None)
    clock.advance(11)
    theirs = store.claim(EVENT, event_type="t", dialog_id=None)
    assert theirs.taken_over
    with pytest.raises(ClaimLost):
        store.complete(mine)
    store.complete(theirs)
