"""The end-to-end harness: the local runner as a subprocess, real HTTP to it, and what its handlers saw.

Each test starts ``python -m devtools.runner`` against the session's Azurite
with a temporary host.json (short visibility timeout, fast polling) and a short
idempotency claim timeout. A ``sitecustomize`` on the runner's PYTHONPATH adds a
folder to the ``shared.handlers`` package, in which a user's handler module sits as
if dropped into ``shared/handlers/`` (found by the app's discovery like any other):
it records what it saw to a file, and can be told to fail or to hang (for the
poison and killed-worker tests).
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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.azurite import Azurite, free_port
from shared.stores.clients import StorageClients

ROOT = Path(__file__).resolve().parent.parent.parent
CLAIM_TIMEOUT = 4

SITECUSTOMIZE = """
import os
import shared.handlers

shared.handlers.__path__.append(os.path.join(os.path.dirname(__file__), "handlers"))
"""

#: A user's handler module, written as docs/handlers.md shows: ``site/handlers/e2e_recorder.py``.
RECORDER = """
import json, os, time
from shared.events import DialogportenEvent
from shared.handlers import handles

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
    (tmp_path / "site" / "handlers").mkdir(parents=True)
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    (tmp_path / "site" / "handlers" / "e2e_recorder.py").write_text(RECORDER, encoding="utf-8")
    (tmp_path / "host.json").write_text(json.dumps(HOST_JSON), encoding="utf-8")
    return tmp_path


@pytest.fixture
def start_runner(azurite: Azurite, workdir: Path, clients: StorageClients) -> Iterator[Callable[..., Runner]]:
    started: list[Runner] = []

    def start(*extra_args: str, port: int | None = None, **extra_env: str) -> Runner:
        """A runner on ``port`` (a free one unless given: a subscription's endpoint needs the same one again)."""
        port = port or free_port()
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
