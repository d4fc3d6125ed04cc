"""The poison reasons table: one row beside each poisoned message, deleted with it or, orphaned, by the sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.stores.clients import StorageClients
from shared.stores.poison import ORPHAN_AFTER, PoisonReasonStore

pytestmark = pytest.mark.azurite
QUEUE = "dialogporten-dialog-seen-v1-poison"


def test_record_read_forget(clients: StorageClients) -> None:
    store = PoisonReasonStore(clients.tables)
    assert store.for_queue(QUEUE) == {}  # no table yet, no row: nothing recorded
    store.record(QUEUE, "m-1", "can never succeed: x" * 1000, event_id="e-1", event_type="t")
    store.record("another-poison", "m-1", "other")
    [found] = store.for_queue(QUEUE).values()
    assert (found.message_id, found.event_id, found.event_type) == ("m-1", "e-1", "t")
    assert len(found.reason) == 4000  # cut, never refused
    assert found.poisoned_at is not None
    store.forget(QUEUE, "m-1")
    store.forget(QUEUE, "m-1")  # twice is fine
    assert store.for_queue(QUEUE) == {}
    assert list(store.for_queue("another-poison")) == ["m-1"]


def test_only_old_rows_whose_message_is_gone_are_forgotten(clients: StorageClients) -> None:
    store = PoisonReasonStore(clients.tables)
    now = datetime.now(UTC)
    old = now - ORPHAN_AFTER - timedelta(minutes=1)
    store.record(QUEUE, "gone-old", "r", at=old)
    store.record(QUEUE, "gone-new", "r", at=now)  # perhaps leased by a replay right now: kept
    store.record(QUEUE, "present-old", "r", at=old)
    assert store.forget_missing(QUEUE, {"present-old"}, now=now) == 1
    assert sorted(store.for_queue(QUEUE)) == ["gone-new", "present-old"]
