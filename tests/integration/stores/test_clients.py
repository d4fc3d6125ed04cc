"""Storage clients under concurrency: derived clients built once, and never a half-wired pipeline.

``TableServiceClient.get_table_client`` wires a new pipeline out of the service client's
own policy objects; a request in flight on another thread could walk into a runner whose
``.next`` was not set yet (``AttributeError: '_SansIOHTTPPolicyRunner' object has no
attribute 'next'``). Here requests run on many threads while other threads build table
clients for new names, the way a process's first invocations do.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

import pytest
from azure.core.exceptions import ResourceNotFoundError

from devtools.azurite import Azurite
from shared import settings
from shared.stores import clients as storage
from shared.stores.clients import StorageClients

pytestmark = pytest.mark.azurite

REQUEST_THREADS = 16
BUILDER_THREADS = 4
BUILD_SECONDS = 4.0


def test_requests_in_flight_survive_table_clients_being_built_beside_them(
    clients: StorageClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Switch threads every microsecond instead of every 5 ms: the window between two lines of
    # Pipeline.__init__ is then met within a few hundred builds instead of once in many runs.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        _race(clients)
    finally:
        sys.setswitchinterval(previous)


def _race(clients: StorageClients) -> None:
    clients.tables.create_table_if_not_exists("racebusy")
    busy = clients.table("racebusy")
    stop = threading.Event()
    errors: list[BaseException] = []
    requests_done = [0]
    lock = threading.Lock()

    def request_loop() -> None:
        while not stop.is_set():
            try:
                # Requests on clients built earlier, each one through the whole policy chain.
                storage.table_client(clients.tables, "racebusy").get_entity("none", "none")
            except ResourceNotFoundError:
                pass
            except BaseException as exc:
                errors.append(exc)
                return
            with lock:
                requests_done[0] += 1

    def build_loop(prefix: str) -> None:
        until = time.monotonic() + BUILD_SECONDS
        i = 0
        while time.monotonic() < until:
            i += 1
            try:
                storage.table_client(clients.tables, f"r{prefix}{i}")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return
            time.sleep(0)  # let the request threads run between builds

    requesters = [threading.Thread(target=request_loop) for _ in range(REQUEST_THREADS)]
    for t in requesters:
        t.start()
    time.sleep(0.2)  # requests in flight before the first build
    builders = [threading.Thread(target=build_loop, args=(uuid.uuid4().hex[:6],)) for _ in range(BUILDER_THREADS)]
    for t in builders:
        t.start()
    for t in builders:
        t.join()
    stop.set()
    for t in requesters:
        t.join()
    assert errors == [], f"{len(errors)} requests failed, the first: {errors[0]!r}"
    assert requests_done[0] > REQUEST_THREADS  # the requests did run beside the builds
    assert storage.table_client(clients.tables, "racebusy") is busy


def test_a_table_or_queue_client_is_built_once_per_name(clients: StorageClients) -> None:
    assert clients.table("dialogs") is clients.table("dialogs")
    assert clients.table("dialogs") is not clients.table("idempotency")
    assert clients.queue("q1") is clients.queue("q1")
    assert storage.queue_client(clients.queues, "q1", binary=True) is not clients.queue("q1")


def test_a_client_ignores_proxy_settings_in_the_environment(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that does not exist: a client that read the environment would fail to connect.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    for bypass in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(bypass, raising=False)
    fresh = storage.build(settings.load({settings.STORAGE_CONNECTION: azurite.connection_string}))
    fresh.tables.create_table_if_not_exists("proxycheck")
    assert list(fresh.table("proxycheck").list_entities()) == []
    fresh.queue("proxycheck").create_queue()
