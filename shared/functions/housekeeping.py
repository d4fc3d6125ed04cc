"""Timer adapters: the retention work nothing else does.

* ``purge_idempotency`` (daily): delete idempotency records whose retention has
  passed. Without it the ``idempotency`` table grows by one row per event
  forever. A record is only deleted after ``IDEMPOTENCY_RETENTION_SECONDS``
  (7 days), well past Altinn's 1.5-day retry window, so no duplicate it guards
  against can still arrive.
* ``sweep_poison`` (hourly): replace the copies the Functions host moved to a
  ``-poison`` queue itself (a timeout or a crash on the last attempt; they
  expire after 7 days) by never-expiring copies of the same bytes
  (:mod:`shared.processing.sweep`), and record why beside each
  (:data:`shared.stores.poison.HOST_MOVED`); then delete the recorded reasons
  whose message is no longer on its queue (older than a day).
"""

from __future__ import annotations

import logging
from typing import Final

import azure.functions as func

from shared import logs, settings
from shared.events.catalog import CATALOG
from shared.stores import clients as storage

bp = func.Blueprint()

#: 03:17 UTC every day (NCRONTAB with seconds): a quiet hour, off the round minute.
SCHEDULE: Final = "0 17 3 * * *"
#: Every hour at minute 41: far inside the 7 days a host-moved copy lives.
SWEEP_SCHEDULE: Final = "0 41 * * * *"
#: Below host.json's functionTimeout (5 min): what is left is done by the next run.
MAX_SECONDS: Final = 240
HOUSEKEEPING: Final = "dialogporten.housekeeping"


def purge() -> int:
    from shared.stores.idempotency import IdempotencyStore  # on first use: indexing needs no table SDK

    store = IdempotencyStore.from_settings(storage.current().tables, settings.current())
    removed = store.purge_expired(max_seconds=MAX_SECONDS)
    logs.log_event(HOUSEKEEPING, logs.Outcome.PURGED, logging.INFO, purged_idempotency_records=removed)
    return removed


def sweep() -> int:
    """Renew every host-moved poison copy; returns how many were renewed."""
    from shared.events import messages
    from shared.processing.sweep import sweep_poison_queues  # on first use: indexing needs no queue SDK
    from shared.stores.poison import HOST_MOVED, PoisonReasonStore

    clients = storage.current()
    queues = [row.poison_queue for row in CATALOG]
    result = sweep_poison_queues(clients.queues, queues, max_seconds=MAX_SECONDS)
    reasons = PoisonReasonStore(clients.tables)
    for queue, message_id, raw in result.renewed:
        ids = messages.describe(raw).ids()
        extra: dict[str, str] = {}
        try:
            reasons.record(queue, message_id, HOST_MOVED, event_id=ids["event_id"], event_type=ids["event_type"])
        except Exception as exc:  # best effort: the copy is safe and never expires either way
            extra["warning"] = f"the reason could not be recorded beside the message: {exc!r}"
        # The app could not log these itself (the last attempt never returned): this is their poisoned line.
        logs.log_event(
            logs.PROCESS,
            logs.Outcome.POISONED,
            logging.ERROR,
            **ids,
            poison_queue=queue,
            message_id=message_id,
            reason=f"{HOST_MOVED}; now kept with no expiry",
            **extra,
        )
    forgotten = 0
    for queue, present in result.present.items():
        try:
            forgotten += reasons.forget_missing(queue, present)
        except Exception:  # the next run tries again; a stale row is harmless, no message shows it
            logging.getLogger(logs.LOGGER_NAME).warning(
                "could not clean the poison reasons of %s", queue, exc_info=True
            )
    logs.log_event(
        HOUSEKEEPING, logs.Outcome.SWEPT, logging.INFO, renewed=len(result.renewed), kept=result.kept,
        complete=result.complete, forgotten_reasons=forgotten,
    )  # fmt: skip
    return len(result.renewed)


@bp.function_name("purge_idempotency")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def purge_idempotency(timer: func.TimerRequest) -> None:
    purge()


@bp.function_name("sweep_poison")
@bp.timer_trigger(arg_name="timer", schedule=SWEEP_SCHEDULE, run_on_startup=False, use_monitor=True)
def sweep_poison(timer: func.TimerRequest) -> None:
    sweep()
