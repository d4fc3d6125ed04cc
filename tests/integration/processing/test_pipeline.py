"""Queue functions on real Azurite queues and tables: typed events, exactly-once effects, poison, logs.

The functions are called as the host calls them (``app.get_functions()`` with a
``QueueMessage``); the host's own retry loop and poison move are covered end to
end in ``tests/e2e/handlers/test_handlers.py``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.functions.queue import QueueMessage

from devtools.samples import sample_event
from shared import settings
from shared.events import models
from shared.events.catalog import BY_QUEUE, BY_TYPE, CATALOG
from shared.events.messages import CLAIM_CHECK_CONTAINER, claim_check_message, serialize_event
from shared.events.models import ActivityEvent, DialogportenEvent, parse_event
from shared.stores.clients import StorageClients
from shared.stores.dialogs import DialogStore
from shared.stores.idempotency import IdempotencyStore, event_key
from tests.conftest import app_functions, app_handlers, fixture_for

pytestmark = pytest.mark.azurite

CLAIM_TIMEOUT = 2


FUNCTIONS = {f.get_function_name(): f.get_user_function() for f in app_functions()}


def deliver(queue: str, body: str | bytes, dequeue_count: int = 1) -> None:
    """Call the function bound to ``queue`` as the host would."""
    name = BY_QUEUE[queue].function_name
    raw = body.encode("utf-8") if isinstance(body, str) else body
    message = QueueMessage(id=str(uuid.uuid4()), body=raw, dequeue_count=dequeue_count)  # type: ignore[no-untyped-call]
    FUNCTIONS[name](message)


def deliver_event(event: dict[str, Any], dequeue_count: int = 1) -> None:
    deliver(BY_TYPE[event["type"]].queue, serialize_event(event), dequeue_count)


class Recorder:
    """A user's handler for every type: records what it saw, can be told to fail or dawdle."""

    def __init__(self) -> None:
        self.seen: list[DialogportenEvent] = []
        self.fail: Exception | None = None
        self.delay = 0.0
        self.lock = threading.Lock()

    def __call__(self, event: DialogportenEvent) -> None:
        time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        with self.lock:
            self.seen.append(event)


@pytest.fixture
def env(app_env: dict[str, str], clients: StorageClients, monkeypatch: pytest.MonkeyPatch) -> StorageClients:
    monkeypatch.setenv("IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS", str(CLAIM_TIMEOUT))
    settings.current.cache_clear()
    return clients


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    app_handlers().add(rec, DialogportenEvent)
    yield rec
    app_handlers().remove(rec)


@pytest.fixture
def process_logs(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    caplog.set_level("INFO", logger="dialogporten")

    def lines() -> list[dict[str, Any]]:
        prefix = "dialogporten.process "
        return [
            json.loads(r.getMessage()[len(prefix) :]) | {"level": r.levelname}
            for r in caplog.records
            if r.getMessage().startswith(prefix)
        ]

    return lines


def dialog_row(clients: StorageClients, dialog_id: str) -> dict[str, Any] | None:
    state = DialogStore(clients.tables).get(dialog_id)
    return None if state is None else state.to_json()


def poison_bodies(clients: StorageClients, queue: str) -> list[str]:
    client = clients.queue(queue + "-poison")
    try:
        return [m.content for m in client.receive_messages(messages_per_page=32, visibility_timeout=1)]
    except ResourceNotFoundError:
        return []


def drain(clients: StorageClients, queue: str, until: float) -> list[str]:
    """Receive put-back messages of ``queue`` as they become visible, until ``until`` (monotonic)."""
    bodies: list[str] = []
    client = clients.queue(queue)
    while time.monotonic() < until:
        for message in client.receive_messages(visibility_timeout=30):
            bodies.append(message.content)
            client.delete_message(message)
        time.sleep(0.2)
    return bodies


@pytest.mark.parametrize("row", CATALOG, ids=lambda r: r.type)
def test_each_type_reaches_its_handler_typed_and_updates_the_dialog_row(
    row: Any, env: StorageClients, recorder: Recorder, process_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    obj = fixture_for(row.type)
    deliver(row.queue, serialize_event(obj), dequeue_count=1)
    assert len(recorder.seen) == 1
    event = recorder.seen[0]
    assert type(event) is models.MODELS[row.type]
    assert event == parse_event(obj)
    row_json = dialog_row(env, obj["resourceinstance"])
    assert row_json is not None
    assert row_json["eventsApplied"] == 1
    assert row_json["lastEventType"] == row.type
    assert row_json["lastEventAt"] == obj["time"]
    if isinstance(event, ActivityEvent):
        assert row_json["lastActivity"] == {"type": row.type, "id": event.activity_id, "at": obj["time"]}
        assert row_json["activityCount"] == 1
    [line] = process_logs()
    assert line["outcome"] == "handled"
    assert (line["event_id"], line["event_type"], line["dialog_id"]) == (obj["id"], row.type, obj["resourceinstance"])
    assert line["dequeue_count"] == 1
    assert isinstance(line["duration_ms"], float)


def test_the_same_event_three_times_in_a_row_has_one_effect(
    env: StorageClients, recorder: Recorder, process_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    obj = fixture_for("dialogporten.dialog.transmission.created.v1")
    for _ in range(3):
        deliver_event(obj)
    assert len(recorder.seen) == 1
    row = dialog_row(env, obj["resourceinstance"])
    assert row is not None
    assert (row["transmissionCount"], row["eventsApplied"]) == (1, 1)
    assert [line["outcome"] for line in process_logs()] == ["handled", "duplicate", "duplicate"]


def test_the_same_event_three_times_at_once_has_one_effect(
    env: StorageClients, recorder: Recorder, process_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    obj = fixture_for("dialogporten.dialog.activity.payment-made.v1")
    recorder.delay = 0.5  # the first is still running when the others arrive
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def one() -> None:
        barrier.wait()
        try:
            deliver_event(obj)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    outcomes = sorted(line["outcome"] for line in process_logs())
    assert outcomes.count("handled") == 1
    assert len(recorder.seen) == 1
    # The copies that found it in progress were put back on the queue, untouched, not failed:
    put_back = outcomes.count("retry")
    bodies = drain(env, BY_TYPE[obj["type"]].queue, until=time.monotonic() + CLAIM_TIMEOUT + 2.5)
    assert len(bodies) == put_back
    for body in bodies:
        assert json.loads(body) == obj
        deliver(BY_TYPE[obj["type"]].queue, body)
    assert len(recorder.seen) == 1
    row = dialog_row(env, obj["resourceinstance"])
    assert row is not None
    assert (row["activityCount"], row["eventsApplied"]) == (1, 1)
    assert [line["outcome"] for line in process_logs()].count("duplicate") == 2


def test_a_failing_handler_is_retried_releasing_its_claim_and_poisoned_by_the_app_on_the_last_attempt(
    env: StorageClients, recorder: Recorder, process_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    obj = fixture_for("dialogporten.dialog.updated.v1")
    recorder.fail = RuntimeError("case system down")
    store = IdempotencyStore(env.tables, claim_timeout_seconds=60, retention_seconds=60)
    for attempt in range(1, 5):
        with pytest.raises(RuntimeError, match="case system down"):
            deliver_event(obj, dequeue_count=attempt)
        # released, so the next delivery runs at once rather than waiting for the claim to expire
        assert store.status(event_key(obj["source"], obj["id"])) is None
    assert poison_bodies(env, BY_TYPE[obj["type"]].queue) == []
    deliver_event(obj, dequeue_count=5)  # the last attempt: the app poisons and completes, the host moves nothing
    assert store.status(event_key(obj["source"], obj["id"])) is None
    (copy,) = list(env.queue(BY_TYPE[obj["type"]].queue + "-poison").peek_messages())
    assert copy.content == serialize_event(obj)
    assert copy.expires_on is not None
    assert copy.expires_on.year == 9999  # unlike the host's own move, it never expires
    lines = process_logs()
    assert [line["outcome"] for line in lines] == ["retry"] * 4 + ["poisoned"]
    assert [line["dequeue_count"] for line in lines] == [1, 2, 3, 4, 5]
    assert "RuntimeError: case system down" in lines[-1]["reason"]
    assert "attempt 5 of 5" in lines[-1]["reason"]
    assert lines[-1]["level"] == "ERROR"
    # The default handler ran on every attempt, yet the dialog row counts the event once.
    row = dialog_row(env, obj["resourceinstance"])
    assert row is not None
    assert row["eventsApplied"] == 1
    recorder.fail = None
    deliver_event(obj, dequeue_count=1)  # replayed from the poison queue later: handled
    assert len(recorder.seen) == 1
    assert dialog_row(env, obj["resourceinstance"])["eventsApplied"] == 1  # type: ignore[index]


def _corrupt_bodies() -> list[tuple[str, str, str]]:
    payment = fixture_for("dialogporten.dialog.activity.payment-made.v1")
    queue = BY_TYPE[payment["type"]].queue
    no_activity = json.loads(json.dumps(payment))
    del no_activity["data"]["activityId"]
    return [
        ("not-json", queue, '{"specversion": "1.0", "id": '),
        ("json-array", queue, "[1, 2, 3]"),
        ("non-guid-dialog", queue, serialize_event(payment | {"resourceinstance": "dialog-42"})),
        ("activity-without-activityId", queue, serialize_event(no_activity)),
        ("wrong-queue", BY_TYPE["dialogporten.dialog.created.v1"].queue, serialize_event(payment)),
        ("missing-claim-check-blob", queue, claim_check_message(payment, f"{queue}/{uuid.uuid4()}.json", 70000)),
    ]


@pytest.mark.parametrize(("queue", "body"), [c[1:] for c in _corrupt_bodies()], ids=[c[0] for c in _corrupt_bodies()])
def test_a_message_that_can_never_succeed_goes_to_poison_at_once_untouched(
    queue: str, body: str, env: StorageClients, recorder: Recorder, process_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    deliver(queue, body, dequeue_count=1)  # returns normally: the host deletes the original
    (parked,) = list(env.queue(queue + "-poison").peek_messages())
    assert parked.expires_on is not None
    assert parked.expires_on.year == 9999  # never expires: it waits for an operator's replay
    assert poison_bodies(env, queue) == [body]
    assert recorder.seen == []
    [line] = process_logs()
    assert line["outcome"] == "poisoned"
    assert line["reason"].startswith("can never succeed")
    assert line["poison_queue"] == queue + "-poison"


def test_a_body_that_is_not_utf8_is_poisoned_byte_for_byte(env: StorageClients, recorder: Recorder) -> None:
    queue = BY_TYPE["dialogporten.dialog.seen.v1"].queue
    body = b"\xff\xfe{not utf-8"
    deliver(queue, body)
    from azure.storage.queue import BinaryBase64DecodePolicy

    client = env.queues.get_queue_client(queue + "-poison", message_decode_policy=BinaryBase64DecodePolicy())
    assert [m.content for m in client.receive_messages()] == [body]


def test_a_claim_checked_event_reaches_the_handler_whole_and_a_redelivery_is_a_duplicate(
    env: StorageClients, recorder: Recorder
) -> None:
    obj = fixture_for("dialogporten.dialog.activity.information.v1")
    obj["data"]["bigField"] = "x" * 70_000
    body = serialize_event(obj)
    queue = BY_TYPE[obj["type"]].queue
    blob_name = f"{queue}/{uuid.uuid4()}.json"
    container = env.blobs.get_container_client(CLAIM_CHECK_CONTAINER)
    container.create_container()
    container.upload_blob(blob_name, body.encode("utf-8"))
    message = claim_check_message(obj, blob_name, len(body))
    deliver(queue, message)
    [event] = recorder.seen
    assert isinstance(event, ActivityEvent)
    assert event.data.model_extra is not None
    assert event.data.model_extra["bigField"] == "x" * 70_000
    # The blob outlives the handling (a lifecycle rule sweeps it): the queue may deliver
    # this very message again, and it must then resolve and be acknowledged as a duplicate.
    assert [b.name for b in container.list_blobs()] == [blob_name]
    deliver(queue, message)
    assert len(recorder.seen) == 1
    assert queue + "-poison" not in {q.name for q in env.queues.list_queues()}


def test_an_event_whose_worker_died_holding_the_claim_runs_once_the_claim_expires(
    env: StorageClients, recorder: Recorder, process_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    obj = fixture_for("dialogporten.dialog.deleted.v1")
    queue = BY_TYPE[obj["type"]].queue
    dead = IdempotencyStore(env.tables, claim_timeout_seconds=CLAIM_TIMEOUT, retention_seconds=60)
    dead.claim_event(parse_event(obj))  # a worker claimed it, then its process was killed
    started = time.monotonic()
    deliver(queue, serialize_event(obj))  # the message reappears while the claim is still live
    assert recorder.seen == []
    assert process_logs()[-1]["outcome"] == "retry"
    [body] = drain(env, queue, until=started + CLAIM_TIMEOUT + 2.5)  # put back, visible again after expiry
    assert time.monotonic() - started >= CLAIM_TIMEOUT - 0.5
    deliver(queue, body, dequeue_count=1)
    assert len(recorder.seen) == 1
    last = process_logs()[-1]
    assert last["outcome"] == "handled"
    assert "taken over" in last["note"]
    row = dialog_row(env, obj["resourceinstance"])
    assert row is not None
    assert row["status"] == "deleted"


def test_a_crash_between_the_dialog_write_and_completion_does_not_double_count(
    env: StorageClients, recorder: Recorder
) -> None:
    obj = fixture_for("dialogporten.dialog.activity.form-saved.v1")
    DialogStore(env.tables).record(parse_event(obj))  # the dialog row was written, then the worker died
    deliver_event(obj)  # the retry: the idempotency record never completed, so handlers run again
    assert len(recorder.seen) == 1
    row = dialog_row(env, obj["resourceinstance"])
    assert row is not None
    assert (row["activityCount"], row["eventsApplied"]) == (1, 1)


def test_a_dialogs_events_applied_concurrently_in_any_order_lose_no_update(
    env: StorageClients, recorder: Recorder
) -> None:
    dialog_id = str(uuid.uuid4())
    second = iter(range(60))
    types = (
        ["created", "updated", "seen", "transmission.created", "deleted", "restored"]
        + ["activity.information"] * 6
        + ["activity.sent-to-payment", "activity.payment-made"]
    )
    objs = [
        sample_event(f"dialogporten.dialog.{t}.v1", dialog_id=dialog_id, time=f"2026-03-16T11:00:{next(second):02d}.5Z")
        for t in types
    ]
    reversed_objs = list(reversed(objs))
    barrier = threading.Barrier(len(objs))
    errors: list[BaseException] = []

    def one(o: dict[str, Any]) -> None:
        barrier.wait()
        try:
            deliver_event(o)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(o,)) for o in reversed_objs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    row = dialog_row(env, dialog_id)
    assert row is not None
    assert (row["eventsApplied"], row["activityCount"], row["transmissionCount"]) == (len(objs), 8, 1)
    assert row["status"] == "active"
    assert row["lastActivity"]["type"] == "dialogporten.dialog.activity.payment-made.v1"
    assert row["createdAt"] == "2026-03-16T11:00:00.5000000Z"
    assert row["restoredAt"] == "2026-03-16T11:00:05.5000000Z"


def _forged_claim_checks() -> list[tuple[str, dict[str, Any]]]:
    queue = BY_TYPE["dialogporten.dialog.created.v1"].queue
    fresh = f"{queue}/{uuid.uuid4()}.json"
    return [
        ("secrets-container", {"container": "azure-webjobs-secrets", "blob": "host.json"}),
        ("dot-dot-path", {"container": CLAIM_CHECK_CONTAINER, "blob": "../azure-webjobs-secrets/host.json"}),
        ("dot-dot-no-container", {"blob": "../azure-webjobs-secrets/host.json"}),
        ("other-container-right-name", {"container": "azure-webjobs-secrets", "blob": fresh}),
        ("unknown-queue-prefix", {"blob": f"azure-webjobs-secrets/{uuid.uuid4()}.json"}),
        ("encoded-dot-dot", {"blob": f"{queue}/%2e%2e/{uuid.uuid4()}.json"}),
        ("trailing-newline", {"blob": fresh + "\n"}),
        ("uppercase-uuid", {"blob": fresh.upper()}),
        ("not-an-object", "host.json"),  # type: ignore[list-item]
    ]


@pytest.mark.parametrize(
    ("reference"), [c[1] for c in _forged_claim_checks()], ids=[c[0] for c in _forged_claim_checks()]
)
def test_a_claim_check_naming_anything_but_a_blob_the_sink_writes_is_poisoned_unread(
    reference: Any, env: StorageClients, recorder: Recorder, process_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # The secret the forged reference points at really exists in the account.
    secrets = env.blobs.get_container_client("azure-webjobs-secrets")
    secrets.create_container()
    secret = serialize_event(fixture_for("dialogporten.dialog.created.v1")).encode("utf-8")
    secrets.upload_blob("host.json", secret)
    named = reference.get("blob") if isinstance(reference, dict) else None
    if isinstance(named, str) and named != "host.json" and reference.get("container") == "azure-webjobs-secrets":
        secrets.upload_blob(named, secret)  # a well-formed name, in the wrong container: still not read
    env.blobs.get_container_client(CLAIM_CHECK_CONTAINER).create_container()
    queue = BY_TYPE["dialogporten.dialog.created.v1"].queue
    body = json.dumps({"id": "x", "type": "dialogporten.dialog.created.v1", "$claimcheck": reference})
    deliver(queue, body)
    assert recorder.seen == []
    assert poison_bodies(env, queue) == [body]
    [line] = process_logs()
    assert line["outcome"] == "poisoned"
    assert line["reason"].startswith("can never succeed")
    assert "claim check" in line["reason"]


def test_a_handler_can_say_an_event_can_never_succeed(
    env: StorageClients, process_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    from shared.errors import CannotSucceed

    calls: list[str] = []

    def refuse(event: DialogportenEvent) -> None:
        calls.append(event.id)
        raise CannotSucceed("case 42 is closed in the case system")

    app_handlers().add(refuse, DialogportenEvent)
    try:
        obj = fixture_for("dialogporten.dialog.seen.v1")
        deliver_event(obj, dequeue_count=1)  # no raise: poisoned on the first attempt
    finally:
        app_handlers().remove(refuse)
    assert calls == [obj["id"]]
    assert poison_bodies(env, BY_TYPE[obj["type"]].queue) == [serialize_event(obj)]
    [line] = process_logs()
    assert line["outcome"] == "poisoned"
    assert line["reason"] == "can never succeed: CannotSucceed: case 42 is closed in the case system"
    assert (line["event_id"], line["event_type"]) == (obj["id"], obj["type"])
    # released: a replay from the poison queue after the fix runs at once
    store = IdempotencyStore(env.tables, claim_timeout_seconds=60, retention_seconds=60)
    assert store.status(event_key(obj["source"], obj["id"])) is None


def test_a_transient_error_is_retried_not_poisoned(env: StorageClients, recorder: Recorder) -> None:
    from shared.errors import TransientError

    recorder.fail = TransientError("conflict")
    obj = fixture_for("dialogporten.dialog.seen.v1")
    with pytest.raises(TransientError):
        deliver_event(obj, dequeue_count=1)
    assert poison_bodies(env, BY_TYPE[obj["type"]].queue) == []


def test_a_40000_character_id_gives_a_bounded_poisoned_line(
    env: StorageClients, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="dialogporten")
    obj = fixture_for("dialogporten.dialog.seen.v1") | {"id": "i" * 40_000, "resourceinstance": "not-a-guid"}
    deliver_event(obj)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dialogporten.process ")]
    assert line.startswith('dialogporten.process {"outcome":"poisoned"')
    assert len(line) < 32_768 // 2
    assert json.loads(line.partition(" ")[2])["event_id"].startswith("i" * 500)


def test_the_default_handler_uses_the_clients_processing_was_given(
    env: StorageClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.processing.pipeline import process_message
    from shared.stores import clients as storage

    def no_global() -> StorageClients:
        raise AssertionError("a handler reached for the process-wide storage clients")

    no_global.cache_clear = lambda: None  # type: ignore[attr-defined]  # the app_env fixture's teardown calls it
    monkeypatch.setattr(storage, "current", no_global)
    obj = fixture_for("dialogporten.dialog.created.v1")
    queue = BY_TYPE[obj["type"]].queue
    outcome = process_message(
        serialize_event(obj), queue=queue, dequeue_count=1, clients=env, cfg=settings.current(), registry=app_handlers()
    )
    assert outcome == "handled"
    assert dialog_row(env, obj["resourceinstance"]) is not None


def test_a_handler_that_takes_a_context_gets_this_invocations(env: StorageClients) -> None:
    from shared.processing.pipeline import process_message
    from shared.processing.registry import HandlerContext

    got: list[HandlerContext] = []

    def with_context(event: DialogportenEvent, ctx: HandlerContext) -> None:
        got.append(ctx)

    app_handlers().add(with_context, DialogportenEvent)
    try:
        obj = fixture_for("dialogporten.dialog.created.v1")
        queue = BY_TYPE[obj["type"]].queue
        process_message(
            serialize_event(obj),
            queue=queue,
            dequeue_count=2,
            clients=env,
            cfg=settings.current(),
            registry=app_handlers(),
            message_id="m1",
        )
    finally:
        app_handlers().remove(with_context)
    [ctx] = got
    assert ctx.clients is env
    assert (ctx.queue, ctx.dequeue_count, ctx.message_id) == (queue, 2, "m1")


def test_a_forged_far_future_update_does_not_pin_party_or_resource_and_the_conflict_is_logged(
    env: StorageClients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="dialogporten")
    created = fixture_for("dialogporten.dialog.created.v1")
    forged = fixture_for("dialogporten.dialog.updated.v1") | {
        "time": "9999-12-31T23:59:59.9999999Z",
        "subject": "urn:altinn:person:identifier-no:01017012345",
        "resource": "urn:altinn:resource:forged-service",
    }
    deliver_event(created)
    deliver_event(forged)
    deliver_event(fixture_for("dialogporten.dialog.seen.v1"))
    row = dialog_row(env, created["resourceinstance"])
    assert row is not None
    assert (row["party"], row["serviceResource"]) == (created["subject"], "super-simple-service")
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dialogporten.state ")]
    assert line.startswith('dialogporten.state {"outcome":"conflict"')
    logged = json.loads(line.partition(" ")[2])
    assert (logged["event_id"], logged["event_type"], logged["dialog_id"]) == (
        forged["id"],
        forged["type"],
        forged["resourceinstance"],
    )
    assert logged["ignored"] == {"party": forged["subject"], "service_resource": "forged-service"}


def test_the_reason_is_recorded_beside_the_poisoned_message_keyed_on_its_id(
    env: StorageClients, process_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    from shared.stores.poison import PoisonReasonStore

    queue = BY_TYPE["dialogporten.dialog.seen.v1"].queue
    deliver(queue, "[1, 2, 3]")
    [message] = list(env.queue(queue + "-poison").peek_messages())
    [line] = process_logs()
    recorded = PoisonReasonStore(env.tables).for_queue(queue + "-poison")
    assert list(recorded) == [message.id]
    assert recorded[message.id].reason == line["reason"]
    assert "warning" not in line


def test_a_reason_that_cannot_be_written_never_undoes_the_poisoning(
    env: StorageClients, process_logs: Callable[[], list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.stores.poison import PoisonReasonStore

    def table_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the table service is down")

    monkeypatch.setattr(PoisonReasonStore, "record", table_down)
    queue = BY_TYPE["dialogporten.dialog.seen.v1"].queue
    deliver(queue, "[1, 2, 3]")  # returns normally: the host deletes the original
    assert poison_bodies(env, queue) == ["[1, 2, 3]"]  # the message is safe, byte for byte
    [line] = process_logs()
    assert line["outcome"] == "poisoned"
    assert "the reason could not be recorded" in line["warning"]
    assert "the table service is down" in line["warning"]
