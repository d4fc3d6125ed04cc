"""End to end through the local runner: webhook POST -> queue -> typed handler -> dialog row -> GET."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError

from devtools.samples import sample_event
from shared.events.catalog import BY_TYPE, CATALOG
from shared.stores.clients import StorageClients
from shared.stores.dialogs import DialogStore
from shared.stores.idempotency import INPROGRESS, IdempotencyStore, event_key
from tests.e2e.harness import CLAIM_TIMEOUT, Runner, get_dialog, post, recorded, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]


def test_every_type_end_to_end_reaches_its_typed_handler_and_the_dialog_row(
    start_runner: Callable[..., Runner], workdir: Path, clients: StorageClients
) -> None:
    runner = start_runner()
    dialog_id = str(uuid.uuid4())
    events = [
        sample_event(row, dialog_id=dialog_id, time=f"2026-03-16T11:00:{i:02d}.1234567Z")
        for i, row in enumerate(CATALOG)
    ]
    for event in reversed(events):  # out of order on purpose
        assert post(runner, event) == 200
    wait_for("every event handled", lambda: len(recorded(workdir)) >= len(events), runner)
    seen = {r["id"]: r for r in recorded(workdir)}
    assert len(recorded(workdir)) == len(events)
    for row, event in zip(CATALOG, events, strict=True):
        assert seen[event["id"]]["model"] == row.model_name
        assert seen[event["id"]]["dialog_id"] == dialog_id
        if "activityId" in event["data"]:
            assert seen[event["id"]]["activity_id"] == event["data"]["activityId"]

    def complete_row() -> Any:
        status, row = get_dialog(runner, dialog_id)
        return row if status == 200 and row["eventsApplied"] == len(events) else None

    row_json = wait_for("the dialog row", complete_row, runner)
    assert row_json["status"] == "active"  # restored (11:00:03) is newer than deleted (11:00:02)
    assert row_json["createdAt"] == "2026-03-16T11:00:00.1234567Z"
    assert row_json["transmissionCount"] == 1
    assert row_json["activityCount"] == len(CATALOG) - 6
    assert row_json["lastActivity"]["type"] == CATALOG[-1].type
    assert row_json["lastActivity"]["id"] == events[-1]["data"]["activityId"]
    assert get_dialog(runner, str(uuid.uuid4()))[0] == 404
    assert get_dialog(runner, "not-a-guid")[0] == 400
    outcomes = [line["outcome"] for line in runner.process_lines()]
    assert outcomes.count("handled") == len(events)


def test_the_same_event_three_times_sequentially_and_concurrently_has_one_effect(
    start_runner: Callable[..., Runner], workdir: Path, clients: StorageClients
) -> None:
    runner = start_runner()
    dialog_id = str(uuid.uuid4())
    first = sample_event("dialogporten.dialog.activity.form-submitted.v1", dialog_id=dialog_id)
    second = sample_event("dialogporten.dialog.transmission.created.v1", dialog_id=dialog_id)
    for _ in range(3):
        assert post(runner, first) == 200
    threads = [threading.Thread(target=post, args=(runner, second)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def settled() -> bool:
        lines = [x for x in runner.process_lines() if x.get("outcome") in ("handled", "duplicate")]
        return len(lines) >= 6

    wait_for("all six deliveries settled", settled, runner, timeout=CLAIM_TIMEOUT + 30)
    assert sorted(r["id"] for r in recorded(workdir)) == sorted([first["id"], second["id"]])
    status, row_json = get_dialog(runner, dialog_id)
    assert status == 200
    assert (row_json["eventsApplied"], row_json["activityCount"], row_json["transmissionCount"]) == (2, 1, 1)


def test_a_handler_that_keeps_failing_ends_in_poison_after_five_dequeues_intact(
    start_runner: Callable[..., Runner], workdir: Path, clients: StorageClients
) -> None:
    event_type = "dialogporten.dialog.seen.v1"
    runner = start_runner(E2E_FAIL_TYPES=event_type)
    event = sample_event(event_type)
    assert post(runner, event) == 200
    poison = clients.queue(BY_TYPE[event_type].poison_queue)

    def in_poison() -> list[Any]:
        try:
            return list(poison.peek_messages(max_messages=32))
        except Exception:  # the host creates the poison queue on first use
            return []

    [message] = wait_for("the poison queue", in_poison, runner, timeout=60)
    assert json.loads(message.content) == event  # untouched
    assert message.dequeue_count is not None
    # The app wrote this copy on the last attempt (the host's own move would expire in 7 days).
    assert message.expires_on is not None
    assert message.expires_on.year == 9999
    assert "Message has reached MaxDequeueCount" not in runner.output()
    lines = [x for x in runner.process_lines() if x.get("event_id") == event["id"]]
    assert [x["outcome"] for x in lines] == ["retry"] * 4 + ["poisoned"]
    assert [x["dequeue_count"] for x in lines] == [1, 2, 3, 4, 5]
    assert "the case system is down" in lines[-1]["reason"]
    assert list(clients.queue(BY_TYPE[event_type].queue).peek_messages()) == []
    assert recorded(workdir) == []


def test_a_corrupt_message_goes_to_poison_at_once(
    start_runner: Callable[..., Runner], workdir: Path, clients: StorageClients
) -> None:
    runner = start_runner()
    row = BY_TYPE["dialogporten.dialog.activity.sent-to-signing.v1"]
    body = '{"specversion":"1.0","id":"x","type":"' + row.type + '" this is not JSON'
    with contextlib.suppress(ResourceExistsError):  # the runner may have created it already
        clients.queue(row.queue).create_queue()
    clients.queue(row.queue).send_message(body)
    poison = clients.queue(row.poison_queue)

    def in_poison() -> list[Any]:
        try:
            return list(poison.peek_messages())
        except Exception:
            return []

    [message] = wait_for("the poison queue", in_poison, runner)
    assert message.content == body
    [line] = [x for x in runner.process_lines() if x.get("queue") == row.queue]
    assert (line["outcome"], line["dequeue_count"]) == ("poisoned", 1)


def test_an_event_whose_worker_was_killed_holding_the_claim_is_processed_after_the_claim_expires(
    start_runner: Callable[..., Runner], workdir: Path, clients: StorageClients
) -> None:
    event_type = "dialogporten.dialog.activity.payment-made.v1"
    doomed = start_runner("--message-lease", "2", E2E_HANG_TYPES=event_type)
    event = sample_event(event_type)
    assert post(doomed, event) == 200
    store = IdempotencyStore(clients.tables, claim_timeout_seconds=CLAIM_TIMEOUT, retention_seconds=60)
    wait_for("the handler to hang holding the claim", (workdir / "record.jsonl.hanging").exists, doomed)
    status = store.status(event_key(event["source"], event["id"]))
    assert status is not None
    assert status[0] == INPROGRESS
    claimed_until = status[1]
    doomed.kill()  # SIGKILL: no release, no completion

    survivor = start_runner("--message-lease", "2")
    [entry] = wait_for("the event to be handled by the survivor", lambda: recorded(workdir), survivor, timeout=60)
    assert entry["id"] == event["id"]
    # The handler records before processing completes and logs: wait for the line, then count.
    wait_for(
        "the survivor's handled line",
        lambda: [x for x in survivor.process_lines() if x.get("outcome") == "handled"],
        survivor,
    )
    handled = [x for x in survivor.process_lines() if x.get("outcome") == "handled"]
    assert len(handled) == 1
    assert "taken over" in handled[0].get("note", "")
    assert time.time() >= claimed_until.timestamp()
    state = DialogStore(clients.tables).get(event["resourceinstance"])
    assert state is not None
    assert (state.events_applied, state.activity_count) == (1, 1)
