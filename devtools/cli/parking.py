"""Parked events, the operations behind ``dpctl parked``: valid events of types the catalog did not know.

    dpctl parked list
    dpctl parked reroute [--dry-run] [--limit N]
    dpctl parked discard MESSAGE_ID [MESSAGE_ID ...] [--dry-run]

(``python -m devtools.parked ...`` is the same command.)

The webhook parks such an event on ``dialogporten-unrouted``, untouched and
with no expiry, and nothing consumes that queue: it waits there until an
operator acts. Once a row for its type is in ``shared/events/catalog.py`` (and
deployed), ``reroute`` moves it to its type's queue, byte for byte, sent
before it is deleted, so a crash in between duplicates it (the handlers
deduplicate on source + id) and never loses it. ``discard`` deletes named
messages for good.

Storage: ``AzureWebJobsStorage`` (a connection string; Azurite locally), or
``--account NAME`` with your own Entra ID sign-in (``az login``; you need the
Storage Queue Data Contributor role).

The functions (:func:`list_parked`, :func:`reroute`, :func:`discard`) take a
``QueueServiceClient`` and return data, so that other tools can wrap them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from azure.storage.queue import QueueMessage, QueueServiceClient

from devtools.cli import queues
from shared.events import catalog, messages
from shared.stores import clients as storage

__all__ = ["Moved", "Parked", "discard", "list_parked", "reroute"]

PARKING_QUEUE = catalog.UNROUTED_QUEUE


@dataclass(frozen=True, slots=True)
class Parked:
    """One parked message, as an operator needs it to decide."""

    message_id: str
    inserted_on: str | None
    readable: bool
    """False when the body is not base64 JSON (it can then only be discarded)."""
    event_id: str | None = None
    event_type: str | None = None
    resource_instance: str | None = None
    """The event's ``resourceinstance``: a dialog id for Dialogporten, a correspondence or file transfer id..."""
    source: str | None = None
    service: str | None = None
    """The service the source belongs to: Dialogporten, Correspondence, Broker, ``app {org}/{app}``..."""
    claim_check: bool = False
    """The event is in a blob; the message is a reference to it (moved as it is)."""
    route_to: str | None = None
    """The queue of its type, when the catalog knows the type now; else None (stays parked)."""
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _camel(asdict(self))


@dataclass(frozen=True, slots=True)
class Moved:
    """A parked message that was (or, in a dry run, would be) sent to its queue."""

    message_id: str
    event_id: str | None
    event_type: str | None
    to: str
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        return _camel(asdict(self))


def _camel(fields: dict[str, Any]) -> dict[str, Any]:
    """dpctl's field names (one name for one thing in every command): ``message_id`` -> ``messageId``."""
    return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name): value for name, value in fields.items()}


def describe(message: QueueMessage) -> Parked:
    """What a parked message holds, without changing it."""
    inserted = None if message.inserted_on is None else message.inserted_on.isoformat().replace("+00:00", "Z")
    described = messages.describe(message.content)
    if not described.readable:
        return Parked(message.id, inserted, readable=False, reason=described.reason)
    row = catalog.lookup(described.event_type) if described.event_type else None
    return Parked(
        message.id,
        inserted,
        readable=True,
        event_id=described.event_id,
        event_type=described.event_type,
        resource_instance=described.dialog_id,
        source=described.source,
        service=described.service,
        claim_check=described.claim_check,
        route_to=None if row is None else row.queue,
        reason=None if row is not None else "type not in the catalog",
    )


def list_parked(service: QueueServiceClient) -> list[Parked]:
    """Every parked message, described; the queue is left as it was."""
    found: list[Parked] = []
    for message, keep in queues.leased(queues.raw(service, PARKING_QUEUE)):
        found.append(describe(message))
        keep()
    return found


def reroute(
    service: QueueServiceClient,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    advance: Callable[[], None] = lambda: None,
) -> list[Moved]:
    """Move every parked message whose type the catalog now knows to that type's queue; returns what moved.

    Byte for byte, with no expiry, sent before deleted. ``dry_run`` moves nothing and
    returns what would move. Messages of still unknown types stay parked.
    """
    source = queues.raw(service, PARKING_QUEUE)
    moved: list[Moved] = []
    for message, keep in queues.leased(source):
        parked = describe(message)
        if parked.route_to is None or (limit is not None and len(moved) >= limit):
            keep()  # still unknown (or over the limit): stays parked
            continue
        if dry_run:
            keep()
        else:
            # Bicep creates every catalog queue; locally the first send does.
            storage.send_creating_queue(
                queues.raw(service, parked.route_to), message.content, time_to_live=storage.NEVER_EXPIRE
            )
            source.delete_message(message)
        moved.append(Moved(message.id, parked.event_id, parked.event_type, parked.route_to, dry_run=dry_run))
        advance()
    return moved


def discard(service: QueueServiceClient, message_ids: set[str], *, dry_run: bool = False) -> list[Parked]:
    """Delete the parked messages with these ids for good; returns what was (or would be) deleted."""
    source = queues.raw(service, PARKING_QUEUE)
    gone: list[Parked] = []
    for message, keep in queues.leased(source):
        if message.id not in message_ids or dry_run:
            keep()
            if message.id in message_ids:
                gone.append(describe(message))
            continue
        gone.append(describe(message))
        source.delete_message(message)
    return gone
