"""Why a message was poisoned: the ``poisonreasons`` table, one row beside each poisoned message.

The poisoned message itself stays byte for byte what the queue delivered (it is the source of truth, and what
``dpctl poison replay`` puts back); the reason lives here, keyed on the message:

* ``PartitionKey`` = the poison queue (``<queue>-poison``), ``RowKey`` = the poison message's id (the id
  ``dpctl poison show`` lists);
* ``Reason`` (the text of the ``poisoned`` log line, at most :data:`MAX_REASON` characters), ``PoisonedAt``,
  and the event's ``EventId`` and ``EventType`` when the body could be read.

Who writes a row: processing, right after it wrote the poison copy
(:func:`shared.processing.pipeline.process_message`), and the hourly sweep for each copy the Functions host
moved itself, with :data:`HOST_MOVED` (:mod:`shared.processing.sweep`). Writing it is best effort: the message
is already safe on the poison queue when the row is written, so a row that cannot be written is logged and
never fails or undoes the poisoning; such a message is listed with no recorded reason.

Deletion (Table Storage has no TTL): ``dpctl poison replay`` and ``dpctl poison discard`` delete the row of
each message they move or delete; a row whose message left its queue in any other way (deleted in Storage
Explorer, say) is deleted by the hourly sweep once it is older than :data:`ORPHAN_AFTER` and its message was
not seen on a complete pass over the queue.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from shared.stores.tables import ensure_table

if TYPE_CHECKING:
    from collections.abc import Iterable

    from azure.data.tables import TableClient, TableServiceClient

__all__ = ["HOST_MOVED", "ORPHAN_AFTER", "POISON_TABLE", "PoisonReason", "PoisonReasonStore"]

POISON_TABLE: Final = "poisonreasons"
#: The reason of a copy the Functions host moved itself (its last attempt never returned).
HOST_MOVED: Final = "moved by the host after its last attempt (timeout or crash)"
#: Longer reasons are cut (a string property holds 32 K characters; an exception's text can be anything).
MAX_REASON: Final = 4000
#: How old a row must be before the sweep may delete it for a message no longer on its queue: far longer
#: than any lease (a message being replayed is invisible for a minute and is not seen by the sweep).
ORPHAN_AFTER: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class PoisonReason:
    queue: str
    """The poison queue."""
    message_id: str
    reason: str
    poisoned_at: datetime | None = None
    event_id: str | None = None
    event_type: str | None = None


class PoisonReasonStore:
    """The rows of table :data:`POISON_TABLE`; the table is created on first use (Bicep creates it in Azure)."""

    def __init__(self, tables: TableServiceClient) -> None:
        self._tables = tables

    @property
    def _table(self) -> TableClient:
        return ensure_table(self._tables, POISON_TABLE)  # created and cached once per process

    def record(
        self,
        queue: str,
        message_id: str,
        reason: str,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Write (or replace) the reason of message ``message_id`` of poison queue ``queue``."""
        from azure.data.tables import UpdateMode

        entity: dict[str, Any] = {
            "PartitionKey": queue,
            "RowKey": message_id,
            "Reason": reason[:MAX_REASON],
            "PoisonedAt": at or datetime.now(UTC),
        }
        if event_id:
            entity["EventId"] = event_id[:MAX_REASON]
        if event_type:
            entity["EventType"] = event_type[:MAX_REASON]
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def for_queue(self, queue: str) -> dict[str, PoisonReason]:
        """Every recorded reason of poison queue ``queue``, by message id."""
        from azure.core.exceptions import ResourceNotFoundError

        found: dict[str, PoisonReason] = {}
        try:
            rows = self._table.query_entities("PartitionKey eq @queue", parameters={"queue": queue})
            for row in rows:
                found[str(row["RowKey"])] = _reason(row)
        except ResourceNotFoundError:
            return {}
        return found

    def forget(self, queue: str, message_id: str) -> None:
        """Delete the row of a message that was replayed or discarded (none there is fine)."""
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(queue, message_id)

    def forget_missing(self, queue: str, present: Iterable[str], *, now: datetime | None = None) -> int:
        """Delete the rows older than :data:`ORPHAN_AFTER` whose message is not in ``present``; how many."""
        keep = set(present)
        cutoff = (now or datetime.now(UTC)) - ORPHAN_AFTER
        removed = 0
        for message_id, reason in self.for_queue(queue).items():
            if message_id in keep or reason.poisoned_at is None or reason.poisoned_at > cutoff:
                continue
            self.forget(queue, message_id)
            removed += 1
        return removed


def _reason(row: Any) -> PoisonReason:
    at = row.get("PoisonedAt")

    def text(name: str) -> str | None:
        value = row.get(name)
        return value if isinstance(value, str) else None

    return PoisonReason(
        queue=str(row["PartitionKey"]),
        message_id=str(row["RowKey"]),
        reason=text("Reason") or "",
        poisoned_at=at.astimezone(UTC) if isinstance(at, datetime) else None,
        event_id=text("EventId"),
        event_type=text("EventType"),
    )
