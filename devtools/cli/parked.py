"""``dpctl parked``: events of types the catalog did not know when they arrived (operations: cli/parking.py).

They wait on ``dialogporten-unrouted``, untouched and with no expiry, until an operator re-routes
them (once the catalog has their type) or discards them. Moves are sent before they are deleted,
byte for byte.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from devtools.cli import output
from devtools.cli import parking as parked
from devtools.cli.context import Context
from devtools.cli.output import JsonFlag, console, emit, fail

app = typer.Typer(help="Parked events: valid events of types the catalog did not know.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every parked event: ids, type, the service its source belongs to, and the queue it would go to now."""
    context: Context = ctx.obj
    found = [p.to_json() for p in parked.list_parked(context.storage.queues)]

    def draw(items: list[dict[str, Any]]) -> None:
        grid = output.table(
            "message id", "type", "service", "resource instance", "event id", "goes to", whole=("message id",)
        )
        for p in items:
            where = p["routeTo"] or ("(type not in the catalog)" if p["readable"] else f"unreadable: {p['reason']}")
            grid.add_row(
                escape(p["messageId"]),
                escape(p["eventType"] or ""),
                escape(p["service"] or ""),
                escape(p["resourceInstance"] or ""),
                escape(p["eventId"] or ""),
                escape(where),
            )
        if items:
            console.print(grid)
        console.print(f"{len(items)} parked, {sum(p['routeTo'] is not None for p in items)} routable now")

    emit(found, draw, as_json=as_json)


@app.command()
def reroute(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would move; move nothing")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Move parked events whose type the catalog knows now to that type's queue."""
    context: Context = ctx.obj
    with output.progress("rerouting", total=limit) as tracker:
        moved = [
            m.to_json()
            for m in parked.reroute(context.storage.queues, dry_run=dry_run, limit=limit, advance=tracker.advance)
        ]

    def draw(items: list[dict[str, Any]]) -> None:
        verb = "would move" if dry_run else "moved"
        for m in items:
            console.print(escape(f"{verb} {m['messageId']} {m['eventType'] or ''} {m['eventId'] or ''} to {m['to']}"))
        console.print(f"{verb} {len(items)} message(s)")

    emit(moved, draw, as_json=as_json)


@app.command()
def discard(
    ctx: typer.Context,
    message_ids: Annotated[list[str], typer.Argument(help="message ids from `dpctl parked list`")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be deleted; delete nothing")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete parked messages for good."""
    context: Context = ctx.obj
    wanted = set(message_ids)
    gone = [p.to_json() for p in parked.discard(context.storage.queues, wanted, dry_run=dry_run)]

    def draw(items: list[dict[str, Any]]) -> None:
        verb = "would discard" if dry_run else "discarded"
        for p in items:
            console.print(escape(f"{verb} {p['messageId']} {p['eventType'] or ''} {p['eventId'] or ''}"))
        console.print(f"{verb} {len(items)} message(s)")

    emit(gone, draw, as_json=as_json)
    missing = wanted - {p["messageId"] for p in gone}
    if missing:
        fail(f"no parked message with id {', '.join(sorted(missing))}")
