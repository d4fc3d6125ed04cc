"""The daily timer deletes idempotency records past their retention, and only those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared import idempotency
from shared.functions import housekeeping
from shared.idempotency import IdempotencyStore
from shared.storage import StorageClients
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
