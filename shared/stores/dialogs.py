"""Dialog state: what the default handlers know about each dialog, as append-only event rows.

The pure part is :func:`apply`, a merge of one event into a :class:`DialogState`.
Every field is a commutative, associative merge keyed on the event's
full-precision time (ties broken by event id, then source): maxima for "last ..." fields,
a minimum for ``created_at``, sums for the counters, and ``status`` derived
from the timestamps rather than stored as a transition. So folding any
permutation of a dialog's events gives the same state: out-of-order delivery
is harmless.

``party`` and ``service_resource`` never change for a dialog in Dialogporten:
the first event stored for a dialog sets them and no later event changes
them, whatever its ``time``. A later event that names another party or
resource (wrong or forged) is applied for the rest and the conflict is logged
when the state is read (``dialogporten.state {"outcome":"conflict",...}`` with
the event id, type and dialog id). For real events every event of a dialog
agrees, so the order still does not matter. A far-future ``time``
(``9999-12-31``) could otherwise pin the "last ..." fields and ``status``:
ingest refuses events dated further ahead than its clock allows, so none
reaches this table.

Exactly-once by construction
----------------------------
``apply`` is order-independent but not idempotent: the counters would double
count a repeated event. So the store never rewrites a row: each applied event
is ONE insert of its own row in its dialog's partition, keyed on
:func:`shared.events.identity.event_key` (``source`` + ``id``). The table refuses
a second entity with the same keys, so a redelivery, a concurrent duplicate or
the retry after a worker died mid-way is refused as a duplicate, and the state
is the fold of the partition's rows (one query), computed when it is read.
No read before the write, no etag retries, no contention on a busy dialog:
events of one dialog are inserted side by side. A write whose response was
lost is recognised on the retry (the row exists: a duplicate), and the state
is right either way.

Limits: the rows are never deleted (one small row per event per dialog), and a
read costs a query over the dialog's rows, so a dialog with thousands of events
costs more to read than to write. Only this state is exactly-once by
construction: a user's handler with outside effects relies on the idempotency
claim (see :mod:`shared.stores.idempotency`), which is kept on this same row
(its columns ``status``, ``owner``, ``expires_at``, ...; the fold ignores them), and
should itself be idempotent for the rare case of a claim that expires mid-run.

Layout and upgrade
------------------
Table :data:`DIALOGS_TABLE`, ``PartitionKey`` = dialog id. An event row has
``RowKey`` = ``event|<key>`` and :data:`LAYOUT` = 2 with the fields the fold
needs. Older versions kept the folded state in one row (``RowKey`` =
:data:`STATE_ROW`) beside a *marker* per applied event (``event|<key>``, or
``event|<id>`` before events were keyed on ``source`` + ``id``), and nothing
needs converting: the old state row is the fold's starting point; an old
marker keyed on ``source`` + ``id`` has the very key a new row would get, so
the insert of that event is refused as a duplicate; and an event row whose
``id``, type and time match an older ``event|<id>`` marker is left out of the
fold, since the state row already counts it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from azure.core.exceptions import ResourceExistsError

from shared import logs
from shared.events.catalog import Family
from shared.events.identity import event_key
from shared.events.models import ActivityEvent, DialogportenEvent, TransmissionEvent
from shared.stores.tables import ensure_table, insert, record_key

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

__all__ = [
    "DIALOGS_TABLE",
    "LAYOUT",
    "STATE_ROW",
    "DialogState",
    "DialogStore",
    "EventFact",
    "apply",
    "conflicts",
    "fold",
]

#: Log kind of the dialog state's own lines (conflicting party or resource).
STATE_LOG: Final = "dialogporten.state"

DIALOGS_TABLE: Final = "dialogs"
STATE_ROW: Final = "dialog"
MARKER_PREFIX: Final = "event|"
#: Column (and its value) that tells an event row from an older version's marker.
LAYOUT: Final = "layout"
EVENT_ROW_LAYOUT: Final = 2
ACTIVE: Final = "active"
DELETED: Final = "deleted"

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


@dataclass(frozen=True, slots=True)
class EventFact:
    """What :func:`apply` needs of an event: its identity, time and fixed attributes (an event row's columns)."""

    dialog_id: str
    id: str
    source: str
    type: str
    time_key: str
    party: str
    service_resource: str
    family: str
    activity_id: str | None = None

    @classmethod
    def of(cls, event: DialogportenEvent | EventFact) -> EventFact:
        if isinstance(event, EventFact):
            return event
        family = Family.DIALOG.value
        if isinstance(event, TransmissionEvent):
            family = Family.TRANSMISSION.value
        elif isinstance(event, ActivityEvent):
            family = Family.ACTIVITY.value
        return cls(
            dialog_id=event.dialog_id,
            id=event.id,
            source=event.source,
            type=event.type,
            time_key=event.time_key,
            party=event.party,
            service_resource=event.service_resource,
            family=family,
            activity_id=event.activity_id if isinstance(event, ActivityEvent) else None,
        )

    def to_entity(self) -> dict[str, Any]:
        """The event row: the exactly-once insert (see the module doc)."""
        entity: dict[str, Any] = {
            "PartitionKey": self.dialog_id,
            "RowKey": MARKER_PREFIX + event_key(self.source, self.id),
            LAYOUT: EVENT_ROW_LAYOUT,
            "event_id": self.id,
            "source": self.source,
            "event_type": self.type,
            "family": self.family,
            "time": self.time_key,
            "party": self.party,
            "service_resource": self.service_resource,
            "applied_at": datetime.now(UTC),
        }
        if self.activity_id is not None:
            entity["activity_id"] = self.activity_id
        return entity

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> EventFact:
        return cls(
            dialog_id=str(entity["PartitionKey"]),
            id=str(entity["event_id"]),
            source=str(entity["source"]),
            type=str(entity["event_type"]),
            time_key=str(entity["time"]),
            party=str(entity["party"]),
            service_resource=str(entity["service_resource"]),
            family=str(entity["family"]),
            activity_id=entity.get("activity_id"),
        )


def _max(current: str | None, candidate: str) -> str:
    return candidate if current is None or candidate > current else current


def _min(current: str | None, candidate: str) -> str:
    return candidate if current is None or candidate < current else current


def apply(state: DialogState | None, event: DialogportenEvent | EventFact) -> DialogState:
    """``state`` with ``event`` merged in. Commutative: the order events are applied in does not matter."""
    event = EventFact.of(event)
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
    if event.family == Family.TRANSMISSION:
        changes["transmission_count"] = state.transmission_count + 1
    if event.family == Family.ACTIVITY:
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


def conflicts(state: DialogState | None, event: DialogportenEvent | EventFact) -> dict[str, tuple[str, str]]:
    """The fixed attributes ``event`` disagrees on with ``state``: name -> (kept, event's)."""
    if state is None:
        return {}
    found: dict[str, tuple[str, str]] = {}
    if event.party != state.party:
        found["party"] = (state.party, event.party)
    if event.service_resource != state.service_resource:
        found["service_resource"] = (state.service_resource, event.service_resource)
    return found


def fold(events: Iterable[DialogportenEvent | EventFact], state: DialogState | None = None) -> DialogState | None:
    for event in events:
        state = apply(state, event)
    return state


def marker_key(event: DialogportenEvent | EventFact) -> str:
    return MARKER_PREFIX + event_key(event.source, event.id)


def legacy_marker_key(event_id: str) -> str:
    """The marker an older version wrote, keyed on the event ``id`` alone."""
    return MARKER_PREFIX + record_key(event_id)


def fold_rows(
    rows: Iterable[dict[str, Any]],
) -> tuple[DialogState | None, list[tuple[EventFact, dict[str, tuple[str, str]]]]]:
    """The state a dialog partition's rows add up to, and the conflicts met (event, clash) on the way.

    Event rows are folded in the order they were stored (the table's ``Timestamp``, then the key):
    that order only decides which event first named the dialog's party and resource.
    """
    base: DialogState | None = None
    events: list[dict[str, Any]] = []
    legacy: set[tuple[str, str, str]] = set()
    for row in rows:
        key = row["RowKey"]
        if key == STATE_ROW:
            base = DialogState.from_entity(row)
        elif row.get(LAYOUT) == EVENT_ROW_LAYOUT:
            events.append(row)
        elif key.startswith(MARKER_PREFIX) and "source" not in row:
            # A marker from before source + id: its event is in the state row already.
            legacy.add((str(row.get("event_id")), str(row.get("event_type")), str(row.get("time"))))
    events.sort(key=_stored_order)
    state: DialogState | None = base
    clashes: list[tuple[EventFact, dict[str, tuple[str, str]]]] = []
    for row in events:
        fact = EventFact.from_entity(row)
        if (fact.id, fact.type, fact.time_key) in legacy:
            continue
        clash = conflicts(state, fact)
        if clash:
            clashes.append((fact, clash))
        state = apply(state, fact)
    return state, clashes


def _stored_order(row: Any) -> tuple[str, str]:
    metadata = getattr(row, "metadata", None) or {}
    stamp = metadata.get("timestamp") or row.get("applied_at") or ""
    return (stamp.isoformat() if isinstance(stamp, datetime) else str(stamp), str(row["RowKey"]))


class DialogStore:
    """The dialogs table: one insert per applied event, the state folded when it is read."""

    def __init__(self, tables: TableServiceClient, table_name: str = DIALOGS_TABLE) -> None:
        self._tables = tables
        self._table_name = table_name

    @property
    def table(self) -> TableClient:
        return ensure_table(self._tables, self._table_name)

    def get(self, dialog_id: str) -> DialogState | None:
        """The dialog's state: its partition folded (one query, paged by the SDK)."""
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": dialog_id})
        state, clashes = fold_rows(rows)
        for fact, clash in clashes:
            _log_conflict(fact, clash)
        return state

    def was_applied(self, event: DialogportenEvent) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.table.get_entity(event.dialog_id, marker_key(event), select=["RowKey"])
        except ResourceNotFoundError:
            return False
        return True

    def record(self, event: DialogportenEvent) -> bool:
        """Store ``event`` in its dialog, once: one insert. False when it had been stored before.

        An event an id-keyed older version applied is stored here too (the insert cannot see its
        marker) and left out when the state is folded: it counts once either way.
        """
        try:
            insert(self._tables, self._table_name, EventFact.of(event).to_entity())
        except ResourceExistsError:
            return False
        return True


def _log_conflict(event: EventFact, clash: dict[str, tuple[str, str]]) -> None:
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
