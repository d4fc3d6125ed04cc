"""The opt-in catch-up timer: closes delivery gaps from Altinn's events API by itself.

Every 5 minutes, for each resource in ``CATCHUP_RESOURCES`` (and only when Maskinporten is configured),
it reads the events after the resource's cursor (table ``catchup``) and puts them on the queues through
the webhook's core (:func:`shared.catchup.catch_up`, the code ``dpctl catch-up`` runs). The cursor is
saved after every page that is on the queues, so a run cut short resumes where it stopped. Events the
webhook already took are queued again and deduplicated by the handlers; events Altinn gave up pushing
(its dead letters, after about 1.5 days) are recovered within the 90 days Altinn keeps them.

The first run of a resource (no cursor yet) reads from the oldest kept event but queues only those
younger than ``CATCHUP_INITIAL_LOOKBACK_SECONDS``.

Cost: one events request per resource per run when nothing is new (12 an hour), plus one per 1000 new
events; one Maskinporten token and one Altinn exchange about every 30 minutes. Lag: at most one period
(5 minutes) plus the run. ``make bench`` measures both against the simulator.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import azure.functions as func

from shared import logs, settings, storage

bp = func.Blueprint()

#: Every 5 minutes at second 23 (NCRONTAB with seconds): off the round minute.
SCHEDULE: Final = "23 */5 * * * *"
#: Below host.json's functionTimeout (5 min), and below the period: runs never overlap.
MAX_SECONDS: Final = 200
CATCHUP: Final = "dialogporten.catchup"


def run(cfg: settings.Settings | None = None, clients: storage.StorageClients | None = None) -> list[dict[str, Any]]:
    """One catch-up of every configured resource; returns a summary per resource (also logged)."""
    cfg = cfg or settings.current()
    enrichment = cfg.enrichment
    if not enrichment.catchup_resources:
        return []
    if not enrichment.enabled:
        reason = f"CATCHUP_RESOURCES is set but Maskinporten is not configured: set {enrichment.missing}"
        logs.log_event(CATCHUP, logs.Outcome.FAILED, logging.ERROR, reason=reason)
        return [{"outcome": "failed", "reason": reason}]
    from shared import enrichment as clients_of  # on first use: indexing needs neither SDK nor key
    from shared.catchup import CatchUpError, CatchUpResult, CursorStore, catch_up
    from shared.ingest import Policy
    from shared.sink import QueueSink

    clients = clients or storage.current()
    cursors = CursorStore(clients.tables)
    sink = QueueSink(clients)
    policy = Policy(
        cfg.allowed_resources, cfg.allowed_source_hosts, max_clock_skew=timedelta(seconds=cfg.max_clock_skew_seconds)
    )
    platform = clients_of.environment(enrichment).platform
    started = time.monotonic()
    summaries: list[dict[str, Any]] = []
    for resource in enrichment.catchup_resources:
        saved = cursors.get(resource)
        skip_before = None
        if saved is None:
            skip_before = datetime.now(UTC) - timedelta(seconds=enrichment.catchup_initial_lookback_seconds)

        def save(partial: CatchUpResult, resource: str = resource) -> None:
            cursors.put(resource, partial.cursor)

        fields: dict[str, Any] = {"resource": resource, "from_cursor": saved or "0"}
        try:
            result = catch_up(
                resource,
                saved or "0",
                platform=platform,
                tokens=clients_of.events_tokens(enrichment),
                sink=sink,
                policy=policy,
                skip_before=skip_before,
                on_page=save,
                max_seconds=max(1.0, MAX_SECONDS - (time.monotonic() - started)),
            )
        except CatchUpError as exc:
            # Logged with where it stopped; the next run resumes from the saved cursor.
            fields.update(cursor=exc.cursor, reason=str(exc)[:500])
            logs.log_event(CATCHUP, logs.Outcome.FAILED, logging.ERROR, **fields)
            summaries.append({**fields, "outcome": "failed"})
            continue
        if saved is None and result.counts["read"] == 0:
            cursors.put(resource, "0")  # nothing kept yet: later events are all new, no look-back needed
        fields.update(result.counts, cursor=result.cursor, requests=result.requests, complete=result.complete)
        for item in result.rejected:
            fields.setdefault("rejected_ids", []).append(item["id"])
        logs.log_event(CATCHUP, "caught_up", logging.INFO, **fields)
        summaries.append({**fields, "outcome": "caught_up"})
    return summaries


@bp.function_name("catch_up_events")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def catch_up_events(timer: func.TimerRequest) -> None:
    run()
