"""What `func start` users reach for, in the runner: timers on their schedule, the admin endpoints, the landing page.

In-process against real Azurite and over real HTTP, with a fixture app (apps/timer_app.py beside this file).
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devtools.azurite import Azurite
from devtools.runner import Runner, load_app
from shared.stores.clients import StorageClients
from tests.integration.devtools.runner.support import wait_for

pytestmark = pytest.mark.azurite

APP = load_app(Path(__file__).resolve().parent / "apps", "timer_app:app")
timer_app = sys.modules["timer_app"]

RunnerFactory = Callable[..., Runner]


def seen(fn: str) -> list[dict[str, Any]]:
    return [e for e in list(timer_app.SEEN) if e["fn"] == fn]


def call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


@pytest.fixture
def make_runner(azurite: Azurite, clients: StorageClients) -> Iterator[RunnerFactory]:
    started: list[Runner] = []
    timer_app.SEEN.clear()
    clients.queues.create_queue("runner-admin")

    def make(functions: list[str], **env: str) -> Runner:
        runner = Runner(APP, env={"AzureWebJobsStorage": azurite.connection_string, **env}, functions=functions)
        runner.start()
        started.append(runner)
        return runner

    yield make
    for runner in started:
        runner.stop(10)


def test_a_timer_fires_on_its_schedule_on_the_second(
    make_runner: RunnerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devtools.runner")
    runner = make_runner(["every_second"])
    wait_for(lambda: len(seen("every_second")) >= 3, timeout=6)
    runner.stop(5)

    fired = seen("every_second")
    for e in fired[1:]:  # Next is the occurrence after this one: this one was a second before it
        due = datetime.fromisoformat(e["status"]["Next"]).timestamp() - 1
        assert due <= e["at"] < due + 2.0, (e, due)  # never early; late only by the machine's load
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(fired)]
    assert all(gap > 0.5 for gap in gaps), gaps  # once per occurrence, never twice in one second
    assert not any(e["past_due"] for e in fired)
    # useMonitor: the function gets the schedule status; Last is the previous occurrence after the first run.
    assert fired[0]["status"]["Last"].startswith("0001-01-01")
    assert fired[1]["status"]["Last"] != fired[0]["status"]["Last"]
    assert {"Last", "Next", "LastUpdated"} <= set(fired[1]["status"])
    assert "\tevery_second: timerTrigger" in runner.banner()
    assert "Not run by this runner" not in runner.banner()
    assert "The next 5 occurrences of the 'Functions.every_second' schedule (Cron: '* * * * * *')" in caplog.text
    assert "Executing 'Functions.every_second' (Reason='Timer fired at " in caplog.text


def test_run_on_startup_fires_once_and_the_schedule_waits(make_runner: RunnerFactory) -> None:
    make_runner(["new_year"])  # 0 0 0 1 Jan *: not again this year
    wait_for(lambda: bool(seen("new_year")), timeout=3)
    time.sleep(1.0)
    (fired,) = seen("new_year")
    assert fired["status"] == {}  # useMonitor false: the host sends no ScheduleStatus


def test_one_invocation_of_a_timer_at_a_time(make_runner: RunnerFactory) -> None:
    runner = make_runner(["slow_tick"])  # every second, but each run takes 2.5 s
    wait_for(lambda: len(seen("slow_tick")) >= 2, timeout=8)
    runner.stop(5)
    first, second = seen("slow_tick")[:2]
    assert second["at"] - first["at"] >= 2.5  # the occurrences during the first run were skipped


def test_admin_invoke_runs_a_timer_and_a_queue_function_and_answers_202(
    make_runner: RunnerFactory, clients: StorageClients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devtools.runner")
    runner = make_runner(["new_year", "on_admin_work", "ping"])
    base = f"http://127.0.0.1:{runner.port}"
    wait_for(lambda: bool(seen("new_year")))  # runOnStartup

    status, _headers, body = call(f"{base}/admin/functions/new_year", "POST", b'{"input": ""}')
    assert (status, body) == (202, b"")
    wait_for(lambda: len(seen("new_year")) == 2)
    assert "Executing 'Functions.new_year' (Reason='This function was programmatically called via the host APIs." in (
        caplog.text
    )

    # The input is the queue message's text; the name is matched without case, as the host does.
    status, _, _ = call(f"{base}/admin/functions/ON_ADMIN_WORK", "POST", b'{"input": "{\\"hei\\": 1}"}')
    assert status == 202
    wait_for(lambda: bool(seen("on_admin_work")))
    assert seen("on_admin_work")[0]["body"] == '{"hei": 1}'
    assert clients.queues.get_queue_client("runner-admin").peek_messages() == []  # a one-off, not queued

    assert call(f"{base}/api/ping")[2] == b"pong"  # the function routes are untouched


@pytest.mark.parametrize(
    ("path", "method", "body", "status", "detail"),
    [
        ("/admin/functions/nope", "POST", b'{"input": ""}', 404, "no function named 'nope' is loaded"),
        ("/admin/functions/new_year", "POST", b"", 400, "must be a JSON object"),
        ("/admin/functions/new_year", "POST", b"[1]", 400, "must be a JSON object"),
        ("/admin/functions/new_year", "POST", b'{"input": {"a": 1}}', 400, "string, a number or a boolean"),
        ("/admin/functions/ping", "POST", b'{"input": ""}', 400, "HTTP function"),
        ("/admin/functions/new_year", "GET", None, 405, "use POST"),
        ("/admin/nothing/here", "GET", None, 404, "not an admin endpoint"),
    ],
)
def test_admin_refusals_are_precise(
    make_runner: RunnerFactory, path: str, method: str, body: bytes | None, status: int, detail: str
) -> None:
    runner = make_runner(["new_year", "ping"])
    got, headers, payload = call(f"http://127.0.0.1:{runner.port}{path}", method, body)
    assert got == status
    assert headers["Content-Type"] == "application/problem+json; charset=utf-8"
    problem = json.loads(payload)
    assert problem["status"] == status
    assert detail in problem["detail"]


def test_landing_page_and_host_status(make_runner: RunnerFactory) -> None:
    runner = make_runner(["new_year"])  # no HTTP function: the host listens anyway
    base = f"http://127.0.0.1:{runner.port}"
    status, headers, body = call(f"{base}/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"up and running" in body

    status, headers, body = call(f"{base}/admin/host/status")
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    document = json.loads(body)
    assert document["state"] == "Running"
    assert document["processUptime"] >= 0
    assert {"id", "version", "instanceId", "computerName"} <= set(document)

    quiet = make_runner(["new_year"], AzureWebJobsDisableHomepage="true")
    assert call(f"http://127.0.0.1:{quiet.port}/")[:3:2] == (204, b"")
