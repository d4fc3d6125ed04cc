"""The operator's poison tool against Azurite: list, show, replay; bodies move byte for byte."""

from __future__ import annotations

import base64
import io
import json

import pytest

from devtools import poison
from devtools.azurite import Azurite
from devtools.samples import sample_event
from shared import storage
from shared.storage import StorageClients

pytestmark = pytest.mark.azurite
QUEUE = "dialogporten-dialog-created-v1"


def _encoded(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch, conn: str) -> str:
    monkeypatch.setenv("AzureWebJobsStorage", conn)
    out = io.StringIO()
    assert poison.main(args, out) == 0
    return out.getvalue()


def test_list_show_and_replay(clients: StorageClients, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = azurite.connection_string
    poisoned = clients.queues.create_queue(QUEUE + "-poison")
    events = [sample_event("dialogporten.dialog.created.v1") for _ in range(3)]
    bodies = [_encoded(e) for e in events]
    for body in bodies:
        poisoned.send_message(body)
    poisoned.send_message("not base64 at all!")

    listing = _run(["list"], monkeypatch, conn)
    assert f"{QUEUE}-poison\t4" in listing

    shown = [json.loads(line) for line in _run(["show", QUEUE], monkeypatch, conn).splitlines()]
    assert [s["event_id"] for s in shown if s["readable"]] == [e["id"] for e in events]
    assert [s["reason"] for s in shown if not s["readable"]] == ["not base64-encoded UTF-8"]

    out = _run(["replay", QUEUE, "--limit", "2"], monkeypatch, conn)
    assert out.strip().endswith("replayed 2 message(s)")
    main = clients.queues.get_queue_client(QUEUE)
    moved = [m.content for m in main.peek_messages(max_messages=32)]
    assert moved == bodies[:2]  # byte for byte, still base64 as the trigger expects
    assert poisoned.get_queue_properties().approximate_message_count == 2

    decoded = storage.queue_client(clients.queues, QUEUE).peek_messages(max_messages=32)
    assert [json.loads(m.content)["id"] for m in decoded] == [e["id"] for e in events[:2]]


def test_replay_by_message_id_leaves_the_rest(
    clients: StorageClients, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = azurite.connection_string
    poisoned = clients.queues.create_queue(QUEUE + "-poison")
    sent = [poisoned.send_message(_encoded(sample_event("dialogporten.dialog.created.v1"))) for _ in range(3)]
    out = _run(["replay", QUEUE + "-poison", "--id", sent[1].id], monkeypatch, conn)
    assert json.loads(out.splitlines()[0])["replayed"] == sent[1].id
    assert [m.id for m in poisoned.peek_messages(max_messages=32)] == [sent[0].id, sent[2].id]
    assert len(list(clients.queues.get_queue_client(QUEUE).peek_messages(max_messages=32))) == 1


def test_show_a_queue_that_was_never_poisoned(
    clients: StorageClients, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _run(["show", "dialogporten-dialog-seen-v1"], monkeypatch, azurite.connection_string)
    assert "does not exist" in out
