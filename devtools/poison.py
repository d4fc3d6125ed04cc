"""Operator CLI for poison queues: list them, show what is in one, replay it onto its queue.

    python -m devtools.poison list
    python -m devtools.poison show dialogporten-dialog-created-v1
    python -m devtools.poison replay dialogporten-dialog-created-v1 [--limit N] [--id MESSAGE_ID ...]

Storage: ``AzureWebJobsStorage`` (a connection string; Azurite locally), or
``--account NAME`` to reach an Azure storage account with your own Entra ID
sign-in (``az login``; you need the Storage Queue Data Contributor role).
A replayed message is sent to the main queue *before* it is deleted from the
poison queue, so a crash in between duplicates it (the handlers deduplicate
by event id) and never loses it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueServiceClient

from shared import catalog, messages, storage
from shared.settings import STORAGE_CONNECTION

#: How long a message being replayed stays invisible to other replayers.
LEASE_SECONDS = 60


def service_from(args: argparse.Namespace) -> QueueServiceClient:
    if args.account:
        from azure.identity import DefaultAzureCredential

        return QueueServiceClient(f"https://{args.account}.queue.core.windows.net", credential=DefaultAzureCredential())
    conn = os.environ.get(STORAGE_CONNECTION)
    if not conn:
        raise SystemExit(f"Set {STORAGE_CONNECTION} to a connection string, or pass --account NAME")
    return QueueServiceClient.from_connection_string(storage.expand_connection_string(conn))


def _raw(service: QueueServiceClient, name: str) -> QueueClient:
    # No decode policy: the body is moved exactly as it is, base64 and all.
    return service.get_queue_client(name)


def describe(raw_body: str) -> dict[str, Any]:
    """What an operator needs to decide: ids, type, dialog, and whether the body is even readable."""
    try:
        text = base64.b64decode(raw_body, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return {"readable": False, "reason": "not base64-encoded UTF-8"}
    try:
        obj = messages.decode_message(text)
    except messages.MessageError as exc:
        return {"readable": False, "reason": str(exc)}
    return {"readable": True, **messages.summary(obj), "claim_check": messages.CLAIM_CHECK_KEY in obj}


def poison_queues(service: QueueServiceClient) -> Iterator[tuple[str, int]]:
    for queue in service.list_queues():
        if queue.name.endswith(catalog.POISON_SUFFIX):
            props = service.get_queue_client(queue.name).get_queue_properties()
            yield queue.name, int(props.approximate_message_count or 0)


def _poison_name(queue: str) -> str:
    return queue if queue.endswith(catalog.POISON_SUFFIX) else catalog.poison_queue_for(queue)


def show(service: QueueServiceClient, queue: str, out: TextIO) -> int:
    count = 0
    try:
        for message in _raw(service, _poison_name(queue)).peek_messages(max_messages=32):
            out.write(json.dumps({"message_id": message.id, "inserted_on": str(message.inserted_on),
                                  **describe(message.content)}) + "\n")  # fmt: skip
            count += 1
    except ResourceNotFoundError:
        out.write(f"{_poison_name(queue)} does not exist (nothing was ever poisoned there)\n")
    return count


def replay(service: QueueServiceClient, queue: str, limit: int | None, ids: set[str], out: TextIO) -> int:
    poison_name = _poison_name(queue)
    target_name = poison_name.removesuffix(catalog.POISON_SUFFIX)
    source, target = _raw(service, poison_name), _raw(service, target_name)
    with contextlib.suppress(ResourceExistsError):
        target.create_queue()
    moved = 0
    seen: set[str] = set()
    while limit is None or moved < limit:
        batch = list(source.receive_messages(max_messages=32, visibility_timeout=LEASE_SECONDS))
        fresh = [m for m in batch if m.id not in seen]
        for message in batch:
            if message.id in seen:  # skipped earlier in this run: hand it back at once
                source.update_message(message, visibility_timeout=0)
        if not fresh:
            break
        for message in fresh:
            seen.add(message.id)
            if (ids and message.id not in ids) or (limit is not None and moved >= limit):
                source.update_message(message, visibility_timeout=0)  # leave it for another run
                continue
            target.send_message(message.content, time_to_live=-1)
            source.delete_message(message)
            moved += 1
            out.write(json.dumps({"replayed": message.id, "to": target_name, **describe(message.content)}) + "\n")
    return moved


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.poison", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--account", help="storage account name (uses your az login), instead of AzureWebJobsStorage")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="poison queues and how many messages each holds")
    p_show = sub.add_parser("show", help="peek at up to 32 messages of a poison queue")
    p_show.add_argument("queue", help="the queue or its -poison queue")
    p_replay = sub.add_parser("replay", help="move messages from <queue>-poison back to <queue>")
    p_replay.add_argument("queue", help="the queue or its -poison queue")
    p_replay.add_argument("--limit", type=int, default=None, help="at most this many")
    p_replay.add_argument("--id", action="append", default=[], help="only this message id (repeatable)")
    args = parser.parse_args(argv)
    service = service_from(args)
    if args.command == "list":
        for name, count in poison_queues(service):
            out.write(f"{name}\t{count}\n")
        return 0
    if args.command == "show":
        show(service, args.queue, out)
        return 0
    moved = replay(service, args.queue, args.limit, set(args.id), out)
    out.write(f"replayed {moved} message(s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
