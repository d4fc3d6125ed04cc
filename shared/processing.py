"""From a queue message to the user's handlers, exactly once: the core of every queue function.

``process_message(body, queue=..., dequeue_count=...)``:

1. decode the message (a claim check is resolved from its blob; the blob is
   kept, since the queue may deliver the same message again, and the storage
   account's lifecycle rule deletes it after ``claimCheckRetentionDays``);
2. turn it into the typed event of the queue's type (:mod:`shared.events`);
3. claim the event id in the idempotency store (:mod:`shared.idempotency`);
4. run the registered handlers (:mod:`shared.handlers`), then mark the event completed.

Outcomes, one structured log line each (``dialogporten.process {...}``):

* ``handled``   - the handlers ran and succeeded.
* ``duplicate`` - the event id was completed before: acknowledged, handlers not run.
* ``retry``     - a handler raised: the claim is released and the exception
  re-raised, so the host retries after ``visibilityTimeout``. Also: the event
  is in progress elsewhere; then the untouched message is put back on the
  queue, invisible until about when that claim expires (at most one
  ``visibilityTimeout``), instead of raising: a live duplicate should not burn
  the message's dequeue count, or a worker that died holding a claim would
  push its event into the poison queue before the claim expires.
* ``poisoned``  - the message can never succeed (not JSON, not its type's
  model, a claim check whose blob is gone): the untouched body is written to
  ``<queue>-poison`` at once and the message completes. Also logged on the
  last attempt (``dequeue_count >= maxDequeueCount``) before re-raising: the
  host then moves the message to the poison queue itself.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import BinaryBase64EncodePolicy

from shared import handlers, logs
from shared.catalog import BY_QUEUE, UNROUTED_QUEUE, poison_queue_for
from shared.events import DialogportenEvent, EventError, UnknownEvent, parse_event, parse_unknown
from shared.idempotency import AlreadyCompleted, AlreadyInProgress, ClaimLost, IdempotencyStore
from shared.messages import MessageError, decode_message, resolve_claim_check, summary
from shared.settings import Settings
from shared.storage import NEVER_EXPIRE, StorageClients, send_creating_queue

__all__ = [
    "DUPLICATE",
    "HANDLED",
    "POISONED",
    "RETRY",
    "QueueSettings",
    "host_queue_settings",
    "process_message",
]

HANDLED: Final = "handled"
DUPLICATE: Final = "duplicate"
RETRY: Final = "retry"
POISONED: Final = "poisoned"

HOST_JSON: Final = Path(__file__).resolve().parent.parent / "host.json"


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The queue trigger settings of host.json that processing must agree with."""

    max_dequeue_count: int = 5
    visibility_timeout_seconds: float = 30.0


def _timespan_seconds(value: str) -> float:
    """``hh:mm:ss`` (as host.json writes timespans) -> seconds."""
    parts = [float(p) for p in value.split(":")]
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def read_queue_settings(path: Path) -> QueueSettings:
    defaults = QueueSettings()
    try:
        queues = json.loads(path.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
    except (OSError, ValueError):
        return defaults
    return QueueSettings(
        max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
        visibility_timeout_seconds=_timespan_seconds(str(queues.get("visibilityTimeout", "00:00:30"))),
    )


@lru_cache(maxsize=1)
def host_queue_settings() -> QueueSettings:
    """host.json's queue settings, read once per process."""
    return read_queue_settings(HOST_JSON)


def _fetch_blob(clients: StorageClients) -> Any:
    def fetch(container: str, name: str) -> bytes:
        try:
            return bytes(clients.blobs.get_blob_client(container, name).download_blob().readall())
        except ResourceNotFoundError:
            raise MessageError(f"claim check blob {container}/{name} does not exist") from None

    return fetch


def _to_poison(clients: StorageClients, queue: str, body: str | bytes) -> None:
    """Write the untouched body to ``<queue>-poison`` (base64, as the host itself would)."""
    poison = poison_queue_for(queue)
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            binary = clients.queues.get_queue_client(poison, message_encode_policy=BinaryBase64EncodePolicy())
            send_creating_queue(binary, body, time_to_live=NEVER_EXPIRE)
            return
    send_creating_queue(clients.queue(poison), body, time_to_live=NEVER_EXPIRE)


def _typed(queue: str, obj: dict[str, Any]) -> DialogportenEvent | UnknownEvent:
    if queue == UNROUTED_QUEUE:
        return parse_unknown(obj)
    row = BY_QUEUE.get(queue)
    if row is None:
        raise EventError(f"queue {queue!r} is not in the catalog")
    return parse_event(obj, expected_type=row.type)


def process_message(
    body: str | bytes,
    *,
    queue: str,
    dequeue_count: int,
    clients: StorageClients,
    cfg: Settings,
    message_id: str | None = None,
    queue_settings: QueueSettings | None = None,
) -> str:
    """Process one queue message; returns the outcome, or raises to have the host retry it."""
    started = time.monotonic()
    qs = queue_settings or host_queue_settings()
    fields: dict[str, Any] = {"queue": queue, "dequeue_count": dequeue_count, "message_id": message_id}

    def log(outcome: str, level: int = logging.INFO, **extra: Any) -> None:
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        logs.log_event(logs.PROCESS, outcome, level, **fields, duration_ms=duration_ms, **extra)

    try:
        return _process(body, queue=queue, fields=fields, clients=clients, cfg=cfg, qs=qs, log=log)
    except Exception as exc:
        # Every failure is logged here, once: a handler's exception or storage trouble alike.
        reason = f"{type(exc).__name__}: {exc}"
        if dequeue_count >= qs.max_dequeue_count:
            reason += f"; attempt {dequeue_count} of {qs.max_dequeue_count}, the host moves it to the poison queue"
            log(POISONED, logging.ERROR, reason=reason, poison_queue=poison_queue_for(queue))
        else:
            log(RETRY, logging.WARNING, reason=reason)
        raise


def _process(
    body: str | bytes,
    *,
    queue: str,
    fields: dict[str, Any],
    clients: StorageClients,
    cfg: Settings,
    qs: QueueSettings,
    log: Callable[..., None],
) -> str:
    try:
        envelope = decode_message(body)
        fields.update(summary(envelope))
        obj = resolve_claim_check(envelope, _fetch_blob(clients))
        event = _typed(queue, obj)
    except (MessageError, EventError) as exc:
        _to_poison(clients, queue, body)
        log(POISONED, logging.ERROR, reason=f"can never succeed: {exc}", poison_queue=poison_queue_for(queue))
        return POISONED

    store = IdempotencyStore(
        clients.tables,
        claim_timeout_seconds=cfg.idempotency_claim_timeout_seconds,
        retention_seconds=cfg.idempotency_retention_seconds,
    )
    try:
        claim = store.claim(event.id, event_type=event.type, dialog_id=event.dialog_id)
    except AlreadyCompleted:
        log(DUPLICATE)
        return DUPLICATE
    except AlreadyInProgress as exc:
        remaining = (exc.expires_at.timestamp() - time.time()) + 1
        delay = max(1, math.ceil(min(remaining, qs.visibility_timeout_seconds)))
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        send_creating_queue(clients.queue(queue), text, visibility_timeout=delay, time_to_live=NEVER_EXPIRE)
        log(RETRY, logging.WARNING, reason=f"in progress elsewhere; put back, visible again in {delay} s")
        return RETRY

    try:
        for handler in handlers.handlers_for(type(event)):
            handler(event)
    except Exception:
        try:
            store.release(claim)  # so that the retry runs at once instead of waiting for the claim to expire
        except Exception:  # the claim then expires on its own; the handler's error is the one that matters
            logging.getLogger(logs.LOGGER_NAME).warning("could not release claim on %s", event.id, exc_info=True)
        raise

    extra: dict[str, Any] = {}
    if claim.taken_over:
        extra["note"] = "claim taken over after the previous one expired"
    try:
        store.complete(claim)
    except ClaimLost as exc:
        extra["warning"] = str(exc)
    log(HANDLED, logging.WARNING if "warning" in extra else logging.INFO, **extra)
    return HANDLED
