"""``dpctl catch-up``: read Altinn's events API and put every event on its queue through the webhook's core.

The reading and queueing is :func:`shared.catchup.catch_up`, the same code the app's catch-up timer runs.

Each event goes through :func:`shared.ingest.handle` exactly as a single ``application/json`` POST
from Altinn would (the function the webhook adapter calls), so validation, routing, allow-lists and
durability are the same; a duplicate of an event already received is harmless, the handlers
deduplicate by event id.

The API (EV ``Controllers/EventsController.cs``): ``GET /events/api/v1/events?resource=…&after=…&size=…``
needs ``resource`` and ``after`` (``0``: from the oldest kept, 90 days), and gives the next page in the
``next`` header. It has no time filter, so ``--since TIME`` reads from the start and skips older events.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from devtools.cli.context import Context
from devtools.cli.output import console, emit_json, fail, note
from shared.catchup import MAX_SIZE, CatchUpError, CatchUpResult, catch_up, parse_time
from shared.ingest import Policy

__all__ = ["catch_up_command", "parse_time"]


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
    cutoff = parse_time(since)
    cursor = "0" if cutoff else since
    from shared.sink import QueueSink

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
                platform=context.platform,
                tokens=context.altinn(),
                sink=QueueSink(context.storage),
                policy=Policy(cfg.allowed_resources, cfg.allowed_source_hosts),
                size=size,
                types=tuple(types or ()),
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
