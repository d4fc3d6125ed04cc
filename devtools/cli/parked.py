"""``dpctl parked``: events of types the catalog did not know when they arrived (operations: cli/parking.py).

They wait on ``dialogporten-unrouted``, untouched and with no expiry, until an operator re-routes
them (once the catalog has their type) or discards them. Moves are sent before they are deleted,
byte for byte.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from devtools.cli import parking as parked
from devtools.cli.context import Context
from devtools.cli.output import console, emit_json, fail

app = typer.Typer(help="Parked events: valid events of types the catalog did not know.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every parked event: ids, type, and the queue it would go to now (if the catalog knows its type)."""
    context: Context = ctx.obj
    found = parked.list_parked(context.storage.queues)
    if as_json:
        emit_json([p.to_json() for p in found])
        return
    for p in found:
        where = p.route_to or ("(type not in the catalog)" if p.readable else f"unreadable: {p.reason}")
        console.print(escape(f"{p.message_id} {p.event_type or ''} {p.event_id or ''} -> {where}"))
    console.print(f"{len(found)} parked, {sum(p.route_to is not None for p in found)} routable now")


@app.command()
def reroute(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would move; move nothing")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Move parked events whose type the catalog knows now to that type's queue."""
    context: Context = ctx.obj
    moved = parked.reroute(context.storage.queues, dry_run=dry_run, limit=limit)
    if as_json:
        emit_json([m.to_json() for m in moved])
        return
    verb = "would move" if dry_run else "moved"
    for m in moved:
        console.print(escape(f"{verb} {m.message_id} {m.event_type or ''} {m.event_id or ''} to {m.to}"))
    console.print(f"{verb} {len(moved)} message(s)")


@app.command()
def discard(
    ctx: typer.Context,
    message_ids: Annotated[list[str], typer.Argument(help="message ids from `dpctl parked list`")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be deleted; delete nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Delete parked messages for good."""
    context: Context = ctx.obj
    wanted = set(message_ids)
    gone = parked.discard(context.storage.queues, wanted, dry_run=dry_run)
    if as_json:
        emit_json([p.to_json() for p in gone])
    else:
        verb = "would discard" if dry_run else "discarded"
        for p in gone:
            console.print(escape(f"{verb} {p.message_id} {p.event_type or ''} {p.event_id or ''}"))
        console.print(f"{verb} {len(gone)} message(s)")
    missing = wanted - {p.message_id for p in gone}
    if missing:
        fail(f"no parked message with id {', '.join(sorted(missing))}")
