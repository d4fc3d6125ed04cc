"""Timer adapter: once a day, delete idempotency records whose retention has passed.

Without it the ``idempotency`` table grows by one row per event forever. A
record is only deleted after ``IDEMPOTENCY_RETENTION_SECONDS`` (7 days), well
past Altinn's 1.5-day retry window, so no duplicate it guards against can
still arrive.
"""

from __future__ import annotations

import logging
from typing import Final

import azure.functions as func

from shared import logs, settings, storage

bp = func.Blueprint()

#: 03:17 UTC every day (NCRONTAB with seconds): a quiet hour, off the round minute.
SCHEDULE: Final = "0 17 3 * * *"
#: Below host.json's functionTimeout (5 min): what is left is purged the next day.
MAX_SECONDS: Final = 240


def purge() -> int:
    from shared.idempotency import IdempotencyStore  # on first use: indexing needs no table SDK

    cfg = settings.current()
    store = IdempotencyStore(
        storage.current().tables,
        claim_timeout_seconds=cfg.idempotency_claim_timeout_seconds,
        retention_seconds=cfg.idempotency_retention_seconds,
    )
    removed = store.purge_expired(max_seconds=MAX_SECONDS)
    logging.getLogger(logs.LOGGER_NAME).info('dialogporten.housekeeping {"purged_idempotency_records":%d}', removed)
    return removed


@bp.function_name("purge_idempotency")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def purge_idempotency(timer: func.TimerRequest) -> None:
    purge()
