"""The catch-up timer through the local runner, against the Altinn simulator's events API and Azurite.

Altinn kept events the app never got pushed (a gap); a few it did get through the webhook. One run
of the timer (``POST /admin/functions/catch_up_events``, as under ``func start``) fills the gap; the
events already taken are queued again and deduplicated, so each is applied exactly once. The cursor
is kept: the next run reads only what is new.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from shared.stores.clients import StorageClients
from shared.stores.cursors import CursorStore, Saved
from tests.conftest import load_fixture
from tests.e2e.harness import Runner, post, recorded, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
RESOURCE = "urn:altinn:resource:super-simple-service"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    # Altinn holds an event back 30 s after it is registered; the timer here reads what was just registered.
    with Simulator(Options(port=0, events_hold_back=0)) as simulator:
        simulator.register(Client("e2e-client", "e2e-kid", KEY.public_key()))
        yield simulator


def event(age: timedelta = timedelta(0)) -> dict[str, Any]:
    base: dict[str, Any] = load_fixture("dialog-created.json")
    dialog_id = str(uuid.uuid4())
    moment = (datetime.now(UTC) - age).isoformat(timespec="microseconds").replace("+00:00", "Z")
    source = f"https://platform.tt02.altinn.no/dialogporten/api/v1/enduser/dialogs/{dialog_id}"
    return {**base, "id": str(uuid.uuid4()), "time": moment, "resourceinstance": dialog_id, "source": source}


def trigger_timer(runner: Runner) -> None:
    """Run the timer now, as `func start` users do: the admin endpoint answers 202 and runs it in the background."""
    root = runner.base.removesuffix("/api")
    request = urllib.request.Request(
        f"{root}/admin/functions/catch_up_events", data=b'{"input": ""}', method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def run_timer(runner: Runner) -> dict[str, Any]:
    """Invoke the timer and wait for its summary line."""
    before = len(catchup_lines(runner))
    trigger_timer(runner)
    lines: list[dict[str, Any]] = wait_for("the catch-up line", lambda: catchup_lines(runner)[before:], runner)
    (line,) = lines
    return line


def catchup_lines(runner: Runner) -> list[dict[str, Any]]:
    prefix = "dialogporten.catchup "
    return [
        json.loads(line[line.find(prefix) + len(prefix) :]) for line in runner.output().splitlines() if prefix in line
    ]


def test_the_timer_fills_a_gap_applies_nothing_twice_and_resumes_from_its_cursor(
    sim: Simulator, start_runner: Callable[..., Runner], workdir: Path, clients: StorageClients
) -> None:
    runner = start_runner(
        ALTINN_ENVIRONMENT=sim.base_url,
        MASKINPORTEN_CLIENT_ID="e2e-client",
        MASKINPORTEN_KID="e2e-kid",
        MASKINPORTEN_KEY=PEM.decode(),
        CATCHUP_RESOURCES=RESOURCE,
    )
    too_old = event(age=timedelta(days=3))  # older than the first run's look-back (2 days)
    taken = [event() for _ in range(3)]
    missed = [event() for _ in range(7)]
    for e in [too_old, *taken, *missed]:
        sim.events.append(e)
    sim.events.append({**event(), "resource": "urn:altinn:resource:another"})  # not a configured resource
    for e in taken:
        assert post(runner, e) == 200  # these the webhook got pushed
    wait_for("the pushed events", lambda: len(recorded(workdir)) == 3, runner)

    first = run_timer(runner)
    assert first["outcome"] == "caught_up"
    # One page, then the empty page that ends the stream (a short page is not the end).
    assert (first["read"], first["before_since"], first["accepted"], first["requests"]) == (11, 1, 10, 2)
    ids = {e["id"] for e in taken + missed}
    wait_for("every event handled", lambda: {r["id"] for r in recorded(workdir)} == ids, runner)
    wait_for(
        "the duplicates acknowledged",
        lambda: sum(x.get("outcome") == "duplicate" for x in runner.process_lines()) == 3,
        runner,
    )
    assert Counter(r["id"] for r in recorded(workdir)) == dict.fromkeys(ids, 1)  # each applied exactly once
    assert CursorStore(clients.tables).get(RESOURCE) == Saved(missed[-1]["id"])  # the look-back is over

    second = run_timer(runner)
    assert (second["read"], second["accepted"], second["requests"]) == (0, 0, 1)

    later = [event() for _ in range(2)]
    for e in later:
        sim.events.append(e)
    third = run_timer(runner)
    assert (third["read"], third["accepted"], third["from_cursor"], third["requests"]) == (2, 2, missed[-1]["id"], 2)
    wait_for("the new events handled", lambda: len(recorded(workdir)) == 12, runner)
    assert Counter(r["id"] for r in recorded(workdir)) == dict.fromkeys(ids | {e["id"] for e in later}, 1)


def test_without_maskinporten_settings_the_timer_does_nothing(
    start_runner: Callable[..., Runner], clients: StorageClients
) -> None:
    runner = start_runner()
    trigger_timer(runner)
    wait_for("the timer's run", lambda: "Executed 'Functions.catch_up_events' (Succeeded" in runner.output(), runner)
    assert catchup_lines(runner) == []
    assert "catchup" not in [t.name for t in clients.tables.list_tables()]
