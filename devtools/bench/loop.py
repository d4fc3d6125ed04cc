"""Traffic benchmarks with ``dpctl send``'s generator: realistic dialog lifecycles over real HTTP to the
local runner, and the whole Altinn loop through the simulator (publish, push, webhook, queue, handler)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import IO

from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from devtools.azurite import ROOT, Azurite, free_port
from devtools.bench.common import table
from devtools.cli import send
from devtools.export_catalog import provision
from shared import settings
from shared.altinn import maskinporten
from shared.altinn.http import HttpClient


@contextlib.contextmanager
def _runner(conn: str) -> Iterator[tuple[str, IO[bytes]]]:
    """The local runner with every function, on a free port; its base URL and its log."""
    env = {**os.environ, settings.STORAGE_CONNECTION: conn, "PYTHONUNBUFFERED": "1"}
    port = free_port()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.runner", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                out.seek(0)
                if b"Host started" in out.read():
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    out.seek(0)
                    raise RuntimeError(out.read().decode(errors="replace")[-2000:])
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}/api", out
        finally:
            process.terminate()
            process.wait(timeout=60)


def _outcomes(log: IO[bytes]) -> tuple[int, int]:
    log.seek(0)
    text = log.read()
    return text.count(b'"outcome":"handled"'), text.count(b'"outcome":"duplicate"')


def _wait_settled(log: IO[bytes], handled: int, settled: int, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, duplicates = _outcomes(log)
        if done >= handled and done + duplicates >= settled:
            return time.perf_counter()
        time.sleep(0.05)
    raise TimeoutError(f"only {_outcomes(log)} of {handled} handled within {timeout} s")


def _row(what: str, result: send.Result, elapsed: float) -> tuple[str, ...]:
    s = send.summary(result, elapsed)
    statuses = ", ".join(f"{k}: {v}" for k, v in s["statuses"].items())
    return (
        what,
        str(s["sent"]),
        f"{s['perSecond']:.0f}",
        f"{s['latencyMs']['p50']:.1f}",
        f"{s['latencyMs']['p99']:.1f}",
        statuses,
    )


def report(events: int = 1000) -> str:
    lines = ["## Traffic (`dpctl send`)", ""]
    rows: list[tuple[str, ...]] = [("run", "sent", "ev/s", "p50 ms", "p99 ms", "statuses")]
    with Azurite.on_free_ports() as azurite:
        provision(azurite.connection_string)
        with _runner(azurite.connection_string) as (base, log):
            rates = {}
            for concurrency in (1, 16):
                plan = send.Plan(count=events, concurrency=concurrency, seed=concurrency)
                result, elapsed = send.run(f"{base}/events", plan)
                rates[concurrency] = len(result.latencies) / elapsed
                rows.append(_row(f"webhook over HTTP, concurrency {concurrency}", result, elapsed))
            _wait_settled(log, 2 * events, 2 * events)
    lines += [
        f"{events} events a run of whole dialog lifecycles, POSTed to the local runner's webhook:",
        "",
        table(rows),
        "",
        f"concurrency 16 / 1: {rates[16] / rates[1]:.2f}x",
        "",
    ]

    with Azurite.on_free_ports() as azurite, Simulator(Options(port=0, allow_http_loopback=True)) as sim:
        provision(azurite.connection_string)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        sim.register(Client("bench", "bench", key.public_key()))
        client = maskinporten.MaskinportenClient(
            "bench",
            maskinporten.SigningKey(key, "bench"),
            "altinn:events.subscribe altinn:serviceowner",
            maskinporten.simulated(sim.base_url),
        )
        token = maskinporten.AltinnExchange(client).token().access_token
        with _runner(azurite.connection_string) as (base, log):
            body = {"endPoint": f"{base}/events", "resourceFilter": "urn:altinn:resource:super-simple-service"}
            HttpClient(pool_size=1)(
                "POST",
                f"{sim.base_url}/events/api/v1/subscriptions",
                body=json.dumps(body).encode(),
                timeout=10,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            while not all(s.validated for s in sim.subscriptions.all()):
                time.sleep(0.05)
            plan = send.Plan(count=events, concurrency=16, duplicates=0.1, shuffle=True, seed=3)
            started = time.perf_counter()
            result, elapsed = send.run(f"{sim.base_url}/sim/publish", plan)
            unique = len(result.event_ids)
            finished = _wait_settled(log, unique, events)
            handled, duplicates = _outcomes(log)
    loop_rate = events / (finished - started)
    lines += [
        f"The whole loop: {events} events ({events - unique} of them duplicates, shuffled) published to the Altinn "
        "simulator, which pushes each one to the runner's webhook (4 delivery threads, a new connection a POST):",
        "",
        table(
            [
                ("what", "value"),
                ("published, ev/s", f"{len(result.latencies) / elapsed:.0f}"),
                ("published to handled, ev/s", f"{loop_rate:.0f}"),
                ("handled / duplicates acknowledged", f"{handled} / {duplicates}"),
                ("loop / direct webhook (concurrency 16)", f"{loop_rate / rates[16]:.2f}"),
            ]
        ),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
