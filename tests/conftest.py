"""Fixtures shared by every kind of test.

Azurite is real: one in-memory instance per test session on free ports (so a
``make run`` on the default ports does not collide), started here and stopped
after. Each test gets fresh queue/table/container names through ``clean_storage``.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools.azurite import Azurite  # noqa: E402
from devtools.samples import sample_event  # noqa: E402
from shared import settings  # noqa: E402
from shared.stores import clients as storage  # noqa: E402
from shared.stores.clients import StorageClients  # noqa: E402

#: The Altinn simulator's fixtures (``sim``, ``receiver``) for every test; a module may define its own ``sim``.
pytest_plugins = ["tests.sim_support"]

#: Recorded events: one per catalog type (named by :func:`fixture_name`), Altinn's and the docs' examples.
FIXTURES = ROOT / "tests" / "fixtures" / "events"
#: The team's reference material beside the project; absent on a user's machine.
CONFORMANCE = ROOT.parent / "shared" / "conformance" / "cloudevents"
#: What every per-type fixture shares (one TT02 dialog); a type without a file gets a sample with the same.
FIXTURE_DIALOG: Final = "019ebbb5-ac51-75ab-a98b-786e3581350e"
FIXTURE_PARTY: Final = "urn:altinn:person:identifier-no:23905497111"
FIXTURE_RESOURCE: Final = "urn:altinn:resource:super-simple-service"


def load_fixture(name: str) -> dict[str, Any]:
    """A recorded event by file name; a fresh copy on each call, so a test may change it."""
    loaded = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{name} is not one event"
    return loaded


def fixture_name(event_type: str) -> str:
    """A type's file: ``...created.v1`` -> ``dialog-created.json``."""
    name = event_type.removeprefix("dialogporten.dialog.").removesuffix(".v1").replace(".", "-")
    return (name if name.startswith(("activity", "transmission")) else "dialog-" + name) + ".json"


def fixture_for(event_type: str) -> dict[str, Any]:
    """The recorded event of a catalog type; for a type with no recording yet, a sample of the same dialog.

    So a type added to the catalog is covered by every per-type test at once;
    a real recording, when there is one, replaces the sample by its file alone.
    """
    path = FIXTURES / fixture_name(event_type)
    if path.exists():
        return load_fixture(path.name)
    return sample_event(
        event_type,
        dialog_id=FIXTURE_DIALOG,
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, event_type)),
        time="2026-03-16T11:43:49.4306473Z",
        party=FIXTURE_PARTY,
        resource=FIXTURE_RESOURCE,
    )


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


def CATALOG_MODELS() -> list[Any]:
    """Every catalog type's model class (imported on call: the models load pydantic)."""
    from shared.events.catalog import CATALOG
    from shared.events.models import MODELS

    return [MODELS[row.type] for row in CATALOG]


def app_handlers() -> Any:
    """The app's own handler registry (what the queue functions run): tests add and remove handlers here."""
    from shared.functions import queues

    return queues.registry()


def pytest_report_header() -> str:
    where = CONFORMANCE if CONFORMANCE.is_dir() else "absent (conformance tests will skip)"
    return f"CloudEvents conformance vectors: {where}; CI={os.environ.get('CI', '')}"
