"""Idempotency: each event (``source`` + ``id``) is handled once, though delivered at least once.

Modelled on the idempotency utility of Powertools for AWS Lambda: a
persistence layer with a record per key in one of two states,

* ``INPROGRESS`` - a worker claimed the event and is running its handlers.
  The claim carries an expiry (``IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS``); a worker
  that died leaves a claim that others may take over once it has expired.
  The timeout must exceed ``functionTimeout`` in host.json (5 min < 10 min)
  so that a live invocation never loses its claim.
* ``COMPLETED`` - the handlers succeeded. The record is kept for
  ``IDEMPOTENCY_RETENTION_SECONDS`` (7 days by default, well beyond Altinn's
  ~1.5 day retry window); an expired record counts as absent.

A claim is a conditional insert (the table refuses a second entity with the
same keys). Taking over an expired record is an update conditional on the
etag that was read, so of two workers racing for it exactly one wins.
Completing and releasing are conditional on the claim's own etag, so a worker
whose claim expired and was taken over cannot overwrite the new owner. Each
claim writes an owner token, so that a write whose response was lost is
recognised as our own on the next look.

Identity: a CloudEvent is identified by ``source`` + ``id`` (CloudEvents 1.0:
"Producers MUST ensure that source + id is unique for each distinct event");
published Dialogporten examples reuse one ``id`` for different events.
Records are keyed on :func:`shared.events.identity.event_key`, a digest of both.

Where the app claims: the event's own row in its dialog
--------------------------------------------------------
:meth:`IdempotencyStore.claim_event` claims an event in its row of the dialog
state (:mod:`shared.stores.dialogs`: table ``dialogs``, ``PartitionKey`` = the
dialog id, ``RowKey`` = ``event|<key>``), the row the default handler would
insert anyway. That one insert claims the event and counts it in the dialog
state, before any handler runs (so a poisoned event still counts);
completion is a merge of the same row, and so is a release (the row stays: it
is the dialog state; its status says ``RELEASED`` and the next delivery takes
it at once). An event with outside effects thus costs two table requests
(the insert and the merge) and adds no row that needs purging. The claim's
columns on the row: ``status``, ``owner``, ``expires_at``, ``claimed_at``,
``completed_at``. A row without ``status`` was applied without a claim (no
handler had outside effects, or an older version wrote it): a delivery that
needs a claim takes it over, etag-conditional.

Records older versions wrote: no conversion
-------------------------------------------
Older versions claimed in table :data:`IDEMPOTENCY_TABLE` (``PartitionKey`` =
the key, or a hash of it when it holds characters a key may not, ``RowKey`` =
``""``); :meth:`IdempotencyStore.claim` still writes that layout, which tests
use to leave what such a version left. Those records count for their
retention, and the purge (:meth:`IdempotencyStore.purge_expired`) covers them:

* keyed on ``source`` + ``id``: such a version inserted the event's row (or its
  marker) in the dialog before its handlers ran, so :meth:`claim_event`'s insert
  is refused and meets a row without a claim; only then is the record read
  (one read, on that refusal only), and a live one counts as it did.
* keyed on the ``id`` alone (the first versions): their marker has another
  ``RowKey``, so nothing is refused; while such a record can be live, each
  claim reads the record of the event's ``id`` first, and a live record of the
  same id, type and dialog counts as this event's own (another type or dialog
  is another event that shared the id). Whether any can be live is decided per
  process, not per event: one query for a live record in the ``PartitionKey``
  ranges only id-keyed records use (everything but ``ce-…``, the source + id
  keys, and ``$…``, the table's own rows), repeated every
  :data:`ID_KEYED_RECHECK`. An install that never held one never reads one.
  The question is closed for good (no more queries) once none is live and an
  instance of an id-keyed version can no longer be running: a day
  (:data:`_LEGACY_MARGIN`, a deployment's overlap) after the table was first
  used keyed on ``source`` + ``id`` (row :data:`KEYED_SINCE_ROW`), or in any
  case a retention period (plus the claim timeout and that day) after it, when
  every record such a version wrote has expired.

Limit, during a rolling deployment only: an instance of an older version does
not see the claims in the dialog rows (it looks in :data:`IDEMPOTENCY_TABLE`),
so a duplicate handed to an old and a new instance at the same moment can run
on both; and an id-keyed record an old instance writes after a new one's last
query is seen at the next query (within :data:`ID_KEYED_RECHECK`).

Table Storage has no TTL: expired records stay until something deletes them.
They are harmless (treated as absent); :meth:`IdempotencyStore.purge_expired`
removes them for whoever schedules it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.data.tables import UpdateMode

from shared.errors import AlreadyCompleted, AlreadyInProgress, ClaimLost, IdempotencyError
from shared.events.identity import event_key
from shared.stores import tables
from shared.stores.clients import table_client
from shared.stores.dialogs import DIALOGS_TABLE, MARKER_PREFIX, EventFact
from shared.stores.tables import ensure_table, insert, record_key

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

    from shared.events.models import DialogportenEvent
    from shared.settings import Settings

__all__ = [
    "COMPLETED",
    "IDEMPOTENCY_TABLE",
    "INPROGRESS",
    "RELEASED",
    "AlreadyCompleted",
    "AlreadyInProgress",
    "Claim",
    "ClaimLost",
    "IdempotencyError",
    "IdempotencyStore",
    "event_key",
    "forget_tables",
]

IDEMPOTENCY_TABLE: Final = "idempotency"
INPROGRESS: Final = "INPROGRESS"
COMPLETED: Final = "COMPLETED"
#: A claim given up (the handlers failed): on a dialog row, which stays; the next delivery takes it at once.
RELEASED: Final = "RELEASED"
_ROW: Final = ""


@dataclass(frozen=True, slots=True)
class Claim:
    """Proof of a claim: where its record is and the etag of what we wrote there."""

    event_id: str
    etag: str
    expires_at: datetime
    taken_over: bool = False
    """True when this claim replaced an expired one (a worker died, or a completed record aged out)."""
    owner: str = ""
    """The token this claim wrote on the record: how a lost response is told from a rival's write."""
    table: str = IDEMPOTENCY_TABLE
    partition: str = ""
    row: str = _ROW

    @property
    def in_dialog(self) -> bool:
        """Whether the claim is the event's row in its dialog (which the dialog state counts)."""
        return self.row != _ROW


def forget_tables() -> None:
    """Forget which tables exist and what was read of them (tests delete them between cases)."""
    tables.forget_tables()
    _KEYED_SINCE.clear()
    _ID_KEYED.clear()


#: Row that records when this table was first used keyed on source + id (no ``expires_at``:
#: never purged). Legacy look-ups stop once every record an older version wrote has expired.
KEYED_SINCE_ROW: Final = "$keyed-on-source-and-id"
#: Margin for older instances still writing during a deployment's overlap.
_LEGACY_MARGIN: Final = timedelta(days=1)
#: How often a process asks again whether a live id-keyed record exists (while the question is open).
ID_KEYED_RECHECK: Final = timedelta(seconds=60)
#: The source + id keys (``ce-`` + hex) sort in ``[ce-, ce.)``; the table's own rows start with ``$``,
#: below ``+``, the lowest character :func:`record_key` leaves in a key. Every other key is id-keyed.
_ID_KEYED_RANGES: Final = (
    "PartitionKey ge '+' and PartitionKey lt 'ce-' and expires_at gt @now",
    "PartitionKey ge 'ce.' and expires_at gt @now",
)
_KEYED_SINCE: Final[weakref.WeakKeyDictionary[Any, dict[str, datetime]]] = weakref.WeakKeyDictionary()


@dataclass(slots=True)
class _IdKeyed:
    """What a process knows about id-keyed records in one table."""

    checked_at: datetime | None = None
    live: bool = True
    closed: bool = False
    """None is live and none can appear any more: never asked again."""


_ID_KEYED: Final[weakref.WeakKeyDictionary[Any, dict[str, _IdKeyed]]] = weakref.WeakKeyDictionary()
_ASKING: Final = threading.Lock()


def _refuse_if_live(existing: Any, event_id: str, now: datetime, note: str = "") -> bool:
    """A claim's record or row that is not ours: raise as a duplicate while it is live (completed, or in progress
    elsewhere); True once it has expired (a claim may then take its place)."""
    expires = _utc(existing.get("expires_at"))
    if expires <= now:
        return True
    if existing.get("status") == COMPLETED:
        raise AlreadyCompleted(f"event {event_id} was already handled{note}")
    raise AlreadyInProgress(event_id, expires)


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value))


def _etag(metadata: Any) -> str:
    return str(metadata["etag"])


class IdempotencyStore:
    """Claim / complete / release: in the event's dialog row (:meth:`claim_event`) or a record of its own."""

    def __init__(
        self,
        tables: TableServiceClient,
        *,
        claim_timeout_seconds: int,
        retention_seconds: int,
        table_name: str = IDEMPOTENCY_TABLE,
        dialogs_table: str = DIALOGS_TABLE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tables = tables
        self._table_name = table_name
        self._dialogs_table = dialogs_table
        self.claim_timeout = timedelta(seconds=claim_timeout_seconds)
        self.retention = timedelta(seconds=retention_seconds)
        self._clock = clock

    @classmethod
    def from_settings(cls, tables: TableServiceClient, cfg: Settings) -> IdempotencyStore:
        """The store as the app runs it: claim timeout and retention from the app's settings (the one place)."""
        return cls(
            tables,
            claim_timeout_seconds=cfg.idempotency.claim_timeout_seconds,
            retention_seconds=cfg.idempotency.retention_seconds,
        )

    @property
    def table(self) -> TableClient:
        """The table of records of their own (:data:`IDEMPOTENCY_TABLE`)."""
        return ensure_table(self._tables, self._table_name)

    def _table(self, name: str) -> TableClient:
        return ensure_table(self._tables, name)

    # -- claiming ---------------------------------------------------------------------------------

    def claim_event(self, event: DialogportenEvent | EventFact) -> Claim:
        """Claim ``event`` in its own row of its dialog, which also counts it in the dialog state.

        Raises :class:`AlreadyCompleted` or :class:`AlreadyInProgress` as :meth:`claim` does; a record
        an older version wrote counts as it did (see the module doc).
        """
        fact = EventFact.of(event)
        key = event_key(fact.source, fact.id)
        if self._id_keyed_records_may_be_live():
            self._check_legacy(fact.id, {"event_type": fact.type, "dialog_id": fact.dialog_id})
        row = fact.to_entity()
        return self._claim(
            self._dialogs_table, row["PartitionKey"], row["RowKey"], row, event_id=fact.id, key=key, rows=True
        )

    def claim(self, event_id: str, /, *, legacy_key: str | None = None, **info: Any) -> Claim:
        """Mark ``event_id`` (the key) in progress in a record of its own, in :data:`IDEMPOTENCY_TABLE`.

        The layout older versions claimed in (the app claims with :meth:`claim_event`); raises
        :class:`AlreadyCompleted` / :class:`AlreadyInProgress`. ``info`` (e.g. ``event_type``,
        ``dialog_id``, ``source``) is stored on the record for operators. ``legacy_key`` names the
        record a first version wrote for the same event (keyed on its ``id`` alone): see the module doc.
        """
        key = record_key(event_id)
        if legacy_key is not None and self._id_keyed_records_may_be_live():
            self._check_legacy(legacy_key, info)
        fields = {"PartitionKey": key, "RowKey": _ROW, "idempotency_key": event_id}
        fields |= {k: v for k, v in info.items() if v is not None}
        return self._claim(self._table_name, key, _ROW, fields, event_id=event_id, key=key, rows=False)

    def _claim(
        self, table_name: str, partition: str, row: str, fields: dict[str, Any], *, event_id: str, key: str, rows: bool
    ) -> Claim:
        table = table_client(self._tables, table_name)  # created by the first insert if missing
        # Our mark on the record. When a write lands but its response is lost (a timeout), the
        # next look meets our own record: the owner tells it is ours, so the event runs now
        # instead of waiting out its own claim as a duplicate of itself.
        owner = uuid.uuid4().hex

        def made(etag: str, expires: datetime, taken_over: bool = False) -> Claim:
            return Claim(event_id, etag, expires, taken_over, owner, table_name, partition, row)

        landed_as_takeover = False  # a takeover whose response was lost: said again if the next look finds it ours
        for _ in range(3):
            now = self._clock()
            expires = now + self.claim_timeout
            claim = {"status": INPROGRESS, "expires_at": expires, "claimed_at": now, "owner": owner}
            try:
                return made(_etag(insert(self._tables, table_name, fields | claim)), expires)
            except ResourceExistsError:
                pass
            except ServiceResponseError:
                pass  # the insert may have landed (the SDK does not retry a POST): the owner will tell
            try:
                existing = table.get_entity(partition, row)
            except ResourceNotFoundError:
                continue  # released or purged between the two calls: insert again
            status = existing.get("status")
            if status == INPROGRESS and existing.get("owner") == owner:
                return made(_etag(existing.metadata), _utc(existing.get("expires_at")), landed_as_takeover)
            taken_over = False
            if status in (INPROGRESS, COMPLETED):
                taken_over = _refuse_if_live(existing, event_id, now)
            elif status is None and rows:
                # A row applied without a claim: by a version that claimed in a record of its own,
                # whose record may still say how that went; or with no handler that needed a claim.
                taken_over = self._check_record(key, event_id)
            # Expired, released or never claimed: take it over. A record is replaced whole; a dialog
            # row only gains the claim's columns (what it says about the event stays as written).
            update = fields | claim if not rows else {"PartitionKey": partition, "RowKey": row} | claim
            try:
                meta = table.update_entity(
                    update,
                    mode=UpdateMode.MERGE if rows else UpdateMode.REPLACE,
                    etag=_etag(existing.metadata),
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # someone else took it over first: look again
            except ServiceResponseError:
                landed_as_takeover = taken_over
                continue  # it may have landed: the next look tells by the owner
            return made(_etag(meta), expires, taken_over)
        raise AlreadyInProgress(event_id, self._clock() + self.claim_timeout)

    def _check_record(self, key: str, event_id: str) -> bool:
        """Raise as a claim would when a record of its own for ``key`` (an older version's claim) is live.

        True when there is one that expired: a claim taking its place takes it over.
        """
        try:
            existing = table_client(self._tables, self._table_name).get_entity(record_key(key), _ROW)
        except ResourceNotFoundError:
            return False  # no such record (or no such table: an install that never claimed in one)
        return _refuse_if_live(existing, event_id, self._clock(), " (record of an older version)")

    # -- records keyed on the id alone ---------------------------------------------------------------

    def keyed_since(self) -> datetime:
        """When this table was first used keyed on source + id (recorded on first call; cached)."""
        cached = _KEYED_SINCE.setdefault(self._tables, {})
        since = cached.get(self._table_name)
        if since is None:
            try:  # written once per table, ever: after the first start, one read per process
                row = table_client(self._tables, self._table_name).get_entity(KEYED_SINCE_ROW, _ROW)
            except ResourceNotFoundError:  # no such row yet (or no such table)
                table = self.table
                with contextlib.suppress(ResourceExistsError):
                    table.create_entity({"PartitionKey": KEYED_SINCE_ROW, "RowKey": _ROW, "since": self._clock()})
                row = table.get_entity(KEYED_SINCE_ROW, _ROW)
            since = _utc(row["since"])
            cached[self._table_name] = since
        return since

    def _id_keyed_records_may_be_live(self) -> bool:
        """Whether a record keyed on the id alone may be live: asked of the table once per
        :data:`ID_KEYED_RECHECK` per process, and never again once the answer cannot change."""
        known = _ID_KEYED.setdefault(self._tables, {}).setdefault(self._table_name, _IdKeyed())
        if known.closed:
            return False
        now = self._clock()
        if known.checked_at is not None and known.checked_at <= now < known.checked_at + ID_KEYED_RECHECK:
            return known.live
        with _ASKING:  # one thread asks; the others, arriving at once, use its answer
            if known.checked_at is not None and known.checked_at <= now < known.checked_at + ID_KEYED_RECHECK:
                return known.live
            return self._ask_id_keyed(known, now)

    def _ask_id_keyed(self, known: _IdKeyed, now: datetime) -> bool:
        since = self.keyed_since()
        if now > since + self.retention + self.claim_timeout + _LEGACY_MARGIN:
            known.closed = True  # every record an id-keyed version wrote has expired
            return False
        known.live, known.checked_at = self._any_live_id_keyed(now), now
        if not known.live and now > since + _LEGACY_MARGIN:
            known.closed = True  # none is live, and no instance of an id-keyed version can still write one
        return known.live

    def _any_live_id_keyed(self, now: datetime) -> bool:
        table = table_client(self._tables, self._table_name)
        for query in _ID_KEYED_RANGES:
            found = table.query_entities(query, parameters={"now": now}, select=["PartitionKey"], results_per_page=1)
            try:
                if next(iter(found), None) is not None:
                    return True
            except ResourceNotFoundError:
                return False  # no such table: nothing was ever claimed in it
        return False

    def _check_legacy(self, legacy_key: str, info: dict[str, Any]) -> None:
        """Raise as :meth:`claim` would when a live record of the old keying is this very event's."""
        try:
            existing = self.table.get_entity(record_key(legacy_key), _ROW)
        except ResourceNotFoundError:
            return
        if all(existing.get(k) == info.get(k) for k in ("event_type", "dialog_id")):  # this very event's
            _refuse_if_live(existing, legacy_key, self._clock(), " (record from before source + id)")

    # -- completing and releasing -----------------------------------------------------------------------

    def complete(self, claim: Claim, attempts: int = 4) -> None:
        """Turn our claim into a completed record kept for the retention period.

        The handlers have run by now, so this must not give up on a passing storage
        fault: an in-progress record left behind would expire and let the event run
        again. A write that landed but whose response was lost is recognised by our
        owner token. Raises :class:`ClaimLost` when the claim expired and another
        worker owns the record now.
        """
        for attempt in range(1, attempts + 1):
            now = self._clock()
            entity: dict[str, Any] = {"PartitionKey": claim.partition, "RowKey": claim.row, "status": COMPLETED}
            entity |= {"expires_at": now + self.retention, "completed_at": now}
            try:
                table_client(self._tables, claim.table).update_entity(
                    entity, mode=UpdateMode.MERGE, etag=claim.etag, match_condition=MatchConditions.IfNotModified
                )
                return
            except (ResourceModifiedError, ResourceNotFoundError) as exc:
                if self._completed_by(claim):
                    return
                raise ClaimLost(f"claim on event {claim.event_id} was lost before completion: {exc.reason}") from None
            except AzureError:
                if self._completed_by(claim, swallow=True):
                    return
                if attempt == attempts:
                    raise
                time.sleep(0.5 * attempt)

    def _completed_by(self, claim: Claim, *, swallow: bool = False) -> bool:
        """Whether the record is completed under ``claim``'s owner token (our own write landed)."""
        try:
            entity = table_client(self._tables, claim.table).get_entity(claim.partition, claim.row)
        except ResourceNotFoundError:
            return False
        except AzureError:
            if swallow:
                return False
            raise
        return bool(claim.owner) and entity.get("owner") == claim.owner and entity.get("status") == COMPLETED

    def release(self, claim: Claim) -> None:
        """Give the claim up (the handlers failed) so that the next delivery runs at once.

        A record of its own is deleted; a dialog row stays (the dialog state counts the event) and says
        ``RELEASED``. Either is conditional on the claim's etag: a new owner's claim is left alone.
        """
        table = table_client(self._tables, claim.table)  # it exists: the claim was written there
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
            if not claim.in_dialog:
                table.delete_entity(
                    claim.partition, claim.row, etag=claim.etag, match_condition=MatchConditions.IfNotModified
                )
                return
            now = self._clock()
            entity: dict[str, Any] = {"PartitionKey": claim.partition, "RowKey": claim.row, "status": RELEASED}
            entity["expires_at"] = now
            table.update_entity(
                entity, mode=UpdateMode.MERGE, etag=claim.etag, match_condition=MatchConditions.IfNotModified
            )

    # -- for operators and tests ---------------------------------------------------------------------

    def status(self, event_id: str, /, dialog_id: str | None = None) -> tuple[str, datetime] | None:
        """(status, expires_at) of an event's live or expired claim, or None (none, or released).

        ``event_id`` is the key a record was claimed under; for an event claimed in its dialog, its
        :func:`event_key`: the row is found by ``dialog_id`` when given, else by a query over the
        dialogs table (a scan: for operators and tests, not for a hot path).
        """
        try:
            entity: Any = self.table.get_entity(record_key(event_id), _ROW)
        except ResourceNotFoundError:
            entity = self._dialog_row(MARKER_PREFIX + record_key(event_id), dialog_id)
        if entity is None or entity.get("status") not in (INPROGRESS, COMPLETED):
            return None
        return str(entity["status"]), _utc(entity["expires_at"])

    def _dialog_row(self, row: str, dialog_id: str | None) -> Any:
        table = self._table(self._dialogs_table)
        if dialog_id is not None:
            try:
                return table.get_entity(dialog_id, row)
            except ResourceNotFoundError:
                return None
        return next(iter(table.query_entities("RowKey eq @row", parameters={"row": row})), None)

    def purge_expired(self, max_seconds: float | None = None) -> int:
        """Delete records of :data:`IDEMPOTENCY_TABLE` whose expiry has passed; returns how many.

        Claims in dialog rows are never deleted: the rows are the dialog state. ``max_seconds``
        bounds the run (a timer function has a timeout): what is left is taken by the next run.
        """
        table = self.table
        now = self._clock()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        removed = 0
        for entity in table.query_entities("expires_at lt @now", parameters={"now": now}):
            if deadline is not None and time.monotonic() > deadline:
                break
            try:
                table.delete_entity(
                    entity["PartitionKey"],
                    entity["RowKey"],
                    etag=_etag(entity.metadata),
                    match_condition=MatchConditions.IfNotModified,
                )
                removed += 1
            except (ResourceModifiedError, ResourceNotFoundError):
                pass
        return removed
