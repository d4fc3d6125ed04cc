"""Dialog state: one row per dialog the subscriber has heard of, kept by the default handlers.

The pure part is :func:`apply`, a merge of one event into a :class:`DialogState`.
Every field is a commutative, associative merge keyed on the event's
full-precision time (ties broken by event id, then source): maxima for "last ..." fields,
a minimum for ``created_at``, sums for the counters, and ``status`` derived
from the timestamps rather than stored as a transition. So folding any
permutation of a dialog's events gives the same row: out-of-order delivery
is harmless.

``party`` and ``service_resource`` never change for a dialog in Dialogporten:
the first event applied to a dialog sets them and no later event changes
them, whatever its ``time``. A later event that names another party or
resource (wrong or forged) is applied for the rest and the conflict is logged
(``dialogporten.state {"outcome":"conflict",...}`` with the event id, type
and dialog id). For real events every event of a dialog agrees, so the order
still does not matter. A far-future ``time`` (``9999-12-31``) could otherwise
pin the "last ..." fields and ``status``: ingest refuses events dated further
ahead than its clock allows, so none reaches this table.

Exactly-once, on its own
------------------------
``apply`` is order-independent but not idempotent: the counters would double
count a repeated event. The idempotency store in front of the handlers does
not close that gap on its own: a worker can die after writing the dialog row
and before completing the idempotency record, and the retry would apply the
event again. So the table adapter keeps a *marker row* per applied event in
the dialog's partition and writes the new dialog row and the marker in ONE
entity-group transaction (same PartitionKey = dialog id): either both land or
neither does. A retry finds the marker, the transaction fails on it, and the
event is reported as already applied. The dialog row update is conditional on
the etag that was read, so two events of one dialog applied concurrently
cannot lose each other's update: the loser re-reads and re-applies.

Limits: the markers are never deleted (one small row per event per dialog);
a dialog with events beyond the table's throughput per partition (~2,000
entities/s) would see 412 retries; and only this state is exactly-once by
construction: a user's own handler with outside effects relies on the
idempotency store (see :mod:`shared.idempotency`) and should itself be
idempotent for the rare case of a claim that expires mid-run.

Table :data:`DIALOGS_TABLE`: ``PartitionKey`` = dialog id; ``RowKey`` =
:data:`STATE_ROW` for the dialog row, ``event|<key>`` for markers, where the
key is :func:`shared.idempotency.event_key` (``source`` + ``id``). Markers an
older version wrote keyed on the ``id`` alone (``event|<id>``) still count
for the event of that id, type and time, so an upgrade applies nothing twice.
"""

from __future__ import annotations

import logging
import random
import time as _time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared import logs
from shared.catalog import Family
from shared.errors import TransientError
from shared.events import ActivityEvent, DialogportenEvent, TransmissionEvent
from shared.idempotency import ensure_table, event_key, record_key

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

__all__ = ["DIALOGS_TABLE", "STATE_ROW", "DialogConflict", "DialogState", "DialogStore", "apply", "conflicts", "fold"]

#: Log kind of the dialog state's own lines (conflicting party or resource).
STATE_LOG: Final = "dialogporten.state"

DIALOGS_TABLE: Final = "dialogs"
STATE_ROW: Final = "dialog"
MARKER_PREFIX: Final = "event|"
ACTIVE: Final = "active"
DELETED: Final = "deleted"
_MAX_ATTEMPTS: Final = 25
_IF_NOT_MODIFIED: Final = MatchConditions.IfNotModified

_CREATED = "dialogporten.dialog.created.v1"
_UPDATED = "dialogporten.dialog.updated.v1"
_DELETED = "dialogporten.dialog.deleted.v1"
_RESTORED = "dialogporten.dialog.restored.v1"
_SEEN = "dialogporten.dialog.seen.v1"


@dataclass(frozen=True, slots=True)
class DialogState:
    """What a subscriber wants at a glance about one dialog. Times are full-precision UTC strings."""

    dialog_id: str
    party: str
    service_resource: str
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None
    restored_at: str | None = None
    last_seen_at: str | None = None
    last_activity_type: str | None = None
    last_activity_id: str | None = None
    last_activity_at: str | None = None
    last_activity_event_id: str | None = None
    last_activity_event_source: str | None = None
    transmission_count: int = 0
    activity_count: int = 0
    last_event_at: str = ""
    last_event_id: str = ""
    last_event_source: str = ""
    last_event_type: str = ""
    events_applied: int = 0

    @property
    def status(self) -> str:
        """``deleted`` when the newest deletion is newer than the creation and every restore."""
        if self.deleted_at is None:
            return ACTIVE
        newest_alive = max(self.created_at or "", self.restored_at or "")
        return DELETED if self.deleted_at > newest_alive else ACTIVE

    def to_json(self) -> dict[str, Any]:
        """The public JSON form (``GET /api/dialogs/{id}``)."""
        activity = None
        if self.last_activity_at is not None:
            activity = {"type": self.last_activity_type, "id": self.last_activity_id, "at": self.last_activity_at}
        return {
            "dialogId": self.dialog_id,
            "party": self.party,
            "serviceResource": self.service_resource,
            "status": self.status,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "deletedAt": self.deleted_at,
            "restoredAt": self.restored_at,
            "lastSeenAt": self.last_seen_at,
            "lastActivity": activity,
            "transmissionCount": self.transmission_count,
            "activityCount": self.activity_count,
            "lastEventAt": self.last_event_at,
            "lastEventType": self.last_event_type,
            "eventsApplied": self.events_applied,
        }

    def to_entity(self) -> dict[str, Any]:
        entity = {k: v for k, v in asdict(self).items() if v is not None}
        entity["status"] = self.status  # stored too, so that the table can be filtered on it
        entity["PartitionKey"] = self.dialog_id
        entity["RowKey"] = STATE_ROW
        return entity

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> DialogState:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in entity.items() if k in known}
        for counter in ("transmission_count", "activity_count", "events_applied"):
            values[counter] = int(values.get(counter, 0))
        return cls(**values)


def _max(current: str | None, candidate: str) -> str:
    return candidate if current is None or candidate > current else current


def _min(current: str | None, candidate: str) -> str:
    return candidate if current is None or candidate < current else current


def apply(state: DialogState | None, event: DialogportenEvent) -> DialogState:
    """``state`` with ``event`` merged in. Commutative: the order events are applied in does not matter."""
    at = event.time_key
    # The event's identity breaks ties: ids alone repeat across sources.
    key = (at, event.id, event.source)
    if state is None:
        state = DialogState(dialog_id=event.dialog_id, party=event.party, service_resource=event.service_resource)
    changes: dict[str, Any] = {"events_applied": state.events_applied + 1}
    if key > (state.last_event_at, state.last_event_id, state.last_event_source):
        # party and service_resource are not here: they never change for a dialog, so the
        # first event applied set them and a later one may not move them (see the module doc).
        changes |= {
            "last_event_at": at,
            "last_event_id": event.id,
            "last_event_source": event.source,
            "last_event_type": event.type,
        }
    if event.type == _CREATED:
        changes["created_at"] = _min(state.created_at, at)
    elif event.type == _UPDATED:
        changes["updated_at"] = _max(state.updated_at, at)
    elif event.type == _DELETED:
        changes["deleted_at"] = _max(state.deleted_at, at)
    elif event.type == _RESTORED:
        changes["restored_at"] = _max(state.restored_at, at)
    elif event.type == _SEEN:
        changes["last_seen_at"] = _max(state.last_seen_at, at)
    if isinstance(event, TransmissionEvent):
        changes["transmission_count"] = state.transmission_count + 1
    if isinstance(event, ActivityEvent):
        changes["activity_count"] = state.activity_count + 1
        newest = (
            state.last_activity_at or "",
            state.last_activity_event_id or "",
            state.last_activity_event_source or "",
        )
        if key > newest:
            changes |= {
                "last_activity_at": at,
                "last_activity_event_id": event.id,
                "last_activity_event_source": event.source,
                "last_activity_id": event.activity_id,
                "last_activity_type": event.type,
            }
    return replace(state, **changes)


def conflicts(state: DialogState | None, event: DialogportenEvent) -> dict[str, tuple[str, str]]:
    """The fixed attributes ``event`` disagrees on with ``state``: name -> (kept, event's)."""
    if state is None:
        return {}
    found: dict[str, tuple[str, str]] = {}
    if event.party != state.party:
        found["party"] = (state.party, event.party)
    if event.service_resource != state.service_resource:
        found["service_resource"] = (state.service_resource, event.service_resource)
    return found


def fold(events: Iterable[DialogportenEvent], state: DialogState | None = None) -> DialogState | None:
    for event in events:
        state = apply(state, event)
    return state


def marker_key(event: DialogportenEvent) -> str:
    return MARKER_PREFIX + event_key(event.source, event.id)


def legacy_marker_key(event_id: str) -> str:
    """The marker an older version wrote, keyed on the event ``id`` alone."""
    return MARKER_PREFIX + record_key(event_id)


class DialogConflict(TransientError):
    """The dialog row kept changing under us; the event will be retried."""


class DialogStore:
    """The dialogs table: exactly-once application of events, optimistic concurrency per dialog."""

    def __init__(self, tables: TableServiceClient, table_name: str = DIALOGS_TABLE) -> None:
        self._tables = tables
        self._table_name = table_name

    @property
    def table(self) -> TableClient:
        return ensure_table(self._tables, self._table_name)

    def get(self, dialog_id: str) -> DialogState | None:
        try:
            return DialogState.from_entity(self.table.get_entity(dialog_id, STATE_ROW))
        except ResourceNotFoundError:
            return None

    def was_applied(self, event: DialogportenEvent) -> bool:
        try:
            self.table.get_entity(event.dialog_id, marker_key(event), select=["RowKey"])
        except ResourceNotFoundError:
            return False
        return True

    def _first_read(self, event: DialogportenEvent) -> tuple[Any, bool]:
        """The dialog row (or None), and whether an older version applied this event: one round trip.

        An older version's marker is keyed on the id alone; only the same id, type and time
        count, since another event may share the id. Older versions no longer write, so
        one look before the first transaction is enough.
        """
        legacy = legacy_marker_key(event.id)
        rows = self.table.query_entities(
            "PartitionKey eq @pk and ( RowKey eq @row or RowKey eq @legacy )",  # spaces: the SDK splits on them
            parameters={"pk": event.dialog_id, "row": STATE_ROW, "legacy": legacy},
        )
        current, applied = None, False
        for row in rows:
            if row["RowKey"] == STATE_ROW:
                current = row
            elif row["RowKey"] == legacy:
                applied = row.get("event_type") == event.type and row.get("time") == event.time_key
        return current, applied

    def record(self, event: DialogportenEvent) -> bool:
        """Apply ``event`` to its dialog's row, once. False when it had been applied before."""
        table = self.table
        dialog_id = event.dialog_id
        family = event.family.value if isinstance(event.family, Family) else ""
        marker = {
            "PartitionKey": dialog_id,
            "RowKey": marker_key(event),
            "event_id": event.id,
            "source": event.source,
            "event_type": event.type,
            "family": family,
            "time": event.time_key,
            "applied_at": datetime.now(UTC),
        }
        for attempt in range(_MAX_ATTEMPTS):
            if attempt == 0:
                current, applied_before_upgrade = self._first_read(event)
                if applied_before_upgrade:
                    return False
            else:
                try:
                    current = table.get_entity(dialog_id, STATE_ROW)
                except ResourceNotFoundError:
                    current = None
            state = None if current is None else DialogState.from_entity(current)
            etag: str | None = None if current is None else current.metadata["etag"]
            clash = conflicts(state, event)
            new = apply(state, event).to_entity()
            operations: list[Any] = [("create", marker)]
            if etag is None:
                operations.append(("create", new))
            else:
                conditional = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": _IF_NOT_MODIFIED}
                operations.append(("update", new, conditional))
            try:
                table.submit_transaction(operations)
            except TableTransactionError:
                # Either the marker exists (applied before) or the row changed under us.
                if self.was_applied(event):
                    return False
            else:
                if clash:
                    _log_conflict(event, clash)
                return True
            _time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # noqa: S311 - jitter, not crypto
        raise DialogConflict(f"dialog {dialog_id}: row kept changing over {_MAX_ATTEMPTS} attempts")


def _log_conflict(event: DialogportenEvent, clash: dict[str, tuple[str, str]]) -> None:
    logs.log_event(
        STATE_LOG,
        logs.Outcome.CONFLICT,
        logging.WARNING,
        event_id=event.id,
        event_type=event.type,
        dialog_id=event.dialog_id,
        source=event.source,
        kept={name: kept for name, (kept, _) in clash.items()},
        ignored={name: theirs for name, (_, theirs) in clash.items()},
        reason="party and serviceResource never change for a dialog; the first applied is kept",
    )
