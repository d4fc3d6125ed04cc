"""`make run`'s program, as a newcomer uses it: it starts, prints a curl that works, and stops cleanly."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devtools.azurite import free_port, port_open
from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]


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
        text = log.read_text()
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
        started_azurite = "Azurite started" in text
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text()
    assert not port_open(port)
    if started_azurite:
        assert not port_open(10001)  # the Azurite it started is gone too
