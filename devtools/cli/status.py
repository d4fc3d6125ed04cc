"""``dpctl status``: every catalog queue, its poison twin, the parked events, and the oldest message's age."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueServiceClient

from devtools.cli import output
from devtools.cli.context import Context
from devtools.cli.output import ATTENTION, console, emit_json
from shared.events import catalog


def _depth(service: QueueServiceClient, name: str) -> tuple[int | None, float | None]:
    """Approximate count and the age in seconds of the oldest visible message; (None, None) if absent."""
    client = service.get_queue_client(name)
    try:
        count = int(client.get_queue_properties().approximate_message_count or 0)
        oldest = next(iter(client.peek_messages(max_messages=1)), None) if count else None
    except ResourceNotFoundError:
        return None, None
    if oldest is None or oldest.inserted_on is None:
        return count, None
    return count, (datetime.now(UTC) - oldest.inserted_on).total_seconds()


def collect(service: QueueServiceClient) -> list[dict[str, Any]]:
    rows = []
    for queue in [row.queue for row in catalog.CATALOG] + [catalog.UNROUTED_QUEUE]:
        depth, age = _depth(service, queue)
        poison, poison_age = _depth(service, catalog.poison_queue_for(queue))
        rows.append(
            {
                "queue": queue,
                "depth": depth,
                "oldestAgeSeconds": age,
                "poison": poison,
                "oldestPoisonAgeSeconds": poison_age,
                "parked": queue == catalog.UNROUTED_QUEUE,
            }
        )
    return rows


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Queue depths; exit 3 when anything is poisoned or parked (unrouted), so a script can gate on it."""
    context: Context = ctx.obj
    rows = collect(context.storage.queues)
    poisoned = sum(r["poison"] or 0 for r in rows)
    parked = sum(r["depth"] or 0 for r in rows if r["parked"])
    if as_json:
        emit_json({"queues": rows, "poisoned": poisoned, "parked": parked})
    else:
        table = output.table("queue", "depth", "oldest", "poison", "oldest poison")
        for r in rows:
            depth = "-" if r["depth"] is None else str(r["depth"])
            if r["parked"] and r["depth"]:
                depth = f"[yellow]{depth} parked[/]"
            poison = "-" if r["poison"] is None else (f"[red]{r['poison']}[/]" if r["poison"] else "0")
            table.add_row(r["queue"], depth, _age(r["oldestAgeSeconds"]), poison, _age(r["oldestPoisonAgeSeconds"]))
        console.print(table)
        console.print(f"poisoned: {poisoned}, parked: {parked} ('-': the queue does not exist yet)")
    if poisoned or parked:
        raise typer.Exit(ATTENTION)
