"""`make run` provisions Azurite as Bicep provisions Azure: the same queues, tables and container."""

from __future__ import annotations

import pytest

from devtools.azurite import Azurite
from devtools.export_catalog import build, provision
from shared.events import catalog
from shared.stores.clients import StorageClients

pytestmark = pytest.mark.azurite


def test_provision_creates_what_bicep_creates_and_is_repeatable(azurite: Azurite, clients: StorageClients) -> None:
    provision(azurite.connection_string)
    provision(azurite.connection_string)  # a second `make run` against the same Azurite
    spec = build()
    assert sorted(q.name for q in clients.queues.list_queues()) == sorted(catalog.all_queues())
    assert sorted(t.name for t in clients.tables.list_tables()) == sorted(spec["tables"])
    assert [c.name for c in clients.blobs.list_containers()] == [spec["containers"]["claimCheck"]]


def test_provision_command_uses_the_storage_setting(
    azurite: Azurite, clients: StorageClients, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devtools import export_catalog

    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    assert export_catalog.main(["--provision"]) == 0
    assert "created" in capsys.readouterr().out
    assert sorted(q.name for q in clients.queues.list_queues()) == sorted(catalog.all_queues())
