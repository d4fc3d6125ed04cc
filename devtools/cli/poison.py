"""``dpctl poison``: list poison queues, show what is in one and why, replay it onto its queue, or discard.

A replayed message is sent to the main queue *before* it is deleted from the poison queue, byte for
byte (no decode/encode round trip), so a crash in between duplicates it (the handlers deduplicate by
event id) and never loses it.

Why a message was poisoned is the row the app wrote beside it (:mod:`shared.stores.poison`). A message
with no row is explained as well as it can be: a copy with an expiry is one the Functions host moved
itself (:data:`~shared.stores.poison.HOST_MOVED`, until the hourly sweep renews it and records that); a
body that cannot be read, or that its type's model refuses, says so (``reasonRecorded`` is then false).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueMessage, QueueServiceClient

from devtools.cli import output, queues
from devtools.cli.context import Context
from devtools.cli.output import JsonFlag, console, emit, fail, iso
from shared.errors import EventError, MessageError
from shared.events import catalog, messages
from shared.processing.sweep import expires
from shared.stores.poison import HOST_MOVED, PoisonReason, PoisonReasonStore

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

PEEK_MAX: Final = 32
NO_REASON: Final = "no reason recorded (poisoned before reasons were kept)"

app = typer.Typer(help="Poison queues: <queue>-poison holds what a handler failed on 5 times.", no_args_is_help=True)


def diagnose(raw: str, poison_queue: str, described: messages.Description) -> str:
    """Why a message with no recorded reason can never succeed, as far as its body tells; else :data:`NO_REASON`.
    ``described`` is ``messages.describe(raw)``."""
    # The models (pydantic) only here: every other dpctl command starts without them.
    from shared.events.models import parse_event

    if not described.readable:
        return f"can never succeed: {described.reason}"
    if described.claim_check:
        return NO_REASON
    row = catalog.BY_QUEUE.get(poison_queue.removesuffix(catalog.POISON_SUFFIX))
    try:
        obj = messages.decode_message(base64.b64decode(raw))
        parse_event(obj, expected_type=row.type if row else None)
    except (EventError, MessageError, binascii.Error, ValueError) as exc:
        return f"can never succeed: {exc}"
    return NO_REASON


def describe(
    message: QueueMessage, poison_queue: str, recorded: dict[str, PoisonReason], *, dry_run: bool | None = None
) -> dict[str, Any]:
    """What an operator needs to decide: ids, type, dialog, whether the body is even readable, and why."""
    described = messages.describe(message.content)
    found = recorded.get(message.id)
    if found is not None:
        reason = found.reason
    elif expires(message):
        reason = HOST_MOVED
    else:
        reason = diagnose(message.content, poison_queue, described)
    return {
        "messageId": message.id,
        "queue": poison_queue,
        "insertedOn": iso(message.inserted_on),
        "dequeueCount": message.dequeue_count,
        "readable": described.readable,
        "eventId": described.event_id,
        "eventType": described.event_type,
        "dialogId": described.dialog_id,
        "claimCheck": described.claim_check,
        "reason": reason,
        "reasonRecorded": found is not None,
        "poisonedAt": iso(found.poisoned_at) if found else None,
    }


def recorded_reasons(tables: TableServiceClient, poison_queue: str) -> dict[str, PoisonReason]:
    try:
        return PoisonReasonStore(tables).for_queue(poison_queue)
    except Exception as exc:  # the messages are what matters; show them without their reasons
        output.note(f"warning: the poison reasons could not be read: {exc!r}")
        return {}


def poison_queues(service: QueueServiceClient) -> Iterator[tuple[str, int]]:
    for queue in service.list_queues():
        if queue.name.endswith(catalog.POISON_SUFFIX):
            props = service.get_queue_client(queue.name).get_queue_properties()
            yield queue.name, int(props.approximate_message_count or 0)


def reason_counts(reasons: dict[str, PoisonReason], count: int) -> dict[str, int]:
    """How many messages of a queue were poisoned for each recorded reason; the rest under :data:`NO_REASON`."""
    counted = Counter(r.reason for r in reasons.values())
    found = dict(counted.most_common())
    missing = count - sum(found.values())
    if missing > 0:
        found["no reason recorded (yet): see dpctl poison show"] = missing
    return found


def peek(
    service: QueueServiceClient, tables: TableServiceClient, poison_queue: str, limit: int = PEEK_MAX
) -> list[dict[str, Any]] | None:
    """Up to ``limit`` (at most 32) messages of the poison queue, described; None when it does not exist."""
    try:
        found = queues.raw(service, poison_queue).peek_messages(max_messages=min(limit, PEEK_MAX))
    except ResourceNotFoundError:
        return None
    recorded = recorded_reasons(tables, poison_queue) if found else {}
    return [describe(m, poison_queue, recorded) for m in found]


def replay(
    service: QueueServiceClient,
    tables: TableServiceClient,
    poison_queue: str,
    limit: int | None,
    ids: set[str],
    *,
    dry_run: bool = False,
    advance: Callable[[], None] = lambda: None,
) -> list[dict[str, Any]]:
    """Move messages from ``<queue>-poison`` to ``<queue>``; what was moved (or would be), in order."""
    target_name = poison_queue.removesuffix(catalog.POISON_SUFFIX)
    source, target = queues.raw(service, poison_queue), queues.raw(service, target_name)
    store = PoisonReasonStore(tables)
    recorded = recorded_reasons(tables, poison_queue)
    if not dry_run:
        with contextlib.suppress(ResourceExistsError):
            target.create_queue()
    moved: list[dict[str, Any]] = []
    for message, keep in queues.leased(source):
        if limit is not None and len(moved) >= limit:
            keep()  # left for another run; the rest of the page is visible again within the lease
            break
        if ids and message.id not in ids:
            keep()
            continue
        item = {**describe(message, poison_queue, recorded), "to": target_name, "dryRun": dry_run}
        if dry_run:
            keep()
        else:
            target.send_message(message.content, time_to_live=-1)  # send first ...
            source.delete_message(message)  # ... then delete: a crash in between duplicates, never loses
            _forget(store, poison_queue, message.id)
        moved.append(item)
        advance()
    return moved


def discard(
    service: QueueServiceClient, tables: TableServiceClient, poison_queue: str, ids: set[str], *, dry_run: bool
) -> list[dict[str, Any]]:
    """Delete the named messages of a poison queue for good (and their reasons); what was (or would be) deleted."""
    source = queues.raw(service, poison_queue)
    store = PoisonReasonStore(tables)
    recorded = recorded_reasons(tables, poison_queue)
    gone: list[dict[str, Any]] = []
    for message, keep in queues.leased(source):
        if message.id not in ids:
            keep()
            continue
        gone.append({**describe(message, poison_queue, recorded), "dryRun": dry_run})
        if dry_run:
            keep()
        else:
            source.delete_message(message)
            _forget(store, poison_queue, message.id)
    return gone


def _forget(store: PoisonReasonStore, poison_queue: str, message_id: str) -> None:
    try:
        store.forget(poison_queue, message_id)
    except Exception as exc:  # the message moved; a stale row is deleted by the hourly sweep after a day
        output.note(f"warning: the reason of {message_id} could not be deleted: {exc!r}")


def short(reason: str, width: int = 100) -> str:
    return reason if len(reason) <= width else reason[: width - 3] + "..."


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every poison queue, how many messages it holds, and why they were poisoned."""
    context: Context = ctx.obj
    rows: list[dict[str, Any]] = []
    for name, count in poison_queues(context.storage.queues):
        reasons = recorded_reasons(context.storage.tables, name) if count else {}
        rows.append({"queue": name, "count": count, "reasons": reason_counts(reasons, count)})

    def draw(found: list[dict[str, Any]]) -> None:
        if not found:
            console.print("no poison queues: nothing was ever poisoned")
            return
        grid = output.table("queue", "messages", "why")
        for row in found:
            why = "\n".join(f"{n} x {short(reason)}" for reason, n in list(row["reasons"].items())[:3])
            grid.add_row(row["queue"], str(row["count"]), why)
        console.print(grid)

    emit(rows, draw, as_json=as_json)


@app.command()
def show(
    ctx: typer.Context,
    queue: Annotated[str, typer.Argument(help="the queue or its -poison queue")],
    limit: Annotated[int, typer.Option(min=1, max=PEEK_MAX, help="at most this many (32 at most)")] = PEEK_MAX,
    as_json: JsonFlag = False,
) -> None:
    """Peek at the messages of a poison queue: ids, type, dialog, whether each is readable, and why it is there."""
    context: Context = ctx.obj
    name = queues.poison_queue(queue)
    found = peek(context.storage.queues, context.storage.tables, name, limit)

    def draw(items: list[dict[str, Any]]) -> None:
        if found is None:
            console.print(f"{name} does not exist (nothing was ever poisoned there)")
            return
        if not items:
            console.print(f"{name} is empty")
            return
        grid = output.table(
            "message id", "inserted", "event id", "type", "dialog", "why", whole=("message id", "event id")
        )
        for m in items:
            why = m["reason"] + (" (claim check)" if m["claimCheck"] else "")
            grid.add_row(
                m["messageId"],
                m["insertedOn"] or "",
                m["eventId"] or "",
                m["eventType"] or "",
                m["dialogId"] or "",
                why if m["readable"] else f"[red]{why}[/]",
            )
        console.print(grid)

    emit(found or [], draw, as_json=as_json)


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    queue: Annotated[str, typer.Argument(help="the queue or its -poison queue")],
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many")] = None,
    message_ids: Annotated[list[str] | None, typer.Option("--id", help="only this message id (repeatable)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would move, move nothing")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Move messages from <queue>-poison back to <queue>, byte for byte, sent before deleted; tells why each was."""
    context: Context = ctx.obj
    name = queues.poison_queue(queue)
    ids = set(message_ids or [])
    with output.progress("replaying", total=limit or (len(ids) or None)) as tracker:
        moved = replay(
            context.storage.queues, context.storage.tables, name, limit, ids, dry_run=dry_run, advance=tracker.advance
        )
    target = name.removesuffix(catalog.POISON_SUFFIX)

    def draw(items: list[dict[str, Any]]) -> None:
        verb = "would replay" if dry_run else "replayed"
        for m in items:
            console.print(
                f"{verb} {m['messageId']} {m['eventType'] or ''} {m['eventId'] or ''}: poisoned because {m['reason']}",
                markup=False,
            )
        console.print(f"{verb} {len(items)} message(s) to {target}" + ("" if items else f" ({name} holds none)"))

    emit(moved, draw, as_json=as_json)
    missing = ids - {m["messageId"] for m in moved}
    if missing:
        fail(f"no message with id {', '.join(sorted(missing))} in {name}")


@app.command("discard")
def discard_command(
    ctx: typer.Context,
    queue: Annotated[str, typer.Argument(help="the queue or its -poison queue")],
    message_ids: Annotated[list[str], typer.Argument(help="message ids from `dpctl poison show`")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be deleted; delete nothing")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete poisoned messages for good, with their recorded reasons."""
    context: Context = ctx.obj
    name = queues.poison_queue(queue)
    wanted = set(message_ids)
    gone = discard(context.storage.queues, context.storage.tables, name, wanted, dry_run=dry_run)

    def draw(items: list[dict[str, Any]]) -> None:
        verb = "would discard" if dry_run else "discarded"
        for m in items:
            console.print(f"{verb} {m['messageId']} {m['eventType'] or ''} {m['eventId'] or ''}", markup=False)
        console.print(f"{verb} {len(items)} message(s) from {name}")

    emit(gone, draw, as_json=as_json)
    missing = wanted - {m["messageId"] for m in gone}
    if missing:
        fail(f"no message with id {', '.join(sorted(missing))} in {name}")
