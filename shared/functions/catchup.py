"""The opt-in catch-up timer: closes delivery gaps from Altinn's events API by itself.

Every 5 minutes, for each resource in ``CATCHUP_RESOURCES`` (and only when Maskinporten is configured),
it reads the events after the resource's cursor (table ``catchup``) and puts them on the queues through
the intake (:func:`shared.intake.catchup.catch_up`, the code ``dpctl catch-up`` runs). The cursor is saved after
every page that is on the queues, so a run cut short resumes where it stopped. Events the webhook already
took are queued again and deduplicated by the handlers; events Altinn gave up pushing (its dead letters,
after about 1.5 days) are recovered within the 90 days Altinn keeps them.

The first catch-up of a resource reads from the oldest kept event but queues only those younger than
``CATCHUP_INITIAL_LOOKBACK_SECONDS``; that look-back is saved with the cursor and holds until a run reaches
the end of the stream, however many runs the first catch-up takes.

One resource's failure stays its own: a refused token, an error answer, a body that is not an array, a
foreign ``next`` link or a storage failure is logged with the resource and the cursor, and the other
resources of the run go on. The run then fails as a whole (so the Functions host records it), after
every resource had its turn.

Cost: one events request per resource per run when nothing is new (12 an hour), plus one per 1000 new
events and one for the empty page that ends the stream; one Maskinporten token and one Altinn exchange
about every 30 minutes. Lag: at most one period (5 minutes) plus the run. ``make bench`` measures both
against the simulator.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import azure.functions as func

from shared import logs, settings
from shared.errors import CatchUpError, CatchUpFailed
from shared.stores import clients as storage

if TYPE_CHECKING:
    from shared.intake.plan import EventSink, Policy
    from shared.stores.cursors import CursorStore

bp = func.Blueprint()

#: Every 5 minutes at second 23 (NCRONTAB with seconds): off the round minute.
SCHEDULE: Final = "23 */5 * * * *"
#: Below host.json's functionTimeout (5 min), and below the period: runs never overlap.
MAX_SECONDS: Final = 200
CATCHUP: Final = "dialogporten.catchup"


def run(cfg: settings.Settings | None = None, clients: storage.StorageClients | None = None) -> list[dict[str, Any]]:
    """One catch-up of every configured resource; returns a summary per resource (also logged)."""
    cfg = cfg or settings.current()
    if not cfg.catchup.resources:
        return []
    if not cfg.maskinporten.enabled:
        reason = f"CATCHUP_RESOURCES is set but Maskinporten is not configured: set {cfg.maskinporten.missing}"
        logs.log_event(CATCHUP, logs.Outcome.FAILED, logging.ERROR, reason=reason)
        return [{"outcome": "failed", "reason": reason}]
    from shared.intake.plan import Policy
    from shared.stores.cursors import CursorStore
    from shared.stores.sink import QueueSink

    clients = clients or storage.current()
    sink = QueueSink(clients)
    policy = Policy.from_settings(cfg)
    started = time.monotonic()
    summaries: list[dict[str, Any]] = []
    cursors: CursorStore | None = None
    for resource in cfg.catchup.resources:
        fields: dict[str, Any] = {"resource": resource}
        try:
            cursors = cursors or CursorStore(clients.tables)
            left = max(1.0, MAX_SECONDS - (time.monotonic() - started))
            summaries.append(
                _one(resource, cfg=cfg, cursors=cursors, sink=sink, policy=policy, max_seconds=left, fields=fields)
            )
        except Exception as exc:
            fields.update(reason=f"{type(exc).__name__}: {exc}"[:1000])
            logs.log_event(CATCHUP, logs.Outcome.FAILED, logging.ERROR, **fields)
            summaries.append({**fields, "outcome": "failed"})
    return summaries


def _one(
    resource: str,
    *,
    cfg: settings.Settings,
    cursors: CursorStore,
    sink: EventSink,
    policy: Policy,
    max_seconds: float,
    fields: dict[str, Any],
) -> dict[str, Any]:
    from shared.altinn import clients as clients_of  # on first use: indexing needs neither SDK nor key
    from shared.intake.catchup import FROM_THE_START, CatchUpResult, catch_up
    from shared.stores.cursors import Saved

    saved = cursors.get(resource)
    if saved is None:  # the first catch-up: its look-back is saved before the first page, and kept
        lookback = timedelta(seconds=cfg.catchup.initial_lookback_seconds)
        saved = Saved(FROM_THE_START, datetime.now(UTC) - lookback)
        cursors.put(resource, saved)
    fields.update(from_cursor=saved.cursor, cursor=saved.cursor)
    if saved.skip_before is not None:
        fields["skip_before"] = saved.skip_before.isoformat()

    def save(partial: CatchUpResult) -> None:
        fields["cursor"] = partial.cursor
        cursors.put(resource, Saved(partial.cursor, saved.skip_before))

    try:
        result = catch_up(
            resource,
            saved.cursor,
            api=clients_of.events_api(cfg.maskinporten),
            sink=sink,
            policy=policy,
            skip_before=saved.skip_before,
            on_page=save,
            max_seconds=max_seconds,
        )
    except CatchUpError as exc:
        # Logged with where it stopped and what it did first; the next run resumes from the saved cursor.
        if exc.partial is not None:
            fields.update(exc.partial.counts, requests=exc.partial.requests, complete=False)
        fields.update(cursor=exc.cursor, reason=str(exc)[:1000])
        logs.log_event(CATCHUP, logs.Outcome.FAILED, logging.ERROR, **fields)
        return {**fields, "outcome": "failed"}
    if result.complete and saved.skip_before is not None:
        cursors.put(resource, Saved(result.cursor))  # the first catch-up is done: later events are all new
    fields.update(result.counts, cursor=result.cursor, requests=result.requests, complete=result.complete)
    if result.last_time is not None:  # how far behind the newest event read is (Altinn holds back 30 s)
        fields["lag_seconds"] = round((datetime.now(UTC) - result.last_time).total_seconds(), 1)
    for item in result.rejected:
        fields.setdefault("rejected_ids", []).append(item["id"])
    logs.log_event(CATCHUP, "caught_up", logging.INFO, **fields)
    return {**fields, "outcome": "caught_up"}


@bp.function_name("catch_up_events")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def catch_up_events(timer: func.TimerRequest) -> None:
    failed = [s.get("resource", "") for s in run() if s.get("outcome") == "failed"]
    if failed:
        raise CatchUpFailed(f"catch-up failed for {', '.join(failed)} (see the dialogporten.catchup lines)")
