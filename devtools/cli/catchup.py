"""``dpctl catch-up``: read Altinn's events API and put every event on its queue through the intake.

The reading and queueing is :func:`shared.intake.catchup.catch_up`, the same code the app's catch-up timer runs:
each page is handed to :func:`shared.intake.plan.accept` (the function the webhook calls too), each event as if
Altinn had pushed it alone, so validation, routing, allow-lists and durability are the webhook's; a
duplicate of an event already received is harmless, the handlers deduplicate by ``source`` + ``id``.

Reading ends at the first empty page (a short page comes in the middle of the stream whenever Altinn
drops events the caller may not see). The API has no time filter, so ``--since TIME`` reads from the
start and skips older events.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, NoReturn

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from devtools.cli.context import Context
from devtools.cli.output import console, emit_json, fail, note
from shared.altinn.events_api import MAX_SIZE, EventsApi, check_resource
from shared.intake.catchup import FROM_THE_START, CatchUpError, CatchUpResult, catch_up, parse_since
from shared.intake.plan import Policy

__all__ = ["catch_up_command", "looks_like_a_time"]

_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def looks_like_a_time(value: str) -> bool:
    """Meant as a time (it starts with a date), so it must be one: never taken for a cursor Altinn cannot know."""
    return _DATE.match(value) is not None


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
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fetch the events Altinn kept and queue each one as the webhook would; prints the cursor to resume from."""
    context: Context = ctx.obj
    try:
        check_resource(resource)
    except ValueError as exc:
        fail(f"--resource: {exc}")
    cutoff = parse_since(since)
    if cutoff is None and looks_like_a_time(since):
        fail(
            f"--since {since[:60]!r} is not an RFC 3339 time: seconds and an offset are required, "
            "e.g. 2026-03-16T11:43:00Z (or give a cursor, or 0)"
        )
    cursor = FROM_THE_START if cutoff else since
    from shared.stores.sink import QueueSink

    cfg = context.app_settings
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True, disable=as_json
    ) as progress:
        task = progress.add_task("reading events", total=None)

        def on_page(partial: CatchUpResult) -> None:
            counts = partial.counts
            progress.update(task, description=f"{counts['read']} read, {counts['accepted']} queued")

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
    counts = result.counts
    output: dict[str, Any] = {**counts, "rejectedEvents": result.rejected, "cursor": result.cursor}
    if as_json:
        emit_json(output)
    else:
        console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))
        for item in result.rejected:
            console.print(f"[red]refused[/] {item['id']}: {item['status']} {item['problem']}")
        console.print(
            f"cursor: {result.cursor}\nresume with: dpctl --env {context.env.value} catch-up --resource {resource} "
            f"--since {result.cursor}"
        )


def _stop(message: str, resource: str, cursor: str) -> NoReturn:
    note(f"resume with: dpctl catch-up --resource {resource} --since {cursor}")
    fail(message)
