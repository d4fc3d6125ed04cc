"""Enrichment and "not now" through the local runner and Azurite, against the simulator's Dialogporten and
Maskinporten, whose answers follow their code (``devtools/altinn_sim/dialogporten.py`` and ``tokens.py`` cite
each rule): the service-owner GET answers 200 before ``visibleFrom`` and for a deleted dialog, 404 for
another organisation's, and 503 with an RFC 1123 ``Retry-After`` in a maintenance window.

host.json here allows 5 attempts one second apart: anything that waits longer than that without poisoning
the message proves that the wait spent no attempt.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from devtools.altinn_sim.dialogporten import sample_dialog
from shared.events.catalog import BY_TYPE, poison_queue_for
from shared.stores.clients import StorageClients
from tests.conftest import load_fixture
from tests.e2e.harness import Runner, post, recorded, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

#: A user's handler module, as docs/handlers.md shows it: the dialog in one line, and waiting until end users see it.
FETCHER = """
import json, os
from shared.events import DialogCreated
from shared.handlers import HandlerContext, RetryLater, handles

@handles(DialogCreated, effects=os.environ.get("E2E_EFFECTS", "1") == "1")
def on_created(event: DialogCreated, ctx: HandlerContext) -> None:
    dialog = ctx.fetch_dialog(event)
    if not dialog.is_visible:
        raise RetryLater(dialog.visible_from, "not visible to end users yet")
    with open(os.environ["E2E_RECORD"], "a") as f:
        f.write(json.dumps({"id": event.id, "status": str(dialog.status), "revision": str(dialog.revision),
                            "deleted": dialog.deleted, "dequeue_count": ctx.dequeue_count}) + "\\n")
"""

#: A user's handler whose own outside system says "later" the first E2E_LATER_TIMES times.
LATER = """
import json, os
from shared.events import DialogCreated
from shared.handlers import HandlerContext, RetryLater, handles

@handles(DialogCreated, effects=os.environ.get("E2E_EFFECTS", "1") == "1")
def on_created(event: DialogCreated, ctx: HandlerContext) -> None:
    calls = os.environ["E2E_RECORD"] + ".calls"
    with open(calls, "a") as f:
        f.write(event.id + "\\n")
    with open(calls) as f:
        seen = f.read().split().count(event.id)
    if seen <= int(os.environ["E2E_LATER_TIMES"]):
        raise RetryLater(float(os.environ.get("E2E_LATER_SECONDS", "1")), "the case system is in its nightly window")
    with open(os.environ["E2E_RECORD"], "a") as f:
        f.write(json.dumps({"id": event.id, "calls": seen, "dequeue_count": ctx.dequeue_count}) + "\\n")
"""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(Options(port=0)) as simulator:
        simulator.register(Client("e2e-client", "e2e-kid", KEY.public_key()))
        yield simulator


def with_handler(workdir: Path, source: str) -> None:
    handlers = workdir / "site" / "handlers"
    (handlers / "e2e_recorder.py").unlink()  # this test's handler records instead
    (handlers / "e2e_user.py").write_text(source, encoding="utf-8")


@pytest.fixture
def enriched(workdir: Path, start_runner: Callable[..., Runner], sim: Simulator) -> Callable[..., Runner]:
    def start(handler: str = FETCHER, **env: str) -> Runner:
        with_handler(workdir, handler)
        settings = {
            "ALTINN_ENVIRONMENT": sim.base_url,
            "MASKINPORTEN_CLIENT_ID": "e2e-client",
            "MASKINPORTEN_KID": "e2e-kid",
            "MASKINPORTEN_KEY": PEM.decode(),
        }
        return start_runner(**{**settings, **env})

    return start


def created_event(dialog_id: str, age: timedelta = timedelta(0)) -> dict[str, Any]:
    event: dict[str, Any] = load_fixture("dialog-created.json")
    moment = (datetime.now(UTC) - age).isoformat(timespec="microseconds").replace("+00:00", "Z")
    base = "https://platform.tt02.altinn.no/dialogporten/api/v1/enduser/dialogs/"
    return {**event, "id": str(uuid.uuid4()), "time": moment, "resourceinstance": dialog_id, "source": base + dialog_id}


def lines_of(runner: Runner, event: dict[str, Any]) -> list[dict[str, Any]]:
    return [x for x in runner.process_lines() if x.get("event_id") == event["id"]]


def finished(runner: Runner, event: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    """The event's lines once its last one is in (a handler records before processing logs the outcome)."""
    return wait_for(  # type: ignore[no-any-return]
        "the event's final line",
        lambda: (lines := lines_of(runner, event)) and lines[-1]["outcome"] in {"handled", "duplicate"} and lines,
        runner,
        timeout=timeout,
    )


def poisoned(clients: StorageClients, event: dict[str, Any]) -> list[Any]:
    poison = clients.queue(poison_queue_for(BY_TYPE[event["type"]].queue))
    try:
        return [json.loads(m.content) for m in poison.peek_messages(max_messages=32)]
    except Exception:  # no poison queue yet: nothing poisoned
        return []


@pytest.mark.parametrize("effects", ["1", "0"], ids=["claimed", "effects=False"])
def test_a_dialog_not_yet_visible_comes_typed_and_the_handler_waits_for_it_without_spending_attempts(
    sim: Simulator, enriched: Callable[..., Runner], workdir: Path, effects: str
) -> None:
    visible = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=9)
    dialog = sample_dialog(visible_from=visible, status="Awaiting")
    sim.dialogporten.put(dialog)
    runner = enriched(E2E_EFFECTS=effects)
    event = created_event(dialog["id"])
    assert post(runner, event) == 200

    lines = finished(runner, event, timeout=40)
    (seen,) = recorded(workdir)
    assert seen == {
        "id": event["id"], "status": "Awaiting", "revision": dialog["revision"], "deleted": False, "dequeue_count": 1
    }  # fmt: skip
    assert datetime.now(UTC) >= visible
    (deferred,) = [x for x in lines if x["outcome"] == "deferred"]  # once: put back until visibleFrom itself
    assert deferred["reason"] == "not visible to end users yet"
    assert datetime.fromisoformat(deferred["until"]) >= visible
    assert (deferred["dialog_id"], deferred["dequeue_count"]) == (dialog["id"], 1)
    assert not [x for x in lines if x["outcome"] in {"retry", "poisoned"}]
    # Unclaimed (effects=False), the default dialog-state handler ran on the first try too and says
    # so on the second: processing then logs the event as a duplicate, after the fetching handler ran.
    assert lines[-1]["outcome"] == ("handled" if effects == "1" else "duplicate")
    assert [a.status for _, a in sim.dialogporten.responses] == [200, 200]  # the service-owner API never 404s


def test_a_deleted_dialog_comes_typed_to_the_handler(
    sim: Simulator, enriched: Callable[..., Runner], workdir: Path
) -> None:
    dialog = sample_dialog(deleted_at=datetime.now(UTC))
    sim.dialogporten.put(dialog)
    runner = enriched()
    event = created_event(dialog["id"])
    assert post(runner, event) == 200
    (seen,) = wait_for("the handler's record", lambda: recorded(workdir), runner)
    assert (seen["deleted"], seen["dequeue_count"]) == (True, 1)


def test_a_maintenance_window_an_hour_long_puts_the_message_back_once_until_its_end(
    sim: Simulator, enriched: Callable[..., Runner], clients: StorageClients
) -> None:
    dialog = sample_dialog()
    sim.dialogporten.put(dialog)
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    sim.dialogporten.maintenance(end)  # 503, Retry-After: the end as an RFC 1123 date
    runner = enriched()
    event = created_event(dialog["id"])
    assert post(runner, event) == 200

    (deferred,) = wait_for(
        "the deferred line", lambda: [x for x in lines_of(runner, event) if x["outcome"] == "deferred"], runner
    )
    time.sleep(5)  # five of host.json's visibility timeouts: an ordinary retry would have come round by now
    assert [x["outcome"] for x in lines_of(runner, event)] == ["deferred"]  # not retried in between
    assert sim.dialogporten.requests == 1
    assert abs((datetime.fromisoformat(deferred["until"]) - end).total_seconds()) <= 2
    assert deferred["reason"].startswith("Dialogporten answered 503 until")
    queue = clients.queue(BY_TYPE[event["type"]].queue)
    assert queue.get_queue_properties().approximate_message_count == 1  # the copy, invisible until the end
    assert list(queue.peek_messages()) == []
    assert poisoned(clients, event) == []


def test_a_maskinporten_429_is_retried_and_the_event_handled(
    sim: Simulator, enriched: Callable[..., Runner], workdir: Path, clients: StorageClients
) -> None:
    dialog = sample_dialog()
    sim.dialogporten.put(dialog)
    sim.tokens.not_now((429, None), (429, "2"))  # once without a time (an attempt), once with one (no attempt)
    runner = enriched()
    event = created_event(dialog["id"])
    assert post(runner, event) == 200
    wait_for(  # the handler records before processing logs: wait for the line
        "the handled line",
        lambda: [x for x in lines_of(runner, event) if x["outcome"] == "handled"],
        runner,
        timeout=40,
    )
    (seen,) = recorded(workdir)
    outcomes = [(x["outcome"], x["dequeue_count"]) for x in lines_of(runner, event)]
    assert outcomes == [("retry", 1), ("deferred", 2), ("handled", 1)]
    assert seen["dequeue_count"] == 1  # the put-back copy starts its count again
    assert poisoned(clients, event) == []


@pytest.mark.parametrize("effects", ["1", "0"], ids=["claimed", "effects=False"])
def test_retry_later_from_a_users_handler_keeps_the_attempts_and_is_not_blocked_by_its_own_claim(
    enriched: Callable[..., Runner], workdir: Path, clients: StorageClients, effects: str
) -> None:
    runner = enriched(LATER, E2E_LATER_TIMES="6", E2E_EFFECTS=effects)  # more put-backs than maxDequeueCount (5)
    event = created_event(str(uuid.uuid4()))
    assert post(runner, event) == 200
    lines = finished(runner, event, timeout=60)
    (seen,) = recorded(workdir)
    assert (seen["calls"], seen["dequeue_count"]) == (7, 1)
    assert [x["outcome"] for x in lines] == ["deferred"] * 6 + [lines[-1]["outcome"]]
    assert lines[-1]["outcome"] in {"handled", "duplicate"}
    assert all(x["dequeue_count"] == 1 for x in lines)  # never a spent attempt
    assert all(x["reason"] == "the case system is in its nightly window" for x in lines[:-1])
    # With effects, each put-back released the claim: the copy ran at once, not "in progress elsewhere".
    assert not [x for x in lines if "in progress elsewhere" in str(x.get("reason"))]
    assert poisoned(clients, event) == []


def test_past_retry_later_max_wait_the_attempts_count_and_the_last_poisons_with_the_reason(
    enriched: Callable[..., Runner], clients: StorageClients
) -> None:
    runner = enriched(LATER, E2E_LATER_TIMES="99", RETRY_LATER_MAX_WAIT_SECONDS="30")
    event = created_event(str(uuid.uuid4()), age=timedelta(minutes=1))  # it has waited longer than that
    assert post(runner, event) == 200
    wait_for(
        "the poisoned line",
        lambda: [x for x in lines_of(runner, event) if x["outcome"] == "poisoned"],
        runner,
        timeout=40,
    )
    assert [m["id"] for m in poisoned(clients, event)] == [event["id"]]  # the untouched event, kept
    lines = lines_of(runner, event)
    assert [(x["outcome"], x["dequeue_count"]) for x in lines] == [("retry", n) for n in range(1, 5)] + [
        ("poisoned", 5)
    ]
    assert "RETRY_LATER_MAX_WAIT_SECONDS" in lines[-1]["reason"]
    assert "nightly window" in lines[-1]["reason"]


def test_the_old_setting_name_still_bounds_the_wait(enriched: Callable[..., Runner], clients: StorageClients) -> None:
    runner = enriched(LATER, E2E_LATER_TIMES="99", DIALOG_NOT_VISIBLE_MAX_WAIT_SECONDS="30")
    event = created_event(str(uuid.uuid4()), age=timedelta(minutes=1))
    assert post(runner, event) == 200
    wait_for(
        "the poisoned line",
        lambda: [x for x in lines_of(runner, event) if x["outcome"] == "poisoned"],
        runner,
        timeout=40,
    )
    assert "is deprecated" in runner.output()


def test_another_organisations_dialog_poisons_at_once_with_the_reason(
    sim: Simulator, enriched: Callable[..., Runner], clients: StorageClients
) -> None:
    theirs = sample_dialog()
    sim.dialogporten.put(theirs, org_number="310000000")  # not the client's organisation
    runner = enriched()
    event = created_event(theirs["id"])
    assert post(runner, event) == 200
    (line,) = wait_for(
        "the poisoned line",
        lambda: [x for x in lines_of(runner, event) if x["outcome"] == "poisoned"],
        runner,
    )
    assert line["dequeue_count"] == 1  # permanent: no retries
    assert "404" in line["reason"]
    assert "another organisation" in line["reason"]
    assert [m["id"] for m in poisoned(clients, event)] == [event["id"]]


def test_with_no_maskinporten_settings_a_handler_that_fetches_is_poisoned_with_a_clear_reason(
    workdir: Path, start_runner: Callable[..., Runner], clients: StorageClients
) -> None:
    with_handler(workdir, FETCHER)
    runner = start_runner()
    event = created_event(str(uuid.uuid4()))
    assert post(runner, event) == 200
    lines = wait_for(
        "the poisoned line",
        lambda: [x for x in runner.process_lines() if x.get("event_id") == event["id"] and x["outcome"] == "poisoned"],
        runner,
    )
    assert "Maskinporten is not configured" in lines[0]["reason"]
    assert lines[0]["dequeue_count"] == 1  # permanent: no retries
