"""Handler-side benchmarks: events/s drained by the queue functions through the local runner beside a raw
receive+delete loop, the per-event cost of the idempotency claim+complete, and the runner's peak memory."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from devtools.azurite import ROOT, Azurite, free_port
from devtools.bench.common import Rate, run_concurrently, table
from devtools.samples import sample_event
from shared import catalog, messages, settings, storage
from shared.idempotency import IdempotencyStore
from shared.storage import StorageClients

ROW = catalog.BY_TYPE["dialogporten.dialog.activity.information.v1"]


def _host_concurrency() -> int:
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    return int(queues["batchSize"]) + int(queues["newBatchThreshold"])


def fill(client: QueueClient, count: int, dialogs: int) -> None:
    """``count`` events of one type spread over ``dialogs`` dialogs, sent with 16 threads."""
    dialog_ids = [str(uuid.uuid4()) for _ in range(dialogs)]
    bodies = [messages.serialize_event(sample_event(ROW, dialog_id=dialog_ids[i % dialogs])) for i in range(count)]
    run_concurrently(bodies, lambda b: client.send_message(b, time_to_live=-1), 16)


def raw_drain(client: QueueClient, count: int, concurrency: int) -> Rate:
    """The floor: ``concurrency`` threads each receiving up to 16 and deleting them, nothing else."""
    done = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal done
        while True:
            with lock:
                if done >= count:
                    return
            batch = list(client.receive_messages(max_messages=16, visibility_timeout=60))
            if not batch:
                time.sleep(0.05)
                continue
            for message in batch:
                client.delete_message(message)
            with lock:
                done += len(batch)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Rate(count, time.perf_counter() - started)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def runner_drain(conn: str, client: QueueClient, count: int) -> tuple[Rate, float]:
    """Start ``python -m devtools.runner`` on a full queue; time until the queue is empty; its peak RSS."""
    env = {**os.environ, settings.STORAGE_CONNECTION: conn, "PYTHONUNBUFFERED": "1"}
    port = free_port()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.runner", "--port", str(port), "--functions", ROW.function_name],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            started = None
            deadline = time.monotonic() + 60
            while started is None and time.monotonic() < deadline:
                out.seek(0)
                if b"Host started" in out.read():
                    started = time.perf_counter()
                elif process.poll() is not None:
                    out.seek(0)
                    raise RuntimeError(out.read().decode(errors="replace")[-2000:])
                else:
                    time.sleep(0.02)
            if started is None:
                raise TimeoutError("the runner did not start")
            while int(client.get_queue_properties().approximate_message_count or 0) > 0:
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            peak = _peak_rss_mib(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=60)
        out.seek(0)
        handled = out.read().count(b'"outcome":"handled"')
    if handled != count:
        raise RuntimeError(f"expected {count} handled events, the runner logged {handled}")
    return Rate(count, elapsed), peak


def idempotency_cost(clients: StorageClients, count: int) -> tuple[float, float]:
    """Milliseconds per event: claim + complete, beside one plain ``upsert_entity`` (the storage floor)."""
    store = IdempotencyStore(clients.tables, claim_timeout_seconds=600, retention_seconds=3600)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    store.claim(str(uuid.uuid4()), event_type="warm", dialog_id=None)  # creates the table outside the timing
    started = time.perf_counter()
    for event_id in ids:
        store.complete(store.claim(event_id, event_type=ROW.type, dialog_id=None))
    per_event = (time.perf_counter() - started) / count * 1000
    with contextlib.suppress(ResourceExistsError):
        clients.tables.create_table("benchfloor")
    floor_table = clients.tables.get_table_client("benchfloor")
    started = time.perf_counter()
    for event_id in ids:
        floor_table.upsert_entity({"PartitionKey": event_id, "RowKey": "x", "v": 1})
    floor = (time.perf_counter() - started) / count * 1000
    return per_event, floor


def _fresh_clients(azurite: Azurite) -> StorageClients:
    return storage.build(settings.load({settings.STORAGE_CONNECTION: azurite.connection_string}))


def report(events: int = 2000, memory_events: int = 10_000, dialogs: int = 200) -> str:
    """Each measurement on a fresh Azurite: an in-memory Azurite that has churned through thousands of
    messages and entities slows down unevenly, which would blur the comparison."""
    concurrency = _host_concurrency()
    lines = ["## Handlers (drain)", ""]
    with Azurite.on_free_ports() as azurite:
        clients = _fresh_clients(azurite)
        client = clients.queue(ROW.queue)
        client.create_queue()
        fill(client, events, dialogs)
        raw = raw_drain(client, events, concurrency)
    with Azurite.on_free_ports() as azurite:
        client = _fresh_clients(azurite).queue(ROW.queue)
        client.create_queue()
        fill(client, events, dialogs)
        drained, _ = runner_drain(azurite.connection_string, client, events)
    lines += [
        f"{events} `{ROW.type}` events over {dialogs} dialogs, one queue, concurrency {concurrency} "
        "(host.json batchSize + newBatchThreshold):",
        "",
        table(
            [
                ("path", "events/s"),
                ("raw receive + delete", f"{raw.per_second:.0f}"),
                ("runner: decode, typed event, claim, dialog state, complete, delete", f"{drained.per_second:.0f}"),
                ("ratio", f"{drained.per_second / raw.per_second:.2f}"),
            ]
        ),
        "",
    ]
    with Azurite.on_free_ports() as azurite:
        claim_ms, floor_ms = idempotency_cost(_fresh_clients(azurite), 300)
    lines += [
        "Idempotency, sequential, 300 events:",
        "",
        table(
            [
                ("operation", "ms/event"),
                ("claim + complete", f"{claim_ms:.2f}"),
                ("one upsert_entity (floor)", f"{floor_ms:.2f}"),
            ]
        ),
        "",
    ]
    with Azurite.on_free_ports() as azurite:
        client = _fresh_clients(azurite).queue(ROW.queue)
        client.create_queue()
        fill(client, memory_events, max(dialogs, memory_events // 10))
        big, peak = runner_drain(azurite.connection_string, client, memory_events)
    summary = f"{big.per_second:.0f} events/s, peak RSS {peak:.0f} MiB"
    lines += [f"Runner draining {memory_events} events: {summary}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
