"""Catch-up: read a resource's events from Altinn's events API and put each on its queue through the intake.

Used by the operator CLI (``dpctl catch-up``) and by the app's opt-in timer
(:mod:`shared.functions.catchup`). A page is read through :class:`~shared.altinn.events_api.EventsApi` and
handed to :func:`shared.intake.plan.accept`, the function the webhook calls too, each event on its own as if
Altinn had pushed it: validation, routing, allow-lists and durability are the webhook's, and the sends
of a page run concurrently as a batch's do. A duplicate of an event the webhook already took is harmless:
the handlers deduplicate by ``source`` + ``id``.

Reading ends at the first **empty** page: a short page comes in the middle of the stream whenever Altinn
dropped events the caller may not see (see :mod:`shared.altinn.events_api`). The cursor is the id of the
last event that is on the queues (or refused for good); it is reported after every page, so a run cut
short resumes where it stopped. The API has no time filter, so ``skip_before`` reads from the cursor and
skips older events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from shared.altinn.events_api import EventsApi, EventsApiError
from shared.errors import CatchUpError
from shared.events import rfc3339
from shared.intake.plan import EventSink, Policy, accept
from shared.logs import Outcome

__all__ = [
    "FROM_THE_START",
    "CatchUpError",
    "CatchUpResult",
    "catch_up",
    "parse_since",
]
#: ``--since`` and a fresh cursor: from the oldest event Altinn keeps (90 days).
FROM_THE_START: Final = "0"


def parse_since(value: str) -> datetime | None:
    """An RFC 3339 time (:mod:`shared.events.rfc3339`, the one parser), or None when ``value`` is a cursor."""
    try:
        return rfc3339.parse(value).utc
    except ValueError:
        return None


@dataclass
class CatchUpResult:
    cursor: str
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "read": 0,
            "accepted": 0,
            "parked": 0,
            "validated": 0,
            "rejected": 0,
            "before_since": 0,
        }
    )
    rejected: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    pages: int = 0
    #: True when the end of the stream (an empty page) was reached; False when ``max_seconds`` ran out.
    complete: bool = False
    #: The ``time`` of the last event read (the cursor's), when it had a valid one: how far behind the run is.
    last_time: datetime | None = None


def catch_up(
    resource: str,
    cursor: str,
    *,
    api: EventsApi,
    sink: EventSink,
    policy: Policy,
    skip_before: datetime | None = None,
    on_page: Callable[[CatchUpResult], None] | None = None,
    max_seconds: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> CatchUpResult:
    """Queue every event of ``resource`` after ``cursor``; ``on_page`` runs after each page is on the queues.

    Raises :class:`CatchUpError` with the cursor to resume from when a page cannot be read, storage
    fails, or Altinn's ``next`` link points anywhere but the API's own scheme, host, port and path.
    """
    result = CatchUpResult(cursor)
    deadline = None if max_seconds is None else monotonic() + max_seconds
    requests_before = api.requests
    try:
        while deadline is None or monotonic() < deadline:
            try:
                page = api.page(resource, result.cursor)
            except EventsApiError as exc:
                raise CatchUpError(str(exc), result.cursor) from exc
            if not page.events:
                result.complete = True
                break
            result.pages += 1
            before = result.cursor
            _queue(page.events, result, sink, policy, skip_before)
            if on_page is not None:
                on_page(result)
            if page.foreign_next is not None:
                raise CatchUpError(
                    f"GET {page.url.split('?', 1)[0]}: refused to follow the next link {page.foreign_next[:200]!r}: "
                    "it is not on the API's own scheme, host, port and path (the token would go there)",
                    result.cursor,
                )
            if result.cursor == before:  # cannot happen with Altinn's own ids; never loop on one page
                raise CatchUpError("the page's events have no usable id to continue after", result.cursor)
    except CatchUpError as exc:
        exc.partial = result
        raise
    finally:
        result.requests = api.requests - requests_before
    return result


def _queue(
    events: Sequence[Any], result: CatchUpResult, sink: EventSink, policy: Policy, skip_before: datetime | None
) -> None:
    """One page onto the queues; the cursor moves over every event that is durable or refused for good."""
    counts = result.counts
    counts["read"] += len(events)
    skipped = [skip_before is not None and _older(event, skip_before) for event in events]
    outcomes = iter(accept([e for e, skip in zip(events, skipped, strict=True) if not skip], sink, policy))
    for event, skip in zip(events, skipped, strict=True):
        event_id = event.get("id") if isinstance(event, dict) else None
        if skip:
            counts["before_since"] += 1
        else:
            outcome = next(outcomes)
            if outcome.outcome is Outcome.FAILED:
                # Storage failed: nothing after the last durable event may be skipped by the cursor.
                reason = outcome.reason or "not sent after an earlier failure"
                raise CatchUpError(f"storage refused event {str(event_id)[:80]!r}: {reason}", result.cursor)
            counts[str(outcome.outcome)] = counts.get(str(outcome.outcome), 0) + 1
            if outcome.outcome is Outcome.REJECTED:  # refused for good; logged by the intake
                problem = outcome.problem
                result.rejected.append(
                    {
                        "id": outcome.event_id,
                        "status": problem.status if problem else None,
                        "problem": problem.detail if problem else None,
                    }
                )
        if isinstance(event_id, str) and event_id:
            result.cursor = event_id
            result.last_time = _time_of(event)


def _time_of(event: Any) -> datetime | None:
    """The event's ``time``; None when it has none that parses (the intake refuses it, with the reason)."""
    raw = event.get("time") if isinstance(event, dict) else None
    return parse_since(raw) if isinstance(raw, str) else None


def _older(event: Any, moment: datetime) -> bool:
    when = _time_of(event)
    return when is not None and when < moment
