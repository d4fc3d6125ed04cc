"""The local runner against real Azurite and over real HTTP, with a fixture app (apps/basic_app.py beside this)."""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from devtools.azurite import Azurite, free_port
from devtools.runner import HostConfig, Runner, load_app
from shared.stores.clients import StorageClients
from tests.integration.devtools.runner.support import wait_for

pytestmark = pytest.mark.azurite

ROOT = Path(__file__).resolve().parents[4]
APPS = Path(__file__).resolve().parent / "apps"
WORK, ASYNC_WORK = "runner-work", "runner-async"
HOST_JSON: dict[str, Any] = {
    "version": "2.0",
    "functionTimeout": "00:01:00",
    "extensions": {
        "queues": {
            "batchSize": 4,
            "newBatchThreshold": 2,
            "maxDequeueCount": 3,
            "visibilityTimeout": "00:00:01",
            "maxPollingInterval": "00:00:00.5",
            "messageEncoding": "base64",
        }
    },
}
APP = load_app(APPS, "basic_app:app")
basic_app = sys.modules["basic_app"]

RunnerFactory = Callable[..., Runner]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def seen(fn: str) -> list[dict[str, Any]]:
    return [e for e in basic_app.SEEN if e["fn"].startswith(fn)]


@pytest.fixture
def service(azurite: Azurite, clients: StorageClients) -> QueueServiceClient:
    # `clients` empties every queue after the test; this client sends raw (already encoded) bodies.
    svc = QueueServiceClient.from_connection_string(azurite.connection_string)
    for name in (WORK, ASYNC_WORK):
        svc.create_queue(name)
    return svc


@pytest.fixture
def make_runner(azurite: Azurite) -> Iterator[RunnerFactory]:
    started: list[Runner] = []
    basic_app.SEEN.clear()
    basic_app.CONCURRENCY.update(now=0, max=0)

    def make(functions: list[str] | None = None, lease: float = 2.0, **queues: Any) -> Runner:
        raw = json.loads(json.dumps(HOST_JSON))
        raw["extensions"]["queues"].update(queues)
        env = {"AzureWebJobsStorage": azurite.connection_string, "RunnerStorage": azurite.connection_string}
        runner = Runner(
            APP, HostConfig.from_json(raw), env, port=0, functions=functions, message_lease=lease, threads=8
        )
        runner.start()
        started.append(runner)
        return runner

    yield make
    for runner in started:
        runner.stop(5)


def test_http_routes_params_and_responses(make_runner: RunnerFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devtools.runner")
    base = f"http://127.0.0.1:{make_runner().port}/api"

    status, headers, body = get(f"{base}/hello/Ola%20Nordmann?greeting=hallo&code=secret")
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Runner-Test"] == "yes"
    payload = json.loads(body)
    assert payload["name"] == "Ola Nordmann"
    assert payload["greeting"] == "hallo"
    assert payload["url"].endswith("/api/hello/Ola%20Nordmann?greeting=hallo&code=secret")

    assert get(f"{base}/items/latest")[2] == b"latest"  # the literal route wins over items/{id:int}
    assert get(f"{base}/items/7", "DELETE")[2] == b"item 7 DELETE"
    assert get(f"{base}/items/seven")[0] == 404  # the int constraint does not match
    assert get(f"{base}/async/21")[:3:2] == (202, b"42")

    assert get(f"{base}/nowhere")[0] == 404
    assert get(f"http://127.0.0.1:{make_runner().port}/hello/x")[0] == 404  # no route prefix
    status, headers, _ = get(f"{base}/items/7", "POST")
    assert status == 405
    assert headers["Allow"] == "GET, DELETE"
    assert get(f"{base}/echo", "HEAD")[0] == 405  # HEAD only where a function declares it

    assert get(f"{base}/boom")[0] == 500
    assert "kaboom from the fixture app" in caplog.text
    assert "Executed 'Functions.boom' (Failed" in caplog.text
    assert "Traceback" in caplog.text
    assert "Executing 'Functions.hello' (Reason='This function was programmatically called" in caplog.text
    assert "authLevel is not enforced" in caplog.text


def test_http_request_bodies_content_length_and_chunked(make_runner: RunnerFactory) -> None:
    port = make_runner().port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/api/echo", body=b'{"a": 1}', headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert (response.status, response.read(), response.getheader("Content-Type")) == (
        201,
        b'{"a": 1}',
        "application/json",
    )
    # Same keep-alive connection, chunked this time.
    conn.request("PUT", "/api/echo", body=iter([b"first,", b"second"]), encode_chunked=True)
    response = conn.getresponse()
    assert (response.status, response.read()) == (201, b"first,second")
    conn.close()


def test_queue_message_is_delivered_decoded_and_deleted(
    make_runner: RunnerFactory, service: QueueServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devtools.runner")
    runner = make_runner()
    sent = service.get_queue_client(WORK).send_message(b64('{"hello": "verden"}'))
    wait_for(lambda: bool(seen("on_work")))
    assert runner.wait_idle([WORK], timeout=10)

    (entry,) = seen("on_work")
    assert entry["body"] == '{"hello": "verden"}'
    assert entry["id"] == sent.id
    assert entry["dequeue_count"] == 1
    assert entry["has_pop_receipt"]
    assert entry["inserted"] is not None
    assert service.get_queue_client(WORK).get_queue_properties().approximate_message_count == 0
    assert f"Executing 'Functions.on_work' (Reason='New queue message detected on '{WORK}'.'" in caplog.text
    assert "Executed 'Functions.on_work' (Succeeded" in caplog.text


def test_failures_are_retried_after_visibility_timeout_then_poisoned(
    make_runner: RunnerFactory, service: QueueServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devtools.runner")
    runner = make_runner()
    raw = b64('{"fail": true, "keep": "æøå"}')
    service.get_queue_client(WORK).send_message(raw)
    poison = service.get_queue_client(f"{WORK}-poison")
    wait_for(lambda: _exists(poison) and bool(poison.peek_messages()), timeout=15)
    assert runner.wait_idle([WORK], timeout=5)

    attempts = seen("on_work")
    assert [a["dequeue_count"] for a in attempts] == [1, 2, 3]  # maxDequeueCount 3
    gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(attempts)]
    assert all(gap >= 0.9 for gap in gaps), gaps  # visibilityTimeout 00:00:01 between attempts
    (poisoned,) = poison.peek_messages()
    assert poisoned.content == raw  # the raw body, byte for byte
    assert service.get_queue_client(WORK).get_queue_properties().approximate_message_count == 0
    assert f"Message has reached MaxDequeueCount of 3. Moving message to queue '{WORK}-poison'." in caplog.text


def test_invalid_base64_goes_to_poison_without_an_invocation(
    make_runner: RunnerFactory, service: QueueServiceClient
) -> None:
    make_runner()
    service.get_queue_client(WORK).send_message('{"not": "base64"}')
    poison = service.get_queue_client(f"{WORK}-poison")
    wait_for(lambda: _exists(poison) and bool(poison.peek_messages()))
    assert poison.peek_messages()[0].content == '{"not": "base64"}'
    assert seen("on_work") == []


def test_message_over_max_dequeue_count_goes_straight_to_poison(
    make_runner: RunnerFactory, service: QueueServiceClient
) -> None:
    queue = service.get_queue_client(WORK)
    queue.send_message(b64("tired"))
    for _ in range(3):  # dequeued 3 times elsewhere (say, a host that crashed); the next receive makes it 4
        (message,) = list(queue.receive_messages(max_messages=1))
        queue.update_message(message.id, message.pop_receipt, visibility_timeout=0)
    runner = make_runner()
    poison = service.get_queue_client(f"{WORK}-poison")
    wait_for(lambda: _exists(poison) and bool(poison.peek_messages()))
    assert runner.wait_idle([WORK], timeout=5)
    assert seen("on_work") == []
    assert poison.peek_messages()[0].content == b64("tired")


def test_lease_is_renewed_while_a_slow_function_runs(make_runner: RunnerFactory, service: QueueServiceClient) -> None:
    runner = make_runner(lease=1.0)  # renewed every 0.5 s; the function takes 2.5 s
    service.get_queue_client(WORK).send_message(b64('{"sleep": 2.5}'))
    wait_for(lambda: bool(seen("on_work")))
    assert runner.wait_idle([WORK], timeout=10)
    assert [e["dequeue_count"] for e in seen("on_work")] == [1]  # never redelivered mid-run


def test_every_slow_message_of_a_batch_is_renewed_by_one_timer(
    make_runner: RunnerFactory, service: QueueServiceClient
) -> None:
    runner = make_runner(lease=1.0)  # four at once (batchSize), each outliving its lease twice over
    queue = service.get_queue_client(WORK)
    for _ in range(4):
        queue.send_message(b64('{"sleep": 2.2}'))
    wait_for(lambda: len(seen("on_work")) >= 1)
    renewers = [t.name for t in threading.enumerate() if t.name.startswith("lease")]
    # One timer per listener, not a thread per message (an earlier test's timer may still be winding down).
    assert "lease-renewal" in renewers
    assert set(renewers) == {"lease-renewal"}
    assert runner.wait_idle([WORK], timeout=15)
    assert sorted(e["dequeue_count"] for e in seen("on_work")) == [1, 1, 1, 1]  # none redelivered mid-run


def test_batches_bound_concurrency(make_runner: RunnerFactory, service: QueueServiceClient) -> None:
    runner = make_runner()
    queue = service.get_queue_client(WORK)
    for _ in range(10):
        queue.send_message(b64('{"sleep": 0.4}'))
    wait_for(lambda: len(seen("on_work")) == 10, timeout=15)
    assert runner.wait_idle([WORK], timeout=5)
    # Up to batchSize (4) in one fetch, more once in-flight drops to newBatchThreshold (2): at most 4 + 2.
    assert 2 <= basic_app.CONCURRENCY["max"] <= 6


def test_async_function_with_context_on_its_own_connection(
    make_runner: RunnerFactory, service: QueueServiceClient
) -> None:
    runner = make_runner()
    service.get_queue_client(ASYNC_WORK).send_message(b64("async body"))
    wait_for(lambda: bool(seen("on_async_work")))
    assert runner.wait_idle([ASYNC_WORK], timeout=5)
    (entry,) = seen("on_async_work")
    assert entry["fn"] == "on_async_work:on_async_work"
    assert entry["body"] == "async body"


def test_trigger_queue_created_after_start_is_picked_up(
    make_runner: RunnerFactory, service: QueueServiceClient
) -> None:
    service.delete_queue(WORK)
    runner = make_runner()
    time.sleep(0.3)
    service.create_queue(WORK)
    service.get_queue_client(WORK).send_message(b64("late"))
    wait_for(lambda: bool(seen("on_work")), timeout=10)
    assert runner.wait_idle([WORK], timeout=5)


def test_functions_filter_loads_only_those(make_runner: RunnerFactory, service: QueueServiceClient) -> None:
    runner = make_runner(functions=["hello", "on_async_work"])
    assert [f.name for f in runner.functions.http] == ["hello"]
    assert [f.name for f in runner.functions.queue] == ["on_async_work"]
    base = f"http://127.0.0.1:{runner.port}/api"
    assert get(f"{base}/hello/x")[0] == 200
    assert get(f"{base}/items/latest")[0] == 404
    service.get_queue_client(WORK).send_message(b64("not for this runner"))
    time.sleep(1.0)
    assert seen("on_work") == []
    assert service.get_queue_client(WORK).get_queue_properties().approximate_message_count == 1
    with pytest.raises(ValueError, match=r"no function named nope\. The app's functions are:\n  async_http\n"):
        make_runner(functions=["nope"])


def test_stop_waits_for_invocations_in_flight(make_runner: RunnerFactory, service: QueueServiceClient) -> None:
    runner = make_runner()
    service.get_queue_client(WORK).send_message(b64('{"sleep": 1.0}'))
    wait_for(lambda: basic_app.CONCURRENCY["now"] == 1)
    assert runner.stop(10) is True
    assert len(seen("on_work")) == 1
    assert basic_app.CONCURRENCY["now"] == 0
    assert service.get_queue_client(WORK).get_queue_properties().approximate_message_count == 0  # completed, deleted


def test_command_line_runs_the_app_and_stops_on_sigterm(
    azurite: Azurite, service: QueueServiceClient, tmp_path: Path
) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0"}))  # ignored: --host-json wins
    short = tmp_path / "short-host.json"
    short.write_text(json.dumps(HOST_JSON))
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"Values": {"RUNNER_GREETING": "from-settings", "RUNNER_PLACE": "from-settings"}})
    )
    record = tmp_path / "record.jsonl"
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(APPS)]),
        "AzureWebJobsStorage": azurite.connection_string,
        "RunnerStorage": azurite.connection_string,
        "RUNNER_PLACE": "from-env",
        "RUNNER_RECORD": str(record),
    }
    command = [
        sys.executable, "-m", "devtools.runner", "--script-root", str(tmp_path), "--app", "basic_app:app",
        "--host-json", str(short), "--port", str(port), "--message-lease", "2",
        "--functions", "hello", "on_work", "every_minute",
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Host started" in line:
                break
        output = "".join(lines)
        assert "Host started" in output, output
        assert f"\thello: [GET] http://localhost:{port}/api/hello/{{name}}" in output
        assert "\ton_work: queueTrigger" in output
        assert "\tevery_minute: timerTrigger" in output  # run on its schedule, like func start
        assert "Not run by this runner:" not in output
        assert "items" not in output

        status, _, body = get(f"http://localhost:{port}/api/hello/cli")
        assert status == 200
        payload = json.loads(body)
        assert payload["greeting_setting"] == "from-settings"  # local.settings.json Values become settings
        assert payload["place_setting"] == "from-env"  # but the environment wins
        assert Path(payload["cwd"]) == tmp_path  # the script root is the working directory

        service.get_queue_client(WORK).send_message(b64("via the cli"))
        wait_for(lambda: record.exists() and "via the cli" in record.read_text())
        wait_for(lambda: service.get_queue_client(WORK).get_queue_properties().approximate_message_count == 0)

        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, rest
        assert "Host stopped." in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _exists(queue: Any) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        queue.get_queue_properties()
    except ResourceNotFoundError:
        return False
    return True
