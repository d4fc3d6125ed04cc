"""End to end through the local runner: webhook POST -> queue -> typed handler -> dialog row -> GET.

Each test starts ``python -m devtools.runner`` against the session's Azurite
with a temporary host.json (short visibility timeout, fast polling) and a short
idempotency claim timeout. A ``sitecustomize`` on the runner's PYTHONPATH adds
a user handler, the way a user would, that records what it saw to a file, and
can be told to fail or to hang (for the poison and killed-worker tests).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError

from devtools.azurite import Azurite, free_port
from devtools.samples import sample_event
from shared.catalog import BY_TYPE, CATALOG
from shared.dialogs import DialogStore
from shared.idempotency import INPROGRESS, IdempotencyStore
from shared.storage import StorageClients

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

ROOT = Path(__file__).resolve().parent.parent.parent
CLAIM_TIMEOUT = 4

SITECUSTOMIZE = """
import json, os, time
from shared.events import DialogportenEvent
from shared.handlers.registry import handles

@handles(DialogportenEvent)
def e2e_recorder(event):
    if event.type in os.environ.get("E2E_HANG_TYPES", "").split(","):
        with open(os.environ["E2E_RECORD"] + ".hanging", "a") as f:
            f.write(event.id + "\\n")
        time.sleep(600)
    if event.type in os.environ.get("E2E_FAIL_TYPES", "").split(","):
        raise RuntimeError("e2e: the case system is down")
    with open(os.environ["E2E_RECORD"], "a") as f:
        f.write(json.dumps({"model": type(event).__name__, "id": event.id, "dialog_id": event.dialog_id,
                            "activity_id": getattr(event, "activity_id", None)}) + "\\n")
"""

HOST_JSON = {
    "version": "2.0",
    "functionTimeout": "00:01:00",
    "extensions": {
        "queues": {
            "batchSize": 16,
            "newBatchThreshold": 8,
            "maxDequeueCount": 5,
            "visibilityTimeout": "00:00:01",
            "maxPollingInterval": "00:00:00.200",
            "messageEncoding": "base64",
        }
    },
}


#: The module to run (``-m``); overridable to try these tests against another runner build.
RUNNER_MODULE = os.environ.get("E2E_RUNNER_MODULE", "devtools.runner")


def _runner_missing() -> str | None:
    if RUNNER_MODULE == "devtools.runner" and not (ROOT / "devtools" / "runner" / "__main__.py").exists():
        return "devtools/runner is not in this checkout yet"
    if not (ROOT / "shared" / "functions" / "webhook.py").exists():
        return "shared/functions/webhook.py is not in this checkout yet"
    return None


@pytest.fixture(autouse=True)
def _needs_runner() -> None:
    missing = _runner_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)


@dataclass
class Runner:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def process_lines(self) -> list[dict[str, Any]]:
        prefix = "dialogporten.process "
        found = []
        for line in self.output().splitlines():
            at = line.find(prefix)
            if at >= 0:
                try:
                    found.append(json.loads(line[at + len(prefix) :]))
                except ValueError:
                    continue
        return found


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    (tmp_path / "host.json").write_text(json.dumps(HOST_JSON), encoding="utf-8")
    return tmp_path


@pytest.fixture
def start_runner(azurite: Azurite, workdir: Path, clients: StorageClients) -> Iterator[Callable[..., Runner]]:
    started: list[Runner] = []

    def start(*extra_args: str, **extra_env: str) -> Runner:
        port = free_port()
        log = workdir / f"runner-{len(started)}.log"
        env = {
            **os.environ,
            "AzureWebJobsStorage": azurite.connection_string,
            "IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS": str(CLAIM_TIMEOUT),
            "PYTHONPATH": os.pathsep.join([str(workdir / "site"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "E2E_RECORD": str(workdir / "record.jsonl"),
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        command = [
            sys.executable, "-m", RUNNER_MODULE, "--port", str(port),
            "--host-json", str(workdir / "host.json"), *extra_args,
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        runner = Runner(process, f"http://127.0.0.1:{port}/api", log)
        started.append(runner)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"runner exited with {process.returncode}:\n{runner.output()}")
            try:
                urllib.request.urlopen(f"{runner.base}/dialogs/{uuid.uuid4()}?code=e2e", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # any HTTP answer: it is serving
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"runner did not answer within 30 s:\n{runner.output()}")
        return runner

    yield start
    for runner in started:
        runner.stop()


def post(runner: Runner, event: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"{runner.base}/events?code=e2e",
        data=json.dumps(event).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def get_dialog(runner: Runner, dialog_id: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"{runner.base}/dialogs/{dialog_id}?code=e2e", timeout=10) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def recorded(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / "record.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def wait_for(what: str, check: Callable[[], Any], runner: Runner, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; runner output:\n{runner.output()[-4000:]}")


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
        assert seen[event["id"]]["model"] == row.model
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
    status = store.status(event["id"])
    assert status is not None
    assert status[0] == INPROGRESS
    claimed_until = status[1]
    doomed.kill()  # SIGKILL: no release, no completion

    survivor = start_runner("--message-lease", "2")
    [entry] = wait_for("the event to be handled by the survivor", lambda: recorded(workdir), survivor, timeout=60)
    assert entry["id"] == event["id"]
    handled = [x for x in survivor.process_lines() if x.get("outcome") == "handled"]
    assert len(handled) == 1
    assert "taken over" in handled[0].get("note", "")
    assert time.time() >= claimed_until.timestamp()
    state = DialogStore(clients.tables).get(event["resourceinstance"])
    assert state is not None
    assert (state.events_applied, state.activity_count) == (1, 1)
