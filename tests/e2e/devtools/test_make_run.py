"""`make run`'s program, as a newcomer uses it: it starts, prints curls that work, and stops cleanly; a second one
on a taken port says so and stops at once. The docs' curls for the running app (the dialog state, a timer run now,
the validation ping) run as written against it."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devtools.azurite import free_port, port_open
from tests import docs_support
from tests.conftest import ROOT, app_functions

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]


def test_the_quick_start_command_is_this_program() -> None:
    """The README's `make run` is `python -m devtools.dev`, the program the tests below run."""
    assert "make run" in docs_support.commands(docs_support.section("## Quick start").text)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "\nrun: install\n\t$(PY) -m devtools.dev $(ARGS)\n" in makefile


def docs_curl(heading: str, marker: str, port: int, **variables: str) -> subprocess.CompletedProcess[str]:
    """The one curl of the section ``heading`` that holds ``marker``, run by bash as written, on ``port``."""
    [line] = [
        c for c in docs_support.commands(docs_support.section(heading).text) if c.startswith("curl ") and marker in c
    ]
    env = {**os.environ, **variables}
    return subprocess.run(
        ["bash", "-c", line.replace("localhost:7071", f"localhost:{port}")],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_make_run_prints_a_working_curl_and_stops_both_processes(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}  # as on a fresh machine
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.dev", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C stops" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        time.sleep(1.0)  # whatever the two processes print at start, in either order, before any traffic
        text = log.read_text()
        # One block to read at start: the URL, the curls, each timer on one line; the rest is behind --verbose.
        start = text.splitlines()
        assert len(start) <= 25, text
        assert "queueTrigger" not in text
        assert f"http://localhost:{port}/api/events" in text
        curl = next(line.strip() for line in text.splitlines() if line.strip().startswith("curl -i -X POST"))
        words = shlex.split(curl)
        event = json.loads(words[words.index("--data") + 1])
        request = urllib.request.Request(
            words[words.index("POST") + 1],
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        dialog_url = re.search(r"curl -s (\S+/dialogs/\S+)", text).group(1)  # type: ignore[union-attr]
        row = None
        while row is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(dialog_url, timeout=5) as response:
                    row = json.loads(response.read())
            except urllib.error.HTTPError:
                time.sleep(0.3)
        assert row is not None, log.read_text()
        assert row["dialogId"] == event["resourceinstance"]
        assert row["createdAt"] == event["time"]

        # The dialog state's curl in the docs, once an event of its dialog (the recorded one) is in: the fields
        # its example shows.
        recorded = json.loads((ROOT / "tests" / "fixtures" / "events" / "dialog-created.json").read_text())
        request = urllib.request.Request(
            f"http://localhost:{port}/api/events",
            data=json.dumps(recorded).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        read = docs_curl("## The dialog state", "/api/dialogs/", port)
        while '"dialogId"' not in read.stdout and time.monotonic() < deadline:
            time.sleep(0.3)
            read = docs_curl("## The dialog state", "/api/dialogs/", port)
        assert read.returncode == 0, read.stderr
        [example] = docs_support.blocks(docs_support.section("## The dialog state").text, "json")
        assert json.loads(read.stdout)["dialogId"] == json.loads(example)["dialogId"] == recorded["resourceinstance"]
        assert set(json.loads(read.stdout)) == set(json.loads(example))
        # The validation ping of "The webhook URL for Altinn", to this app's URL: a 2xx is what Altinn needs.
        ping = docs_curl(
            "## The webhook URL for Altinn", "validatesubscription", port, URL=f"http://localhost:{port}/api/events"
        )
        assert ping.returncode == 0, ping.stderr
        assert ping.stdout.startswith("HTTP/1.1 200"), ping.stdout

        # Every timer of the app runs under the runner, and the printed admin curl runs one now.
        timers = [
            f.get_function_name() for f in app_functions() if f.get_trigger().get_binding_name() == "timerTrigger"
        ]
        assert timers
        for name in timers:
            [line] = [line for line in start if f"Timer {name} (" in line]
            assert re.search(r"next at \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", line), line
        assert "Not run by this runner" not in text
        admin = next(line.strip() for line in text.splitlines() if "/admin/functions/" in line)
        words = shlex.split(admin)
        request = urllib.request.Request(
            next(w for w in words if "/admin/functions/" in w),
            data=words[words.index("--data") + 1].encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
        name = words[next(i for i, w in enumerate(words) if "/admin/functions/" in w)].rsplit("/", 1)[1]
        assert name == "purge_idempotency"
        ran = 'dialogporten.housekeeping {"outcome":"purged"'  # its own line: `Executed` is behind --verbose
        while ran not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ran in log.read_text(), log.read_text()
        # The local runner's admin curl in the docs runs it too.
        admin_docs = docs_curl("## The local runner", "/admin/functions/", port)
        assert admin_docs.returncode == 0, admin_docs.stderr
        assert admin_docs.stdout.startswith("HTTP/1.1 202"), admin_docs.stdout
        while log.read_text().count(ran) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert log.read_text().count(ran) == 2, log.read_text()
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=5) as response:
            assert response.status == 200  # the host's landing page

        # During traffic: one line per message (the webhook's ingest line, the queue's process line).
        before = len(log.read_text().splitlines())
        sent = subprocess.run(
            [sys.executable, "-m", "devtools.cli", "--settings", "/nonexistent.json", "send",
             "--url", f"http://localhost:{port}/api/events", "--count", "30", "--seed", "7", "-o", "none"],
            cwd=ROOT, env={**env, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}, timeout=60, check=False,
        )  # fmt: skip
        assert sent.returncode == 0

        def handled_in_traffic() -> int:
            return sum('dialogporten.process {"outcome"' in line for line in log.read_text().splitlines()[before:])

        while handled_in_traffic() < 30 and time.monotonic() < deadline:  # not the earlier curl's line too
            time.sleep(0.2)
        traffic = log.read_text().splitlines()[before:]
        assert sum('dialogporten.process {"outcome"' in line for line in traffic) >= 30, "\n".join(traffic)
        assert len(traffic) <= 2 * 30 + 2, "\n".join(traffic)  # 30 requests + 30 queue messages
        started_azurite = "Azurite started" in text
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text()
    assert not port_open(port)
    if started_azurite:
        assert not port_open(10001)  # the Azurite it started is gone too


def test_a_second_make_run_on_a_taken_port_says_so_and_fails(tmp_path: Path) -> None:
    assert 'make run ARGS="--port 7072"' in docs_support.section("## A second `make run`").text
    port = free_port()
    with socket.create_server(("127.0.0.1", port)) as taken:  # the first `make run`, as far as the port goes
        taken.listen()
        done = subprocess.run(
            ["make", "-s", "run", f"ARGS=--port {port}"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode != 0
    assert f"Port {port} is already in use" in done.stderr
    assert f'make run ARGS="--port {port + 1}"' in done.stderr
    assert "Ctrl-C stops" not in done.stdout  # no banner, no curls answered by the other instance
    assert "Azurite started" not in done.stdout  # checked before anything starts
