"""``dpctl poison`` against Azurite: list, show, replay; bodies move byte for byte, sent before deleted."""

from __future__ import annotations

import base64
import json

import pytest

from devtools import poison as poison_module
from devtools.azurite import Azurite
from devtools.samples import sample_event
from shared.stores import clients as storage
from shared.stores.clients import StorageClients
from tests.cli_support import dpctl

pytestmark = pytest.mark.azurite
QUEUE = "dialogporten-dialog-created-v1"


def _encoded(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


@pytest.fixture
def env(azurite: Azurite) -> dict[str, str]:
    return {"AzureWebJobsStorage": azurite.connection_string}


def test_list_show_and_replay(clients: StorageClients, env: dict[str, str]) -> None:
    poisoned = clients.queues.create_queue(QUEUE + "-poison")
    events = [sample_event("dialogporten.dialog.created.v1") for _ in range(3)]
    bodies = [_encoded(e) for e in events]
    for body in bodies:
        poisoned.send_message(body, time_to_live=-1)  # as the app poisons: no expiry
    poisoned.send_message("not base64 at all!", time_to_live=-1)

    listing = dpctl("poison", "list", "--json", env=env)
    assert [(q["queue"], q["count"]) for q in listing.json()] == [(f"{QUEUE}-poison", 4)]
    assert f"{QUEUE}-poison" in dpctl("poison", "list", env=env).out

    shown = dpctl("poison", "show", QUEUE, "--json", env=env).json()
    assert [s["eventId"] for s in shown if s["readable"]] == [e["id"] for e in events]
    assert [s["reason"] for s in shown if not s["readable"]] == ["can never succeed: not base64-encoded"]
    table = dpctl("poison", "show", QUEUE, env=env).out
    assert all(e["id"] in table for e in events)

    dry = dpctl("poison", "replay", QUEUE, "--limit", "2", "--dry-run", env=env)
    assert dry.code == 0
    assert "would replay 2 message(s)" in dry.out
    assert poisoned.get_queue_properties().approximate_message_count == 4  # nothing moved

    out = dpctl("poison", "replay", QUEUE, "--limit", "2", env=env)
    assert out.code == 0
    assert "replayed 2 message(s)" in out.out
    main = clients.queues.get_queue_client(QUEUE)
    moved = [m.content for m in main.peek_messages(max_messages=32)]
    assert moved == bodies[:2]  # byte for byte, still base64 as the trigger expects
    assert poisoned.get_queue_properties().approximate_message_count == 2

    decoded = storage.queue_client(clients.queues, QUEUE).peek_messages(max_messages=32)
    assert [json.loads(m.content)["id"] for m in decoded] == [e["id"] for e in events[:2]]


def test_replay_by_message_id_leaves_the_rest(clients: StorageClients, env: dict[str, str]) -> None:
    poisoned = clients.queues.create_queue(QUEUE + "-poison")
    sent = [poisoned.send_message(_encoded(sample_event("dialogporten.dialog.created.v1"))) for _ in range(3)]
    out = dpctl("poison", "replay", QUEUE + "-poison", "--id", sent[1].id, "--json", env=env)
    assert out.code == 0
    assert [m["messageId"] for m in out.json()] == [sent[1].id]
    assert [m.id for m in poisoned.peek_messages(max_messages=32)] == [sent[0].id, sent[2].id]
    assert len(list(clients.queues.get_queue_client(QUEUE).peek_messages(max_messages=32))) == 1


def test_replay_of_an_id_that_does_not_exist_says_so_and_fails(clients: StorageClients, env: dict[str, str]) -> None:
    poisoned = clients.queues.create_queue(QUEUE + "-poison")
    kept = poisoned.send_message(_encoded(sample_event("dialogporten.dialog.created.v1")))
    out = dpctl("poison", "replay", QUEUE, "--id", "no-such-message", env=env)
    assert out.code == 1
    assert "no message with id no-such-message" in out.err
    assert "replayed 0 message(s)" in out.out
    assert [m.id for m in poisoned.peek_messages()] == [kept.id]  # untouched


def test_show_a_queue_that_was_never_poisoned_and_one_that_is_empty(
    clients: StorageClients, env: dict[str, str]
) -> None:
    out = dpctl("poison", "show", "dialogporten-dialog-seen-v1", env=env)
    assert (out.code, out.out.strip()) == (
        0,
        "dialogporten-dialog-seen-v1-poison does not exist (nothing was ever poisoned there)",
    )
    clients.queues.create_queue("dialogporten-dialog-seen-v1-poison")
    out = dpctl("poison", "show", "dialogporten-dialog-seen-v1", env=env)
    assert (out.code, out.out.strip()) == (0, "dialogporten-dialog-seen-v1-poison is empty")


def test_python_m_devtools_poison_still_works(
    clients: StorageClients, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    poisoned = clients.queues.create_queue(QUEUE + "-poison")
    poisoned.send_message(_encoded(sample_event("dialogporten.dialog.created.v1")))
    monkeypatch.setenv("AzureWebJobsStorage", env["AzureWebJobsStorage"])
    assert poison_module.main(["--settings", "/nonexistent.json", "replay", QUEUE]) == 0
    assert "replayed 1 message(s)" in capsys.readouterr().out
    assert poisoned.get_queue_properties().approximate_message_count == 0
