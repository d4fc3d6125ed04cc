"""From a queue message to the user's handlers, exactly once: the core of every queue function.

``process_message(body, queue=..., dequeue_count=...)``:

1. decode the message (a claim check is resolved from its blob in the fixed
   claim-check container; only blob names the sink writes are read; the
   blob is kept, since the queue may deliver the same message again, and the
   storage account's lifecycle rule deletes it after ``claimCheckRetentionDays``);
2. turn it into the typed event of the queue's type (:mod:`shared.events.models`);
3. when a handler of its type may have outside effects (the default for a
   user's handler), claim the event's identity, ``source`` + ``id``
   (:mod:`shared.stores.idempotency`): the claim is the event's own row in its
   dialog, so its one insert also counts the event in the dialog state, and the
   default dialog-state handler has nothing left to do; when every handler
   declared none (``@handles(..., effects=False)``, like the default
   dialog-state handlers, whose one insert per event is its own exactly-once
   step), skip the claim and its completion;
4. run the registered handlers (:mod:`shared.handlers`) with a
   :class:`~shared.processing.registry.HandlerContext` holding this call's
   storage clients, then mark the event completed (when claimed).

What happens on an error is decided by its branch in :mod:`shared.errors`:
a :class:`~shared.errors.PermanentError` poisons at once, anything else is
retried, and the last attempt poisons too. Outcomes, one structured log line
each (``dialogporten.process {"outcome":...}``, :class:`~shared.logs.Outcome`):

* ``handled``   - the handlers ran and succeeded.
* ``duplicate`` - the event was completed before: acknowledged, handlers not run; or,
  unclaimed, an effect-free handler found it applied before (returned ``False``).
* ``retry``     - a handler (or storage) raised: the claim is released and the
  exception re-raised, so the host retries after ``visibilityTimeout``. Also:
  the event is in progress elsewhere; then the untouched message is put back
  on the queue, invisible until about when that claim expires (at most one
  ``visibilityTimeout``), instead of raising: a live duplicate should not burn
  the message's dequeue count, or a worker that died holding a claim would
  push its event into the poison queue before the claim expires.
* ``deferred``  - a handler said "not now" (:class:`~shared.errors.RetryLater`, e.g. Dialogporten in a
  maintenance window): the claim is released and a fresh copy of the message is put back, invisible
  until then (at most 7 days at a time), so no attempt is spent; the line says why and until when.
  Past ``RETRY_LATER_MAX_WAIT_SECONDS`` after the event's time, ``RetryLater`` is an ordinary ``retry``.
* ``poisoned``  - the message can never succeed (not JSON, not its type's
  model, a claim check that is gone or not one the app wrote, a handler's
  :class:`~shared.errors.CannotSucceed`), or this was the last attempt
  (``dequeue_count >= maxDequeueCount``): the untouched body is written to
  ``<queue>-poison`` with no expiry and the message completes; then the reason is
  recorded beside it (:mod:`shared.stores.poison`, best effort: a reason that
  cannot be written is a ``warning`` on the ``poisoned`` line, never a lost or
  unpoisoned message). The app owns the
  last attempt so that the host's own poison move, whose copy expires after
  7 days, is only left for a timeout or a crash (swept by
  :mod:`shared.functions.housekeeping`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError

from shared import logs
from shared.errors import AlreadyCompleted, AlreadyInProgress, ClaimLost, MessageError, PermanentError, RetryLater
from shared.events.catalog import BY_QUEUE, poison_queue_for
from shared.events.messages import decode_message, resolve_claim_check, summary
from shared.events.models import DialogportenEvent, EventError, parse_event
from shared.logs import Outcome
from shared.processing.defaults import keep_dialog_state
from shared.processing.hostconfig import QueueSettings, host_queue_settings
from shared.processing.registry import HandlerContext, Registry
from shared.settings import Settings
from shared.stores.clients import NEVER_EXPIRE, StorageClients, queue_client, send_creating_queue

__all__ = [
    "DEFERRED",
    "DUPLICATE",
    "HANDLED",
    "POISONED",
    "RETRY",
    "QueueSettings",
    "host_queue_settings",
    "process_message",
]

HANDLED: Final = Outcome.HANDLED
DEFERRED: Final = Outcome.DEFERRED
DUPLICATE: Final = Outcome.DUPLICATE
RETRY: Final = Outcome.RETRY
POISONED: Final = Outcome.POISONED


def _fetch_blob(clients: StorageClients) -> Any:
    def fetch(container: str, name: str) -> bytes:
        try:
            return bytes(clients.blobs.get_blob_client(container, name).download_blob().readall())
        except ResourceNotFoundError:
            raise MessageError(f"claim check blob {container}/{name} does not exist") from None

    return fetch


def _to_poison(clients: StorageClients, queue: str, body: str | bytes) -> str | None:
    """Write the untouched body to ``<queue>-poison`` (base64, as the host itself would); the new message's id."""
    poison = poison_queue_for(queue)
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            sent = send_creating_queue(
                queue_client(clients.queues, poison, binary=True), body, time_to_live=NEVER_EXPIRE
            )
            return _id_of(sent)
    return _id_of(send_creating_queue(clients.queue(poison), body, time_to_live=NEVER_EXPIRE))


def _id_of(sent: Any) -> str | None:
    message_id = getattr(sent, "id", None)
    return message_id if isinstance(message_id, str) else None


def _record_reason(
    clients: StorageClients, queue: str, message_id: str | None, reason: str, fields: dict[str, Any]
) -> str:
    """Record why, beside the poisoned message; "" when done, else what went wrong (the message is safe anyway)."""
    from shared.stores.poison import PoisonReasonStore

    if message_id is None:
        return "the reason could not be recorded beside the message: the queue returned no message id"

    event_id, event_type = fields.get("event_id"), fields.get("event_type")
    try:
        PoisonReasonStore(clients.tables).record(
            poison_queue_for(queue),
            message_id,
            reason,
            event_id=event_id if isinstance(event_id, str) else None,
            event_type=event_type if isinstance(event_type, str) else None,
        )
    except Exception as exc:  # best effort: never fail or undo the poisoning for it
        return f"the reason could not be recorded beside the message: {exc!r}"
    return ""


def _typed(queue: str, obj: dict[str, Any]) -> DialogportenEvent:
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
    registry: Registry,
    message_id: str | None = None,
    queue_settings: QueueSettings | None = None,
) -> Outcome:
    """Process one queue message; returns the outcome, or raises to have the host retry it.

    On the last attempt it never raises: the message is poisoned (never-expiring copy) instead.
    """
    started = time.monotonic()
    qs = queue_settings or host_queue_settings()
    fields: dict[str, Any] = {"queue": queue, "dequeue_count": dequeue_count, "message_id": message_id}

    def log(outcome: Outcome, level: int = logging.INFO, **extra: Any) -> None:
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        logs.log_event(logs.PROCESS, outcome, level, **fields, duration_ms=duration_ms, **extra)

    ctx = HandlerContext(clients, cfg, queue, dequeue_count, message_id)
    try:
        return _process(body, ctx=ctx, registry=registry, fields=fields, qs=qs, log=log)
    except Exception as exc:
        # Every failure is logged here, once: a handler's exception or storage trouble alike.
        reason = _reason(exc)
        last = dequeue_count >= qs.max_dequeue_count
        if not (last or isinstance(exc, PermanentError)):
            log(RETRY, logging.WARNING, reason=reason)
            raise
        if last and not isinstance(exc, PermanentError):
            reason += f"; attempt {dequeue_count} of {qs.max_dequeue_count}, the last"
        try:
            poisoned_id = _to_poison(clients, queue, body)
        except Exception as poison_exc:
            # The poison queue is unreachable too: raise, so the host retries or moves the message itself.
            log(RETRY, logging.ERROR, reason=f"{reason}; could not write to the poison queue: {poison_exc!r}")
            raise exc from poison_exc
        unrecorded = _record_reason(clients, queue, poisoned_id, reason, fields)
        extra = {"warning": unrecorded} if unrecorded else {}
        log(POISONED, logging.ERROR, reason=reason, poison_queue=poison_queue_for(queue), **extra)
        return POISONED


def _process(
    body: str | bytes,
    *,
    ctx: HandlerContext,
    registry: Registry,
    fields: dict[str, Any],
    qs: QueueSettings,
    log: Callable[..., None],
) -> Outcome:
    clients, queue, cfg = ctx.clients, ctx.queue, ctx.settings
    # A MessageError or EventError here poisons at once: not an event of this queue's type.
    envelope = decode_message(body)
    fields.update(summary(envelope))
    obj = resolve_claim_check(envelope, _fetch_blob(clients))
    event = _typed(queue, obj)

    chosen = registry.handlers_for(type(event))
    if not any(handler.effects for handler in chosen):
        try:
            applied = [handler(event, ctx) for handler in chosen]
        except Exception as exc:
            put_back = _put_back_later(exc, event, body, ctx, log)
            if put_back is None:
                raise
            return put_back
        outcome = DUPLICATE if any(result is False for result in applied) else HANDLED
        log(outcome)
        return outcome

    from shared.stores.idempotency import IdempotencyStore  # only when a handler has effects (not on the default path)

    store = IdempotencyStore.from_settings(clients.tables, cfg)
    try:
        claim = store.claim_event(event)
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

    if claim.in_dialog:  # the claim inserted the event's row: the dialog state counts it already
        chosen = [handler for handler in chosen if handler.fn is not keep_dialog_state]
    try:
        for handler in chosen:
            handler(event, ctx)
    except Exception as exc:
        try:
            store.release(claim)  # so that the retry (or a replay from poison) runs at once
        except Exception:  # the claim then expires on its own; the handler's error is the one that matters
            logging.getLogger(logs.LOGGER_NAME).warning(
                "could not release claim on %s", logs.bound_text(event.id), exc_info=True
            )
        put_back = _put_back_later(exc, event, body, ctx, log)
        if put_back is None:
            raise
        return put_back

    extra: dict[str, Any] = {}
    if claim.taken_over:
        extra["note"] = "claim taken over after the previous one expired"
    try:
        store.complete(claim)
    except ClaimLost as exc:
        extra["warning"] = str(exc)
    log(HANDLED, logging.WARNING if "warning" in extra else logging.INFO, **extra)
    return HANDLED


#: Azure Queue Storage's longest visibility timeout (7 days).
MAX_VISIBILITY_SECONDS: Final = 7 * 24 * 3600


def _put_back_later(
    exc: Exception, event: DialogportenEvent, body: str | bytes, ctx: HandlerContext, log: Callable[..., None]
) -> Outcome | None:
    """DEFERRED after putting a fresh copy of the message back until a handler's ``RetryLater`` moment.

    None when ``exc`` is not a ``RetryLater``, or when the event has waited its bound (then it is an
    ordinary attempt). The copy is a new message with the same bytes: its dequeue count starts again, so
    "not now" spends no attempt.
    """
    if not isinstance(exc, RetryLater):
        return None
    now = datetime.now(UTC)
    bound = event.time + timedelta(seconds=ctx.settings.processing.retry_later_max_wait_seconds)
    if now >= bound:
        return None  # waited long enough: an ordinary transient failure now, counted as an attempt
    until = min(exc.moment(now), bound)
    hidden_for = max(1, min(math.ceil((until - now).total_seconds()), MAX_VISIBILITY_SECONDS))
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    send_creating_queue(ctx.clients.queue(ctx.queue), text, visibility_timeout=hidden_for, time_to_live=NEVER_EXPIRE)
    visible_at = now + timedelta(seconds=hidden_for)
    log(DEFERRED, logging.WARNING, reason=exc.reason, until=visible_at.isoformat(timespec="seconds"),
        deferred_seconds=hidden_for)  # fmt: skip
    return DEFERRED


def _reason(exc: Exception) -> str:
    if isinstance(exc, MessageError | EventError):  # what the message is, not a failure of code
        return f"can never succeed: {exc}"
    if isinstance(exc, RetryLater):
        return f"RetryLater: {exc}; the event has waited RETRY_LATER_MAX_WAIT_SECONDS, so this counts as an attempt"
    if isinstance(exc, PermanentError):
        return f"can never succeed: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"
