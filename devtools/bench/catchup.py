"""Catch-up: its rate beside raw ``send_message`` at the same concurrency, and the timer's cost and lag.

Against the Altinn simulator's events API and Azurite, in-process:

- **Throughput.** A backlog of events read by :func:`shared.intake.catchup.catch_up` (pages of 1000, each handed
  to the intake, whose sends run ``SEND_CONCURRENCY`` at a time) beside the strongest raw baseline: the
  same messages, already serialised, sent with ``QueueClient.send_message`` by as many threads. Rounds are
  interleaved and repeated (min / median / max); requests are counted where they leave ``requests``, so
  requests per event is a figure noise cannot move.
- **The timer** (:func:`shared.functions.catchup.run`): an idle run, a gap of events Altinn kept that the
  app never got, and a run over events the webhook already took; lag from the period and the run.

Figures and ratios only: nothing fails on a time.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from devtools.azurite import Azurite
from devtools.bench.common import CountedRequests, Rate, run_concurrently, spread, table
from devtools.export_catalog import provision
from devtools.samples import sample_event
from shared import settings
from shared.altinn import clients as enrichment
from shared.altinn.events_api import MAX_SIZE, EventsApi
from shared.events import catalog, messages
from shared.functions import catchup
from shared.intake.catchup import catch_up
from shared.intake.plan import SEND_CONCURRENCY, Policy, WebhookRequest, handle
from shared.stores import clients as storage
from shared.stores.sink import QueueSink

RESOURCE = "urn:altinn:resource:super-simple-service"
CREATED = "dialogporten.dialog.created.v1"
PERIOD_SECONDS = 300  # the timer's schedule: every 5 minutes
RUNS_PER_HOUR = 3600 // PERIOD_SECONDS
GOAL = 0.7


def _events(count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return [sample_event(CREATED, time=now) for _ in range(count)]


def _setup(sim: Simulator, azurite: Azurite) -> settings.Settings:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    provision(azurite.connection_string)
    sim.register(Client("bench", "bench", key.public_key()))
    return settings.load({
        settings.STORAGE_CONNECTION: azurite.connection_string,
        "ALTINN_ENVIRONMENT": sim.base_url,
        "MASKINPORTEN_CLIENT_ID": "bench",
        "MASKINPORTEN_KID": "bench",
        "MASKINPORTEN_KEY": pem.decode(),
        "CATCHUP_RESOURCES": RESOURCE,
    })  # fmt: skip


def throughput(backlog: int, rounds: int) -> list[str]:
    """Catch-up over ``backlog`` events beside raw sends of the same messages, ``rounds`` interleaved rounds."""
    raw_rates: list[float] = []
    catchup_rates: list[float] = []
    raw_requests: list[float] = []
    catchup_requests: list[float] = []
    pages: list[int] = []
    # A backlog, read at once: without the events API's 30 s hold-back.
    with Azurite.on_free_ports() as azurite, Simulator(Options(port=0, events_hold_back=0)) as sim:
        cfg = _setup(sim, azurite)
        clients = storage.build(cfg)
        events = _events(backlog)
        for event in events:
            sim.events.append(event)
        bodies = [messages.serialize_event(event) for event in events]
        queue = clients.queue(catalog.queue_name_for(CREATED))
        sink = QueueSink(clients)
        api = EventsApi(sim.base_url, enrichment.events_tokens(cfg.maskinporten))
        api.tokens.token()  # the token is fetched once per half hour: not part of a round
        logging.disable(logging.CRITICAL)  # log handlers cost the same for both; measure the work
        try:
            for _ in range(rounds):
                queue.clear_messages()  # an emulator slows as a queue grows: each run starts empty
                with CountedRequests() as counted:
                    rate = run_concurrently(bodies, lambda b: queue.send_message(b, time_to_live=-1), SEND_CONCURRENCY)
                raw_rates.append(rate.per_second)
                raw_requests.append(counted.count / backlog)
                queue.clear_messages()
                with CountedRequests() as counted:
                    started = time.perf_counter()
                    result = catch_up(RESOURCE, "0", api=api, sink=sink, policy=Policy())
                    elapsed = time.perf_counter() - started
                if result.counts["accepted"] != backlog:
                    raise RuntimeError(f"catch-up queued {result.counts['accepted']} of {backlog}")
                catchup_rates.append(Rate(backlog, elapsed).per_second)
                catchup_requests.append((counted.count - result.requests) / backlog)
                pages.append(result.requests)
        finally:
            logging.disable(logging.NOTSET)
    ratios = [c / r for c, r in zip(catchup_rates, raw_rates, strict=True)]
    rows = [
        ("path", "events/s min / median / max", "storage requests/event", "ratio to raw (same round)"),
        (f"raw send_message, {SEND_CONCURRENCY} threads", spread(raw_rates, ".0f"),
         f"{statistics.median(raw_requests):.2f}", "1"),
        ("catch-up (read, validate, route, send)", spread(catchup_rates, ".0f"),
         f"{statistics.median(catchup_requests):.2f}", spread(ratios, ".2f")),
    ]  # fmt: skip
    return [
        f"Throughput: a backlog of {backlog} events in the simulator, read in pages of {MAX_SIZE} "
        f"({statistics.median(pages):.0f} events requests a run, the last an empty page), {rounds} interleaved "
        f"rounds, the queue emptied before each run; the raw baseline sends the same serialised messages with "
        f"{SEND_CONCURRENCY} threads:",
        "",
        table(rows),
        "",
        f"Catch-up / raw, median of the rounds: {statistics.median(ratios):.2f} (goal >= {GOAL}).",
        "",
    ]


def timer_costs(gap: int) -> list[str]:
    rows: list[tuple[str, ...]] = [("run", "events read", "queued", "events requests", "tokens", "seconds", "ev/s")]
    # A backlog, read at once: without the events API's 30 s hold-back.
    with Azurite.on_free_ports() as azurite, Simulator(Options(port=0, events_hold_back=0)) as sim:
        cfg = _setup(sim, azurite)
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
    return [
        f"`catch_up_events` as the timer runs it, one resource, pages of {MAX_SIZE}, Azurite in memory:",
        "",
        table(rows),
        "",
        f"Idle cost: {idle_requests} events request a run (the empty page that says the stream is read), "
        f"{per_hour} an hour per resource (every {PERIOD_SECONDS // 60} minutes), plus one Maskinporten token "
        "and one Altinn exchange per token lifetime (the simulator's Altinn token lives 30 minutes: about 2 of "
        "each an hour).",
        f"Gap cost: {gap_summary['requests']} events requests for {gap} events (one per {MAX_SIZE}, and the "
        f"empty page that ends the stream); {gap / gap_elapsed:.0f} events/s queued, so the gap was on the "
        f"queues {gap_elapsed:.1f} s into the run.",
        f"Lag: at most one period plus the run: {PERIOD_SECONDS} s + {gap_elapsed:.1f} s for this gap "
        f"({(PERIOD_SECONDS + gap_elapsed) / 60:.1f} min); an idle run takes {idle_elapsed * 1000:.0f} ms.",
        f"Duplicates cost as much as new events to queue ({gap // 5 / dup_elapsed:.0f} events/s); processing then "
        "acknowledges each as `duplicate`. A run of at most 200 s queues roughly "
        f"{int(200 * gap / gap_elapsed):,} events here; a larger backlog continues in the next run.",
        "",
    ]


def report(gap: int = 2500, backlog: int = 3000, rounds: int = 3) -> str:
    lines = ["## Catch-up (against the Altinn simulator)", ""]
    lines += throughput(backlog, rounds)
    lines += timer_costs(gap)
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
