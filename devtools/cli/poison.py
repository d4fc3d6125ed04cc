"""``dpctl poison``: list poison queues, show what is in one, replay it onto its queue.

A replayed message is sent to the main queue *before* it is deleted from the poison queue, byte for
byte (no decode/encode round trip), so a crash in between duplicates it (the handlers deduplicate by
event id) and never loses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any, Final

import typer
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueServiceClient

from devtools.cli import output
from devtools.cli.context import Context
from devtools.cli.output import console, emit_json, fail
from shared.events import catalog, messages

#: How long a message being replayed stays invisible to other replayers.
LEASE_SECONDS: Final = 60
PEEK_MAX: Final = 32

app = typer.Typer(help="Poison queues: <queue>-poison holds what a handler failed on 5 times.", no_args_is_help=True)


def raw_queue(service: QueueServiceClient, name: str) -> QueueClient:
    # No decode policy: the body is moved exactly as it is, base64 and all.
    return service.get_queue_client(name)


def describe(raw_body: str) -> dict[str, Any]:
    """What an operator needs to decide: ids, type, dialog, and whether the body is even readable."""
    described = messages.describe(raw_body)
    if not described.readable:
        return {"readable": False, "reason": described.reason}
    return {"readable": True, **described.ids(), "claim_check": described.claim_check}


def poison_name(queue: str) -> str:
    return queue if queue.endswith(catalog.POISON_SUFFIX) else catalog.poison_queue_for(queue)


def poison_queues(service: QueueServiceClient) -> Iterator[tuple[str, int]]:
    for queue in service.list_queues():
        if queue.name.endswith(catalog.POISON_SUFFIX):
            props = service.get_queue_client(queue.name).get_queue_properties()
            yield queue.name, int(props.approximate_message_count or 0)


def peek(service: QueueServiceClient, queue: str, limit: int = PEEK_MAX) -> list[dict[str, Any]] | None:
    """Up to ``limit`` (at most 32) messages of the poison queue, described; None when it does not exist."""
    try:
        found = raw_queue(service, poison_name(queue)).peek_messages(max_messages=min(limit, PEEK_MAX))
    except ResourceNotFoundError:
        return None
    return [
        {"message_id": m.id, "inserted_on": str(m.inserted_on), "dequeue_count": m.dequeue_count, **describe(m.content)}
        for m in found
    ]


def replay(service: QueueServiceClient, queue: str, limit: int | None, ids: set[str]) -> list[dict[str, Any]]:
    """Move messages from ``<queue>-poison`` to ``<queue>``; what was moved, in order."""
    source_name = poison_name(queue)
    target_name = source_name.removesuffix(catalog.POISON_SUFFIX)
    source, target = raw_queue(service, source_name), raw_queue(service, target_name)
    with contextlib.suppress(ResourceExistsError):
        target.create_queue()
    moved: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        while limit is None or len(moved) < limit:
            batch = list(source.receive_messages(max_messages=32, visibility_timeout=LEASE_SECONDS))
            fresh = [m for m in batch if m.id not in seen]
            for message in batch:
                if message.id in seen:  # skipped earlier in this run: hand it back at once
                    source.update_message(message, visibility_timeout=0)
            if not fresh:
                break
            for message in fresh:
                seen.add(message.id)
                if (ids and message.id not in ids) or (limit is not None and len(moved) >= limit):
                    source.update_message(message, visibility_timeout=0)  # leave it for another run
                    continue
                target.send_message(message.content, time_to_live=-1)  # send first ...
                source.delete_message(message)  # ... then delete: a crash in between duplicates, never loses
                moved.append({"replayed": message.id, "to": target_name, **describe(message.content)})
    except ResourceNotFoundError:
        pass  # no poison queue: nothing was ever poisoned there
    return moved


@app.command("list")
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every poison queue and how many messages it holds."""
    context: Context = ctx.obj
    rows: list[dict[str, Any]] = [{"queue": q, "count": n} for q, n in poison_queues(context.storage.queues)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no poison queues: nothing was ever poisoned")
        return
    table = output.table("queue", "messages")
    for row in rows:
        table.add_row(row["queue"], str(row["count"]))
    console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    queue: Annotated[str, typer.Argument(help="the queue or its -poison queue")],
    limit: Annotated[int, typer.Option(min=1, max=PEEK_MAX, help="at most this many (32 at most)")] = PEEK_MAX,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Peek at the messages of a poison queue: ids, type, dialog, and whether each is readable."""
    context: Context = ctx.obj
    found = peek(context.storage.queues, queue, limit)
    if as_json:
        emit_json(found or [])
        return
    name = poison_name(queue)
    if found is None:
        console.print(f"{name} does not exist (nothing was ever poisoned there)")
        return
    if not found:
        console.print(f"{name} is empty")
        return
    table = output.table(
        "message id", "inserted", "event id", "type", "dialog", "note", whole=("message id", "event id")
    )
    for m in found:
        note = "" if m["readable"] else f"[red]{m['reason']}[/]"
        table.add_row(
            m["message_id"],
            m["inserted_on"],
            str(m.get("event_id") or ""),
            str(m.get("event_type") or ""),
            str(m.get("dialog_id") or ""),
            note + (" claim check" if m.get("claim_check") else ""),
        )
    console.print(table)


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    queue: Annotated[str, typer.Argument(help="the queue or its -poison queue")],
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many")] = None,
    message_ids: Annotated[list[str] | None, typer.Option("--id", help="only this message id (repeatable)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would move (first 32), move nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Move messages from <queue>-poison back to <queue>, byte for byte, sent before deleted."""
    context: Context = ctx.obj
    ids = set(message_ids or [])
    service = context.storage.queues
    if dry_run:
        found = peek(service, queue) or []
        moved = [m for m in found if not ids or m["message_id"] in ids][:limit]
    else:
        moved = replay(service, queue, limit, ids)
    if as_json:
        emit_json(moved)
    else:
        for m in moved:
            console.print(
                f"{'would replay' if dry_run else 'replayed'} {m.get('message_id') or m.get('replayed')} "
                f"{m.get('event_type') or ''} {m.get('event_id') or ''}"
            )
        console.print(
            f"{'would replay' if dry_run else 'replayed'} {len(moved)} message(s) to "
            f"{poison_name(queue).removesuffix(catalog.POISON_SUFFIX)}"
        )
    missing = ids - {str(m.get("replayed") or m.get("message_id")) for m in moved}
    if missing:
        fail(f"no message with id {', '.join(sorted(missing))} in {poison_name(queue)}")
