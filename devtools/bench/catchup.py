"""The catch-up timer's cost and lag, against the Altinn simulator's events API and Azurite.

Runs :func:`shared.functions.catchup.run` (what the timer runs) in-process: an idle run (nothing new),
a gap of events Altinn kept that the app never got, and a run over events the webhook already took
(duplicates). Requests are counted at the simulator; lag is computed from the period and the measured
run time. Figures and ratios only: nothing fails on a time.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from devtools.azurite import Azurite
from devtools.bench.common import table
from devtools.export_catalog import provision
from devtools.samples import sample_event
from shared import settings, storage
from shared.catchup import MAX_SIZE
from shared.functions import catchup
from shared.ingest import Policy, WebhookRequest, handle
from shared.sink import QueueSink

RESOURCE = "urn:altinn:resource:super-simple-service"
PERIOD_SECONDS = 300  # the timer's schedule: every 5 minutes
RUNS_PER_HOUR = 3600 // PERIOD_SECONDS


def _events(count: int) -> list[dict[str, object]]:
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return [sample_event("dialogporten.dialog.created.v1", time=now) for _ in range(count)]


def report(gap: int = 2500) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    rows: list[tuple[str, ...]] = [("run", "events read", "queued", "events requests", "tokens", "seconds", "ev/s")]
    with Azurite.on_free_ports() as azurite, Simulator(Options(port=0)) as sim:
        provision(azurite.connection_string)
        sim.register(Client("bench", "bench", key.public_key()))
        cfg = settings.load({
            settings.STORAGE_CONNECTION: azurite.connection_string,
            "ALTINN_ENVIRONMENT": sim.base_url,
            "MASKINPORTEN_CLIENT_ID": "bench",
            "MASKINPORTEN_KID": "bench",
            "MASKINPORTEN_KEY": pem.decode(),
            "CATCHUP_RESOURCES": RESOURCE,
        })  # fmt: skip
        clients = storage.build(cfg)

        def run(what: str) -> tuple[float, dict[str, object]]:
            tokens_before = sim.tokens.issued
            started = time.perf_counter()
            (summary,) = catchup.run(cfg, clients)
            elapsed = time.perf_counter() - started
            read, queued = int(str(summary["read"])), int(str(summary["accepted"]))
            rows.append((
                what, str(read), str(queued), str(summary["requests"]), str(sim.tokens.issued - tokens_before),
                f"{elapsed:.2f}", f"{read / elapsed:.0f}" if read else "-",
            ))  # fmt: skip
            return elapsed, summary

        run("first run, nothing kept yet")
        idle_elapsed, idle = run("idle (nothing new)")
        for event in _events(gap):
            sim.events.append(event)
        gap_elapsed, gap_summary = run(f"a gap of {gap} events")
        again = _events(gap // 5)
        sink = QueueSink(clients)
        for event in again:  # the webhook takes them first, as Altinn's push would have
            body = json.dumps(event).encode("utf-8")
            handle(WebhookRequest("POST", {"content-type": "application/json"}, body, "bench"), sink, Policy())
            sim.events.append(event)
        dup_elapsed, _ = run(f"{gap // 5} events the webhook already took (queued again)")
    idle_requests = int(str(idle["requests"]))
    per_hour = RUNS_PER_HOUR * idle_requests
    return "\n".join(
        [
            "## Catch-up timer (against the Altinn simulator)",
            "",
            f"`catch_up_events` as the timer runs it, one resource, pages of {MAX_SIZE}, Azurite in memory:",
            "",
            table(rows),
            "",
            f"Idle cost: {idle_requests} events request a run, {per_hour} an hour per resource "
            f"(every {PERIOD_SECONDS // 60} minutes), plus one Maskinporten token and one Altinn exchange per "
            "token lifetime (the simulator's Altinn token lives 30 minutes: about 2 of each an hour).",
            f"Gap cost: {gap_summary['requests']} events requests for {gap} events (one per {MAX_SIZE}, and one more "
            "when the last page is full); "
            f"{gap / gap_elapsed:.0f} events/s queued, so the gap was on the queues {gap_elapsed:.1f} s into the run.",
            f"Lag: at most one period plus the run: {PERIOD_SECONDS} s + {gap_elapsed:.1f} s for this gap "
            f"({(PERIOD_SECONDS + gap_elapsed) / 60:.1f} min); an idle run takes {idle_elapsed * 1000:.0f} ms.",
            f"Duplicates cost as much as new events to queue ({gap // 5 / dup_elapsed:.0f} events/s); processing then "
            "acknowledges each as `duplicate` after one idempotency read. Events are queued one at a time through "
            "the webhook's core, as `dpctl catch-up` does: a run of at most 200 s queues roughly "
            f"{int(200 * gap / gap_elapsed):,} events here; a larger backlog continues in the next run.",
            "",
        ]
    )
