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


# --- a typo is an error; why each message is there ----------------------------------------------------------


@pytest.mark.parametrize("command", [("show",), ("replay",), ("replay", "--dry-run"), ("discard",)])
def test_a_typod_queue_is_an_error_that_lists_the_valid_names(
    clients: StorageClients, env: dict[str, str], command: tuple[str, ...]
) -> None:
    args = ["poison", command[0], "dialogporten-dialog-creatd-v1", *command[1:]]
    if command[0] == "discard":
        args.append("some-message-id")
    ran = dpctl(*args, env=env)
    assert ran.code == 1, ran.out
    assert "no queue named 'dialogporten-dialog-creatd-v1'" in ran.err
    assert f"  {QUEUE}\n" in ran.err  # the valid names are listed, the queues and their twins
    assert f"  {QUEUE}-poison\n" in ran.err
    assert "replayed 0" not in ran.out
    assert [q.name for q in clients.queues.list_queues()] == []  # nothing was created by the typo


def test_the_unrouted_queue_has_no_poison_twin_and_says_where_its_events_are(env: dict[str, str]) -> None:
    ran = dpctl("poison", "show", "dialogporten-unrouted", env=env)
    assert ran.code == 1
    assert "dpctl parked list" in ran.err


def _deliver(queue: str, body: str) -> None:
    """Call the queue's function as the host does: the app poisons, and records why."""
    import uuid

    from azure.functions.queue import QueueMessage

    from shared.events.catalog import BY_QUEUE
    from tests.conftest import app_functions

    functions = {f.get_function_name(): f.get_user_function() for f in app_functions()}
    message = QueueMessage(id=str(uuid.uuid4()), body=body.encode(), dequeue_count=1)  # type: ignore[no-untyped-call]
    functions[BY_QUEUE[queue].function_name](message)


def test_a_message_its_model_refuses_is_shown_with_why_and_replay_says_what_it_retries(
    app_env: dict[str, str], clients: StorageClients, env: dict[str, str]
) -> None:
    from shared.events.catalog import BY_TYPE
    from shared.events.messages import serialize_event
    from shared.stores.poison import POISON_TABLE, PoisonReasonStore
    from tests.conftest import fixture_for

    payment = fixture_for("dialogporten.dialog.activity.payment-made.v1")
    queue = BY_TYPE[payment["type"]].queue
    del payment["data"]["activityId"]
    body = serialize_event(payment)
    _deliver(queue, body)

    [shown] = dpctl("poison", "show", queue, "--json", env=env).json()
    assert (shown["readable"], shown["eventId"], shown["reasonRecorded"]) == (True, payment["id"], True)
    assert shown["reason"].startswith("can never succeed: ")
    assert "activityId" in shown["reason"]
    assert "activityId" in dpctl("poison", "show", queue, env=env).out  # the table says why too
    [listed] = dpctl("poison", "list", "--json", env=env).json()
    assert listed["reasons"] == {shown["reason"]: 1}
    status = dpctl("status", "--json", env=env)
    assert status.code == 3
    [row] = [r for r in status.json()["queues"] if r["queue"] == queue]
    assert row["poisonReasons"] == {shown["reason"]: 1}
    # the message itself is untouched: the reason lives beside it
    [message] = clients.queues.get_queue_client(queue + "-poison").peek_messages()
    assert base64.b64decode(message.content).decode() == body

    replayed = dpctl("poison", "replay", queue, env=env)
    assert replayed.code == 0
    assert f"replayed {shown['messageId']} {payment['type']} {payment['id']}: poisoned because can never" in (
        replayed.out.replace("\n", " ")
    )
    assert PoisonReasonStore(clients.tables).for_queue(queue + "-poison") == {}  # the row went with the message
    assert POISON_TABLE in [t.name for t in clients.tables.list_tables()]


def test_a_host_moved_message_is_shown_as_such_before_and_after_the_sweep(
    app_env: dict[str, str], clients: StorageClients, env: dict[str, str]
) -> None:
    from shared.functions import housekeeping
    from shared.stores.poison import HOST_MOVED

    poisoned = clients.queues.create_queue(QUEUE + "-poison")
    event = sample_event("dialogporten.dialog.created.v1")
    poisoned.send_message(_encoded(event))  # as the host moves it: with the default time to live
    [before] = dpctl("poison", "show", QUEUE, "--json", env=env).json()
    assert (before["reason"], before["reasonRecorded"]) == (HOST_MOVED, False)

    assert housekeeping.sweep() == 1
    [after] = dpctl("poison", "show", QUEUE, "--json", env=env).json()
    assert (after["reason"], after["reasonRecorded"], after["eventId"]) == (HOST_MOVED, True, event["id"])
    assert after["messageId"] != before["messageId"]  # the renewed copy, with no expiry


def test_discard_deletes_the_message_and_its_reason(
    app_env: dict[str, str], clients: StorageClients, env: dict[str, str]
) -> None:
    from shared.stores.poison import PoisonReasonStore

    _deliver(QUEUE, '{"specversion": "1.0", "id": ')  # not JSON: poisoned at once
    [shown] = dpctl("poison", "show", QUEUE, "--json", env=env).json()
    assert shown["reason"].startswith("can never succeed")
    dry = dpctl("poison", "discard", QUEUE, shown["messageId"], "--dry-run", env=env)
    assert (dry.code, dry.out.splitlines()[-1]) == (0, f"would discard 1 message(s) from {QUEUE}-poison")
    gone = dpctl("poison", "discard", QUEUE, shown["messageId"], env=env)
    assert gone.code == 0
    assert list(clients.queues.get_queue_client(QUEUE + "-poison").peek_messages()) == []
    assert PoisonReasonStore(clients.tables).for_queue(QUEUE + "-poison") == {}
    missing = dpctl("poison", "discard", QUEUE, shown["messageId"], env=env)
    assert missing.code == 1
    assert "no message with id" in missing.err
