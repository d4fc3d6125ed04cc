"""Webhook benchmarks: CPU per event, import time, and throughput into queues beside raw send_message."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass

import azure.functions as func
from azure.core.exceptions import ResourceExistsError

from devtools.azurite import ROOT, Azurite
from devtools.bench.common import Rate, median, run_concurrently, spread, table
from devtools.samples import sample_event
from shared import settings
from shared.events import catalog, messages
from shared.events.cloudevent import CloudEvent
from shared.functions import webhook as webhook_module
from shared.intake import plan as ingest
from shared.intake.plan import Policy, WebhookRequest
from shared.stores import clients as storage


class _NullSink:
    def put(self, queue: str, body: str, event: CloudEvent) -> None:
        return None


def cpu_per_event(repeat: int = 7, number: int = 5000) -> dict[str, float]:
    """Microseconds per event, best of ``repeat`` runs: the pure core without any I/O."""
    body = json.dumps(sample_event("dialogporten.dialog.activity.signature-provided.v1")).encode()
    request = WebhookRequest("POST", {"content-type": "application/json; charset=utf-8"}, body)
    policy = Policy()
    sink = _NullSink()
    logging.disable(logging.CRITICAL)  # logging cost depends on the handler attached, not on this code
    # The same body every time lets the time parser's cache answer; real events differ (id, time, dialog).
    types = [row.type for row in catalog.CATALOG]
    distinct = [
        WebhookRequest("POST", request.headers, json.dumps(sample_event(types[i % len(types)])).encode())
        for i in range(number)
    ]

    def each(step: Callable[[WebhookRequest], object]) -> float:
        return min(timeit.repeat(lambda: [step(r) for r in distinct], repeat=repeat, number=1)) / number

    try:
        plan = min(timeit.repeat(lambda: ingest.plan(request, policy), repeat=repeat, number=number)) / number
        whole = min(timeit.repeat(lambda: ingest.handle(request, sink, policy), repeat=repeat, number=number)) / number
        loads = min(timeit.repeat(lambda: json.loads(body), repeat=repeat, number=number)) / number
        plan_each = each(lambda r: ingest.plan(r, policy))
        whole_each = each(lambda r: ingest.handle(r, sink, policy))
    finally:
        logging.disable(logging.NOTSET)
    return {
        "json.loads alone": loads * 1e6,
        "parse+validate+route": plan * 1e6,
        "whole handle (serialize, no I/O)": whole * 1e6,
        f"parse+validate+route, {number} distinct events": plan_each * 1e6,
        f"whole handle, {number} distinct events": whole_each * 1e6,
    }


def import_times(runs: int = 5) -> dict[str, float]:
    """Milliseconds to import, each in a fresh interpreter; median of ``runs``."""
    snippets = {
        "import azure.functions": "import azure.functions",
        "import function_app": "import function_app",
    }
    out: dict[str, float] = {}
    for name, code in snippets.items():
        prog = f"import time; t=time.perf_counter(); {code}; print((time.perf_counter()-t)*1000)"
        samples = [
            float(
                subprocess.run(
                    [sys.executable, "-c", prog], cwd=ROOT, capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(runs)
        ]
        out[name] = median(samples)
    return out


@dataclass(frozen=True)
class Side:
    """One run of one side: its rate and the client process's CPU per event (all threads)."""

    rate: Rate
    cpu_us: float


def throughput(
    conn: str, events_per_run: int, concurrencies: tuple[int, ...] = (1, 16), rounds: int = 5
) -> list[tuple[int, list[Side], list[Side]]]:
    """Events/s into queues: the webhook function in-process vs raw ``send_message`` of the same bodies.

    Interleaved rounds, the order alternating (raw first, then the webhook first), every queue emptied
    before each run: Azurite slows down as its queues fill, so neither side may always meet the fuller ones.
    """
    clients = storage.build(settings.load({settings.STORAGE_CONNECTION: conn}))
    for row in catalog.CATALOG:
        with contextlib.suppress(ResourceExistsError):
            clients.queues.create_queue(row.queue)
    os.environ[settings.STORAGE_CONNECTION] = conn
    settings.current.cache_clear()
    storage.current.cache_clear()
    webhook_module.reset()
    fn: Callable[[func.HttpRequest], func.HttpResponse] = webhook_module.webhook.build().get_user_function()
    logging.disable(logging.CRITICAL)

    queue_clients = {row.queue: clients.queue(row.queue) for row in catalog.CATALOG}
    results = []
    for concurrency in concurrencies:

        def raw(pair: tuple[dict[str, object], bytes]) -> None:
            event, _ = pair
            queue_clients[catalog.queue_name_for(str(event["type"]))].send_message(
                messages.serialize_event(event), time_to_live=-1
            )

        def hook(pair: tuple[dict[str, object], bytes]) -> None:
            _, body = pair
            response = fn(
                func.HttpRequest("POST", "http://x/api/events", headers={"Content-Type": "application/json"}, body=body)
            )
            if response.status_code != 200:
                raise RuntimeError(response.get_body())

        def run(work: Callable[[tuple[dict[str, object], bytes]], None], concurrency: int = concurrency) -> Side:
            for client in queue_clients.values():
                client.clear_messages()
            events = [sample_event(catalog.CATALOG[i % len(catalog.CATALOG)]) for i in range(events_per_run)]
            pairs = [(event, json.dumps(event).encode()) for event in events]
            cpu = time.process_time()
            rate = run_concurrently(pairs, work, concurrency)
            return Side(rate, (time.process_time() - cpu) / events_per_run * 1e6)

        run(raw), run(hook)  # warm: connections, the models the webhook checks against
        raw_sides, hook_sides = [], []
        for number in range(rounds):
            if number % 2 == 0:
                raw_sides.append(run(raw))
                hook_sides.append(run(hook))
            else:
                hook_sides.append(run(hook))
                raw_sides.append(run(raw))
        results.append((concurrency, raw_sides, hook_sides))
    logging.disable(logging.NOTSET)
    return results


def report(events_per_run: int = 600, rounds: int = 5) -> str:
    lines = ["## Webhook (ingest)", ""]
    cpu = cpu_per_event()
    lines += [
        "CPU per event, no I/O (best of 7 runs of 5000; the first three repeat one event):",
        "",
        table([("step", "µs/event")] + [(k, f"{v:.1f}") for k, v in cpu.items()]),
        "",
    ]
    imports = import_times()
    ratio = imports["import function_app"] / imports["import azure.functions"]
    lines += ["Import time, fresh interpreter (median of 5):", "",
              table([("what", "ms")] + [(k, f"{v:.0f}") for k, v in imports.items()]),
              f"\nfunction_app / azure.functions: {ratio:.2f}x", ""]  # fmt: skip
    with Azurite.on_free_ports() as azurite:
        rows = [("concurrency", "raw send_message ev/s", "webhook function ev/s",
                 "ratio (goal >= 0.9) min / median / max", "client CPU µs/event raw / webhook")]  # fmt: skip
        for concurrency, raw, hook in throughput(azurite.connection_string, events_per_run, rounds=rounds):
            ratios = [h.rate.per_second / r.rate.per_second for r, h in zip(raw, hook, strict=True)]
            rows.append(
                (
                    str(concurrency),
                    spread([r.rate.per_second for r in raw], ".0f"),
                    spread([h.rate.per_second for h in hook], ".0f"),
                    spread(ratios, ".2f"),
                    f"{median([r.cpu_us for r in raw]):.0f} / {median([h.cpu_us for h in hook]):.0f}",
                )
            )
        lines += [
            f"Into queues on Azurite, {events_per_run} events a run, {rounds} interleaved rounds (the order "
            "alternating, every queue emptied before each run), min / median / max:",
            "",
            table(rows),
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
