"""Fixtures shared by every kind of test.

Azurite is real: one in-memory instance per test session on free ports (so a
``make run`` on the default ports does not collide), started here and stopped
after. Each test gets fresh queue/table/container names through ``clean_storage``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools.azurite import Azurite  # noqa: E402
from shared import settings, storage  # noqa: E402
from shared.storage import StorageClients  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
#: The team's reference material beside the project; absent on a user's machine.
CONFORMANCE = ROOT.parent / "shared" / "conformance" / "cloudevents"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    instance = Azurite.on_free_ports().start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def storage_env(azurite: Azurite) -> dict[str, str]:
    return {settings.STORAGE_CONNECTION: azurite.connection_string}


@pytest.fixture
def clients(azurite: Azurite) -> Iterator[StorageClients]:
    """Fresh clients on the session's Azurite; every queue, table and container is emptied after the test."""
    built = storage.build(settings.load({settings.STORAGE_CONNECTION: azurite.connection_string}))
    yield built
    for queue in built.queues.list_queues():
        built.queues.delete_queue(queue.name)
    for table in built.tables.list_tables():
        built.tables.delete_table(table.name)
    for container in built.blobs.list_containers():
        built.blobs.delete_container(container.name)


@pytest.fixture
def app_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Point the process-wide settings and clients (as the Functions host would see them) at the test Azurite."""
    env = {settings.STORAGE_CONNECTION: azurite.connection_string}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings.current.cache_clear()
    storage.current.cache_clear()
    yield env
    settings.current.cache_clear()
    storage.current.cache_clear()


def app_functions() -> list[Any]:
    """``function_app.app.get_functions()`` once per process: azure-functions 1.26 refuses a second call on one app."""
    from function_app import app

    cached: list[Any] | None = getattr(app, "_built_functions", None)
    if cached is None:
        cached = app.get_functions()
        app._built_functions = cached  # type: ignore[attr-defined]
    return cached


def pytest_report_header() -> str:
    where = CONFORMANCE if CONFORMANCE.is_dir() else "absent (conformance tests will skip)"
    return f"CloudEvents conformance vectors: {where}; CI={os.environ.get('CI', '')}"
