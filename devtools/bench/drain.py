"""Handler-side benchmarks: how fast the queue functions drain a queue through the local runner, beside a raw
receive + delete loop, in one run with interleaved rounds; storage requests and runner CPU per event; peak memory;
the first invocation of a queue function in a fresh process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from azure.storage.queue import QueueClient

from devtools.azurite import ROOT, Azurite, free_port
from devtools.bench.common import CountedRequests, Rate, run_concurrently, spread, table
from devtools.samples import sample_event
from shared import settings
from shared.events import catalog, messages
from shared.stores import clients as storage

ROW = catalog.BY_TYPE["dialogporten.dialog.activity.information.v1"]

#: The paths measured, in the order each round runs them.
PATHS: dict[str, str] = {
    "raw": "raw receive (messages_per_page = batch) + delete",
    "noop": "runner, no-op function",
    "state": "runner, the app: dialog state (default path)",
    "effects": "runner, the app + a handler with outside effects",
}


def _host_queues() -> dict[str, int]:
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    return {
        "batch": int(queues["batchSize"]),
        "concurrency": int(queues["batchSize"]) + int(queues["newBatchThreshold"]),
    }


def fill(client: QueueClient, count: int, dialogs: int) -> None:
    """``count`` events of one type spread over ``dialogs`` dialogs, sent with 16 threads."""
    dialog_ids = [str(uuid.uuid4()) for _ in range(dialogs)]
    bodies = [messages.serialize_event(sample_event(ROW, dialog_id=dialog_ids[i % dialogs])) for i in range(count)]
    run_concurrently(bodies, lambda b: client.send_message(b, time_to_live=-1), 16)


@dataclass
class Drained:
    rate: Rate
    requests: int
    cpu_seconds: float = 0.0
    peak_mib: float = float("nan")

    @property
    def requests_per_event(self) -> float:
        return self.requests / self.rate.count

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.rate.count * 1e6


def raw_drain(client: QueueClient, count: int, concurrency: int, batch: int) -> Drained:
    """The floor: ``concurrency`` threads each receiving a page of ``batch`` in one request and deleting them."""
    done = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal done
        while True:
            with lock:
                if done >= count:
                    return
            got = list(client.receive_messages(messages_per_page=batch, max_messages=batch, visibility_timeout=60))
            if not got:
                time.sleep(0.05)
                continue
            for message in got:
                client.delete_message(message)
            with lock:
                done += len(got)

    with CountedRequests() as counted:
        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    return Drained(Rate(count, elapsed), counted.count)


def _proc_status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _sent(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/bench/requests", timeout=10) as response:
        return int(json.loads(response.read())["sent"])


def runner_drain(conn: str, client: QueueClient, count: int, app: str) -> Drained:
    """``python -m devtools.runner --app devtools.bench.apps:<app>`` on a full queue, until it is empty."""
    env = {**os.environ, settings.STORAGE_CONNECTION: conn, "PYTHONUNBUFFERED": "1"}
    port = free_port()
    with tempfile.TemporaryFile() as out:
        command = [sys.executable, "-m", "devtools.runner", "--port", str(port), "--app", f"devtools.bench.apps:{app}"]
        command += ["--functions", ROW.function_name, "bench_requests"]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
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
            sent_before, cpu_before = _sent(port), _cpu_seconds(process.pid)
            while int(client.get_queue_properties().approximate_message_count or 0) > 0:
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            cpu = _cpu_seconds(process.pid) - cpu_before
            sent = _sent(port) - sent_before - 1  # reading the counter counts once
            peak = _proc_status(process.pid, "VmHWM:")
        finally:
            process.terminate()
            process.wait(timeout=60)
        out.seek(0)
        log = out.read()
    if app != "noop":
        handled = log.count(b'"outcome":"handled"')
        if handled != count:
            raise RuntimeError(f"expected {count} handled events, the runner logged {handled}")
    return Drained(Rate(count, elapsed), sent, cpu, peak)


def _fresh_clients(azurite: Azurite) -> storage.StorageClients:
    return storage.build(settings.load({settings.STORAGE_CONNECTION: azurite.connection_string}))


def measure(path: str, events: int, dialogs: int) -> Drained:
    """One measurement on a fresh Azurite: an in-memory Azurite that has churned through thousands of messages
    and entities slows down unevenly, which would blur the comparison."""
    host = _host_queues()
    with Azurite.on_free_ports() as azurite:
        clients = _fresh_clients(azurite)
        client = clients.queue(ROW.queue)
        client.create_queue()
        for table_name in ("dialogs", "idempotency"):  # as in Azure, where Bicep creates them
            clients.tables.create_table_if_not_exists(table_name)
        fill(client, events, dialogs)
        if path == "raw":
            return raw_drain(client, events, host["concurrency"], host["batch"])
        return runner_drain(azurite.connection_string, client, events, path)


@dataclass
class Series:
    runs: list[Drained] = field(default_factory=list)


def first_invocation(runs: int = 3) -> dict[str, float]:
    """Milliseconds, in a fresh interpreter: ``import function_app``, then the first and the second queue
    invocation (the first pays for the storage and table SDKs, the event models and the handlers)."""
    script = (
        "import time, uuid, json\n"
        "t=time.perf_counter(); import function_app; imported=(time.perf_counter()-t)*1000\n"
        "from azure.functions.queue import QueueMessage\n"
        "from devtools.samples import sample_event\n"
        "from shared.events import catalog, messages\n"
        "row = catalog.BY_TYPE['dialogporten.dialog.activity.information.v1']\n"
        "fns = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}\n"
        "fn = fns[row.function_name]\n"
        "def one():\n"
        "    body = messages.serialize_event(sample_event(row)).encode()\n"
        "    t = time.perf_counter(); fn(QueueMessage(id=str(uuid.uuid4()), body=body, dequeue_count=1))\n"
        "    return (time.perf_counter() - t) * 1000\n"
        "first = one(); second = one()\n"
        "print(json.dumps({'import': imported, 'first': first, 'second': second}))\n"
    )
    results: dict[str, list[float]] = {"import": [], "first": [], "second": []}
    with Azurite.on_free_ports() as azurite:
        clients = _fresh_clients(azurite)
        for table_name in ("dialogs", "idempotency"):
            clients.tables.create_table_if_not_exists(table_name)
        env = {**os.environ, settings.STORAGE_CONNECTION: azurite.connection_string}
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
            )
            for key, value in json.loads(out.stdout.strip().splitlines()[-1]).items():
                results[key].append(value)
    return {key: statistics.median(values) for key, values in results.items()}


def report(events: int = 1000, dialogs: int = 100, rounds: int = 3, memory_events: int = 10_000) -> str:
    host = _host_queues()
    series = {path: Series() for path in PATHS}
    for _ in range(rounds):  # interleaved: each round runs every path once, so drift hits them alike
        for path in PATHS:
            series[path].runs.append(measure(path, events, dialogs))
    raw_rates = [run.rate.per_second for run in series["raw"].runs]
    rows = [("path", "events/s min / median / max", "ratio to raw (same round) min / median / max", "requests/event",
             "runner CPU µs/event")]  # fmt: skip
    for path, label in PATHS.items():
        runs = series[path].runs
        rates = [run.rate.per_second for run in runs]
        ratios = [rate / raw for rate, raw in zip(rates, raw_rates, strict=True)]
        cpu = "-" if path == "raw" else f"{statistics.median([r.cpu_us_per_event for r in runs]):.0f}"
        rows.append((label, spread(rates, ".0f"), spread(ratios, ".2f"),
                     f"{statistics.median([r.requests_per_event for r in runs]):.2f}", cpu))  # fmt: skip
    lines = [
        "## Handlers (drain)",
        "",
        f"{events} `{ROW.type}` events over {dialogs} dialogs, one queue, concurrency {host['concurrency']} "
        f"(host.json batchSize {host['batch']} + newBatchThreshold), {rounds} interleaved rounds, "
        "each measurement on a fresh Azurite:",
        "",
        table(rows),
        "",
    ]
    big = measure("state", memory_events, max(dialogs, memory_events // 10))
    lines += [
        f"Runner draining {memory_events} events on the default path: {big.rate.per_second:.0f} events/s, "
        f"peak RSS {big.peak_mib:.0f} MiB, {big.requests_per_event:.2f} requests/event.",
        "",
    ]
    cold = first_invocation()
    lines += [
        "First queue invocation in a fresh interpreter (median of 3):",
        "",
        table(
            [
                ("step", "ms"),
                ("import function_app", f"{cold['import']:.0f}"),
                ("first invocation", f"{cold['first']:.0f}"),
                ("second invocation", f"{cold['second']:.0f}"),
                ("first beyond the second", f"+{cold['first'] - cold['second']:.0f}"),
            ]
        ),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
