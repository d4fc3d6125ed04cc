"""``dpctl catch-up``: read Altinn's events API and put every event on its queue through the intake.

The reading and queueing is :func:`shared.intake.catchup.catch_up`, the same code the app's catch-up timer runs:
each page is handed to :func:`shared.intake.plan.accept` (the function the webhook calls too), each event as if
Altinn had pushed it alone, so validation, routing, allow-lists and durability are the webhook's; a
duplicate of an event already received is harmless, the handlers deduplicate by ``source`` + ``id``.

Reading ends at the first empty page (a short page comes in the middle of the stream whenever Altinn
drops events the caller may not see). The API has no time filter, so ``--since TIME`` reads from the
start and skips older events.

``--since`` is checked before any call, since Altinn reads an ``after`` it does not know as "from the oldest
event kept" (``getevents_v2``): a typo would silently re-read 90 days. It is one of

* an RFC 3339 time with seconds and an offset (``2026-03-16T11:43:00Z``);
* ``0``: everything Altinn keeps;
* a cursor: the id of an event, as printed by the last run. The ids Altinn's services give are GUIDs
  (Dialogporten's UUIDv7, the apps', Correspondence's and Broker's ``Guid.NewGuid()``); CloudEvents allows
  any non-empty string, so another id is taken too (with a note), unless it has white space or a control
  character, or reads as a time: a date that is not RFC 3339, a time of day, a duration (``2h``, ``3 days``)
  or a word such as ``yesterday`` or ``now``.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Final, NoReturn

import typer

from devtools.cli import output
from devtools.cli.context import Context
from devtools.cli.output import JsonFlag, console, emit, fail, note
from shared.altinn.events_api import MAX_SIZE, EventsApi, check_resource
from shared.intake.catchup import FROM_THE_START, CatchUpError, CatchUpResult, catch_up, parse_since
from shared.intake.plan import Policy

__all__ = ["catch_up_command", "check_since", "looks_like_a_time"]

_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME_OF_DAY: Final = re.compile(r"\d{1,2}:\d{2}")
_DURATION: Final = re.compile(
    r"(?i)[+-]?\d+(?:[.,]\d+)?\s*(?:s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|"
    r"mo|months?|y|years?)(?:\s*ago)?"
)
_WORDS: Final = frozenset({"now", "today", "yesterday", "tomorrow", "last", "latest", "start", "beginning", "all"})


def looks_like_a_time(value: str) -> bool:
    """Meant as a time (it starts with a date), so it must be one: never taken for a cursor Altinn cannot know."""
    return _DATE.match(value) is not None


def check_since(value: str) -> tuple[datetime | None, str]:
    """``--since`` as (the time to skip events before, or None; the cursor to read after); else exit 1."""
    cutoff = parse_since(value)
    if cutoff is not None:
        return cutoff, FROM_THE_START
    if looks_like_a_time(value):
        fail(
            f"--since {value[:60]!r} is not an RFC 3339 time: seconds and an offset are required, "
            "e.g. 2026-03-16T11:43:00Z (or give a cursor, or 0)"
        )
    shown = repr(value[:60])
    if _TIME_OF_DAY.match(value) or _DURATION.fullmatch(value.strip()) or value.strip().lower() in _WORDS:
        fail(
            f"--since {shown} reads as a time, and only RFC 3339 times are taken: e.g. 2026-03-16T11:43:00Z; "
            "or give a cursor (an event id, as the last run printed it), or 0"
        )
    if not value.strip() or any(c.isspace() or not c.isprintable() for c in value):
        fail(
            f"--since {shown} is neither a time nor a cursor: a cursor is an event id (no spaces), "
            "as the last run printed it, or 0"
        )
    if value != FROM_THE_START:
        try:
            uuid.UUID(value)
        except ValueError:
            note(
                f"note: --since {shown} is not a GUID (the ids Altinn's services give): taken as an event id; "
                "an id Altinn does not know reads from the oldest event it keeps"
            )
    return None, value


def catch_up_command(
    ctx: typer.Context,
    resource: Annotated[str, typer.Option(help="the resource URN, e.g. urn:altinn:resource:super-simple-service")],
    since: Annotated[
        str,
        typer.Option(
            help="an event id (the cursor printed last time), 0 for everything kept (90 days), or an RFC 3339 time"
        ),
    ],
    size: Annotated[int, typer.Option(min=1, max=MAX_SIZE, help="events per page (Altinn caps at 1000)")] = MAX_SIZE,
    types: Annotated[list[str] | None, typer.Option("--type", help="only this type (repeatable)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fetch the events Altinn kept and queue each one as the webhook would; prints the cursor to resume from."""
    context: Context = ctx.obj
    try:
        check_resource(resource)
    except ValueError as exc:
        fail(f"--resource: {exc}")
    cutoff, cursor = check_since(since)
    from shared.stores.sink import QueueSink

    cfg = context.app_settings
    with output.progress("reading events") as tracker:

        def on_page(partial: CatchUpResult) -> None:
            counts = partial.counts
            tracker.advance(counts["read"] - tracker.done)
            tracker.update(f"{counts['read']} read, {counts['accepted']} queued")

        try:
            result = catch_up(
                resource,
                cursor,
                api=EventsApi(context.platform, context.altinn(), size=size, types=tuple(types or ())),
                sink=QueueSink(context.storage),
                policy=Policy.from_settings(cfg),
                skip_before=cutoff,
                on_page=on_page,
            )
        except CatchUpError as exc:
            _stop(str(exc), resource, exc.cursor)
    counts = {("beforeSince" if k == "before_since" else k): v for k, v in result.counts.items()}
    refused = [
        {"eventId": r.get("id"), "status": r.get("status"), "problem": r.get("problem")} for r in result.rejected
    ]
    report: dict[str, Any] = {**counts, "rejectedEvents": refused, "cursor": result.cursor}

    def draw(found: dict[str, Any]) -> None:
        console.print(", ".join(f"{k}: {found[k]}" for k in counts))
        for item in found["rejectedEvents"]:
            console.print(f"[red]refused[/] {item['eventId']}: {item['status']} {item['problem']}")
        console.print(
            f"cursor: {result.cursor}\nresume with: dpctl --env {context.env.value} catch-up --resource {resource} "
            f"--since {result.cursor}",
            markup=False,
        )

    emit(report, draw, as_json=as_json)


def _stop(message: str, resource: str, cursor: str) -> NoReturn:
    note(f"resume with: dpctl catch-up --resource {resource} --since {cursor}")
    fail(message)
