"""``dpctl status``: every catalog queue, its poison twin (and why its messages were poisoned), the parked events,
and the oldest message's age."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueServiceClient

from devtools.cli import output
from devtools.cli.context import Context
from devtools.cli.output import ATTENTION, JsonFlag, console, emit
from devtools.cli.poison import reason_counts, recorded_reasons, short
from shared.events import catalog

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient


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


def collect(service: QueueServiceClient, tables: TableServiceClient | None = None) -> list[dict[str, Any]]:
    rows = []
    for queue in [row.queue for row in catalog.CATALOG] + [catalog.UNROUTED_QUEUE]:
        depth, age = _depth(service, queue)
        poison_queue = catalog.poison_queue_for(queue)
        poison, poison_age = _depth(service, poison_queue)
        reasons = reason_counts(recorded_reasons(tables, poison_queue), poison) if poison and tables is not None else {}
        rows.append(
            {
                "queue": queue,
                "depth": depth,
                "oldestAgeSeconds": age,
                "poison": poison,
                "oldestPoisonAgeSeconds": poison_age,
                "poisonReasons": reasons,
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


def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Queue depths and why messages were poisoned; exit 3 when anything is poisoned or parked (unrouted)."""
    context: Context = ctx.obj
    rows = collect(context.storage.queues, context.storage.tables)
    poisoned = sum(r["poison"] or 0 for r in rows)
    parked = sum(r["depth"] or 0 for r in rows if r["parked"])

    def draw(result: dict[str, Any]) -> None:
        table = output.table("queue", "depth", "oldest", "poison", "oldest poison", "why poisoned")
        for r in result["queues"]:
            depth = "-" if r["depth"] is None else str(r["depth"])
            if r["parked"] and r["depth"]:
                depth = f"[yellow]{depth} parked[/]"
            poison = "-" if r["poison"] is None else (f"[red]{r['poison']}[/]" if r["poison"] else "0")
            why = "\n".join(f"{n} x {short(reason, 80)}" for reason, n in list(r["poisonReasons"].items())[:2])
            table.add_row(
                r["queue"], depth, _age(r["oldestAgeSeconds"]), poison, _age(r["oldestPoisonAgeSeconds"]), why
            )
        console.print(table)
        console.print(f"poisoned: {poisoned}, parked: {parked} ('-': the queue does not exist yet)")

    emit({"queues": rows, "poisoned": poisoned, "parked": parked}, draw, as_json=as_json)
    if poisoned or parked:
        raise typer.Exit(ATTENTION)
