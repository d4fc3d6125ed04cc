"""The timers: idempotency records past their retention are deleted; host-moved poison copies stop expiring."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError

from devtools.samples import sample_event
from shared.events.catalog import BY_TYPE
from shared.events.messages import serialize_event
from shared.functions import housekeeping
from shared.stores import idempotency
from shared.stores.clients import StorageClients
from shared.stores.idempotency import IdempotencyStore
from tests.conftest import app_functions

pytestmark = pytest.mark.azurite


class PastDue:
    """What the host passes to a timer function (``func.TimerRequest`` has no public constructor)."""

    past_due = False


def test_the_timer_purges_expired_records_and_keeps_the_rest(app_env: dict[str, str], clients: StorageClients) -> None:
    idempotency.forget_tables()
    long_ago = datetime.now(UTC) - timedelta(days=30)
    old = IdempotencyStore(clients.tables, claim_timeout_seconds=60, retention_seconds=86400, clock=lambda: long_ago)
    for n in range(3):
        old.complete(old.claim(f"old-{n}", event_type="t", dialog_id=None))  # completed 30 days ago, kept 1 day
    fresh = IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=86400)
    fresh.complete(fresh.claim("fresh-completed", event_type="t", dialog_id=None))
    fresh.claim("fresh-in-progress", event_type="t", dialog_id=None)

    (timer,) = [f for f in app_functions() if f.get_function_name() == "purge_idempotency"]
    timer.get_user_function()(PastDue())

    assert [fresh.status(f"old-{n}") for n in range(3)] == [None, None, None]
    assert fresh.status("fresh-completed") is not None
    assert fresh.status("fresh-in-progress") is not None
    assert housekeeping.purge() == 0  # nothing left to do


def test_the_timer_binding() -> None:
    (timer,) = [f for f in app_functions() if f.get_function_name() == "purge_idempotency"]
    (binding,) = timer.get_bindings_dict()["bindings"]
    assert binding["type"] == "timerTrigger"
    assert binding["schedule"] == housekeeping.SCHEDULE
    assert binding["runOnStartup"] is False


def _raw_poison(clients: StorageClients, queue: str) -> Any:
    client = clients.queues.get_queue_client(queue)  # no policies: bodies as stored
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    return client


def test_the_sweep_renews_host_moved_poison_copies_byte_for_byte_and_keeps_the_rest(
    app_env: dict[str, str], clients: StorageClients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="dialogporten")
    row = BY_TYPE["dialogporten.dialog.seen.v1"]
    event = sample_event(row.type)
    host_moved = base64.b64encode(serialize_event(event).encode("utf-8")).decode("ascii")
    garbage = "not base64 at all {"
    ours = base64.b64encode(b'{"already":"kept"}').decode("ascii")
    client = _raw_poison(clients, row.poison_queue)
    client.send_message(host_moved)  # as the host moves it: the default time to live, 7 days
    client.send_message(garbage)
    kept = client.send_message(ours, time_to_live=-1)
    assert all(m.expires_on.year < 9999 for m in client.peek_messages() if m.id != kept.id)

    (timer,) = [f for f in app_functions() if f.get_function_name() == "sweep_poison"]
    timer.get_user_function()(PastDue())

    after = list(client.peek_messages(max_messages=32))
    assert sorted(m.content for m in after) == sorted([host_moved, garbage, ours])
    assert all(m.expires_on is not None and m.expires_on.year == 9999 for m in after)
    assert kept.id in {m.id for m in after}  # the never-expiring one was left alone
    lines = [r.getMessage() for r in caplog.records]
    poisoned = [
        json.loads(x.partition(" ")[2]) for x in lines if x.startswith('dialogporten.process {"outcome":"poisoned"')
    ]
    assert sorted(str(p["event_id"]) for p in poisoned) == sorted([event["id"], "None"])
    assert all(p["poison_queue"] == row.poison_queue for p in poisoned)
    assert housekeeping.sweep() == 0  # nothing left to renew, and nothing lost
    assert len(list(client.peek_messages(max_messages=32))) == 3


def test_the_sweep_binding() -> None:
    (timer,) = [f for f in app_functions() if f.get_function_name() == "sweep_poison"]
    (binding,) = timer.get_bindings_dict()["bindings"]
    assert (binding["type"], binding["schedule"]) == ("timerTrigger", housekeeping.SWEEP_SCHEDULE)
