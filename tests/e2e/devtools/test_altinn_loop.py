"""The whole loop on one machine: the Altinn simulator, Azurite, the local runner and the operator CLI.

The CLI (as a subprocess, as a user runs it) gets tokens from the simulator's fake Maskinporten,
subscribes the running app, waits for the validation ping to validate it, and publishes traffic
through the simulator, which pushes each event to the app. A short outage of the app is survived
through Altinn's (time-scaled) retries; a longer one outlasts them (dead letters) and is closed with
``catch-up``. Every event is applied exactly once: the handler saw each id once and each dialog's
row counts exactly its events.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from devtools.azurite import Azurite, free_port, port_open
from tests import docs_support
from tests.e2e.harness import ROOT, Runner, get_dialog, recorded, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]
RESOURCE = "urn:altinn:resource:super-simple-service"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(Options(port=0, time_scale=0.001, delivery_timeout=10, allow_http_loopback=True)) as simulator:
        simulator.register(Client("e2e-client", "e2e-kid", KEY.public_key()))
        yield simulator


@pytest.fixture
def app(start_runner: Callable[..., Runner]) -> Callable[[], Runner]:
    """Starts the runner, always on the same port (the subscription's endpoint), as often as asked, with the
    app's own claim timeout (the harness shortens it for the fault tests)."""
    port = free_port()
    return lambda: start_runner(port=port, IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS="600")


def dpctl(sim: Simulator, azurite: Azurite, *args: str) -> tuple[int, Any, str]:
    env = {
        **os.environ,
        "ALTINN_SIM_URL": sim.base_url,
        "AzureWebJobsStorage": azurite.connection_string,
        "MASKINPORTEN_CLIENT_ID": "e2e-client",
        "MASKINPORTEN_KID": "e2e-kid",
        "MASKINPORTEN_KEY": PEM.decode(),
    }
    command = [sys.executable, "-m", "devtools.cli", "--env", "local", "--settings", "/nonexistent.json", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        parsed = json.loads(done.stdout)
    except ValueError:
        parsed = done.stdout
    return done.returncode, parsed, done.stderr


def subscribe(sim: Simulator, azurite: Azurite, runner: Runner) -> int:
    code, created, err = dpctl(
        sim,
        azurite,
        "subscriptions",
        "create",
        "--endpoint",
        f"{runner.base}/events?code=e2e",
        "--resource",
        RESOURCE,
        "--json",
    )
    assert code == 0, err
    assert created["validated"] is False
    assert "up to an hour" in err  # the cache warning
    code, out, err = dpctl(
        sim, azurite, "subscriptions", "wait", str(created["id"]), "--timeout", "20", "--interval", "0.2"
    )
    assert code == 0, err
    assert "is validated" in out
    assert runner.output().count('"outcome":"validated"') == 1  # the app answered the ping
    return int(created["id"])


def send(sim: Simulator, azurite: Azurite, count: int, seed: int) -> None:
    code, report, err = dpctl(sim, azurite, "send", "--to-sim", "--count", str(count), "--seed", str(seed), "--json")
    assert code == 0, err
    assert report["statuses"] == {"200": count}


def assert_each_event_applied_once(sim: Simulator, runner: Runner, workdir: Path) -> None:
    published = [e for e in sim.events.all() if e.get("resource") == RESOURCE]
    expected = Counter(e["resourceinstance"] for e in {e["id"]: e for e in published}.values())

    def all_handled() -> bool:
        return len({r["id"] for r in recorded(workdir)}) >= len({e["id"] for e in published})

    wait_for("every event handled", all_handled, runner, timeout=60)
    ids = [r["id"] for r in recorded(workdir)]
    assert sorted(ids) == sorted({e["id"] for e in published})  # each handled once, none missing
    for dialog, count in expected.items():
        status, row = get_dialog(runner, dialog)
        assert status == 200
        assert row["eventsApplied"] == count, dialog


def test_subscribe_validate_deliver_and_survive_a_short_outage_through_retries(
    sim: Simulator, azurite: Azurite, app: Callable[[], Runner], workdir: Path
) -> None:
    runner = app()
    subscribe(sim, azurite, runner)
    send(sim, azurite, 30, seed=1)
    wait_for("30 deliveries", lambda: len(sim.delivery.delivered) == 30, runner)

    runner.stop()  # the outage: Altinn's POSTs are refused
    send(sim, azurite, 10, seed=2)
    wait_for("failed attempts", lambda: sum(a.status is None for a in sim.delivery.attempts) >= 20, runner)
    runner = app()
    wait_for("40 deliveries", lambda: len(sim.delivery.delivered) == 40, runner, timeout=30)
    retried = [d for d in sim.delivery.delivered if d["attempt"] > 1]
    assert len(retried) == 10  # every event sent during the outage arrived on a retry
    assert sim.delivery.dead_letters == []
    assert_each_event_applied_once(sim, runner, workdir)


def test_a_longer_outage_outlasts_the_retries_and_catch_up_closes_the_gap(
    sim: Simulator, azurite: Azurite, app: Callable[[], Runner], workdir: Path
) -> None:
    runner = app()
    subscribe(sim, azurite, runner)
    send(sim, azurite, 8, seed=3)
    wait_for("8 deliveries", lambda: len(sim.delivery.delivered) == 8, runner)

    runner.stop()
    sim.delivery.time_scale = 0.00002  # Altinn's 1.5 days of retries in about 3 s
    send(sim, azurite, 12, seed=4)
    wait_for("12 dead letters", lambda: len(sim.delivery.dead_letters) == 12, runner, timeout=30)
    assert {d["attempts"] for d in sim.delivery.dead_letters} == {12}

    runner = app()
    code, result, err = dpctl(sim, azurite, "catch-up", "--resource", RESOURCE, "--since", "0", "--json")
    assert code == 0, err
    assert (result["read"], result["accepted"], result["rejected"]) == (20, 20, 0)  # 8 again: harmless duplicates
    assert result["cursor"] == sim.events.all()[-1]["id"]
    assert_each_event_applied_once(sim, runner, workdir)
    duplicates = [x for x in runner.process_lines() if x.get("outcome") == "duplicate"]
    assert len(duplicates) == 8


def test_catch_up_reads_a_stream_with_invisible_events_to_its_end(
    sim: Simulator, azurite: Azurite, app: Callable[[], Runner], workdir: Path
) -> None:
    """Altinn reads ``size`` events, then drops those the caller may not see (EV-LIMIT): with a share of the
    stream invisible, pages of 5 come back short in the middle of the stream, and catch-up reads on to the
    empty page that ends it. Invisible events are neither polled nor pushed (DLV-AUTHORIZED). Never a whole
    page of them in a row: Altinn would answer that as it answers the end (``test_contract.py``)."""
    runner = app()
    subscribe(sim, azurite, runner)
    runner.stop()  # a longer outage: the stream reaches the app only through catch-up
    sim.delivery.time_scale = 0.00002
    sim.events.invisible_share = 0.3  # stable per event id; the seeded traffic makes the same ids every run
    code, report, err = dpctl(
        sim, azurite, "send", "--to-sim", "--count", "30", "--seed", "6", "--concurrency", "1", "--json"
    )
    assert (code, report["statuses"]) == (0, {"200": 30}), err
    stream = [e for e in sim.events.all() if e.get("resource") == RESOURCE]
    seen = [sim.events.visible(e) for e in stream]
    visible = [e for e, shown in zip(stream, seen, strict=True) if shown]
    hidden = {e["id"] for e in stream} - {e["id"] for e in visible}
    runs = "".join("x" if not shown else "." for shown in seen)
    assert len(hidden) >= 5, runs  # a share of the stream is invisible
    assert "xxxxx" not in runs, runs  # never five in a row
    wait_for("the visible pushes dead-lettered", lambda: len(sim.delivery.dead_letters) == len(visible), runner)
    assert {s["eventId"] for s in sim.delivery.skipped} == hidden  # not authorized: never pushed
    time.sleep(sim.events.hold_back)  # the events API holds new events back 30 s, time-scaled

    runner = app()
    code, result, err = dpctl(sim, azurite, "catch-up", "--resource", RESOURCE, "--since", "0", "--size", "5", "--json")
    assert code == 0, err
    assert (result["read"], result["accepted"], result["cursor"]) == (len(visible), len(visible), visible[-1]["id"])
    assert sim.events.requests > len(visible) // 5 + 1  # short pages mid-stream: more than full pages would need

    def all_visible_handled() -> bool:
        return {r["id"] for r in recorded(workdir)} >= {e["id"] for e in visible}

    wait_for("every visible event handled", all_visible_handled, runner, timeout=60)
    ids = [r["id"] for r in recorded(workdir)]
    assert sorted(ids) == sorted(e["id"] for e in visible)  # each visible event once, no invisible one


def test_make_run_with_altinn_sim_starts_the_simulator_beside_the_app_and_stops_it(tmp_path: Path) -> None:
    """The whole loop's first line (docs/cli.md), also in the README's quick start, ``make run ARGS=--altinn-sim``:
    make runs ``devtools.dev`` with those arguments (``test_make_run.py`` checks the Makefile's recipe); here on free
    ports."""
    [first, *rest] = docs_support.commands(docs_support.section("## The whole loop on one machine").text)
    assert first == "make run ARGS=--altinn-sim"
    assert first in docs_support.commands(docs_support.section("## Quick start").text)
    assert rest[0] == "source .venv/bin/activate"  # then dpctl, in another shell
    port, sim_port = free_port(), free_port()
    log = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}
    env["ALTINN_SIM_HOME"] = str(tmp_path / "sim-home")  # not the developer's own dev client
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.dev", "--port", str(port), "--altinn-sim", "--sim-port", str(sim_port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while "dpctl status" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert f"subscriptions create --endpoint http://localhost:{port}/api/events" in text
        request = urllib.request.Request(f"http://127.0.0.1:{sim_port}/maskinporten/token", data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert json.loads(refused.value.read())["error"] == "unsupported_grant_type"  # the fake Maskinporten answers
        client = json.loads((tmp_path / "sim-home" / "client.json").read_text())
        assert client["sim_url"] == f"http://127.0.0.1:{sim_port}"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text()
    assert not port_open(sim_port)
