"""Idempotency store: each event (``source`` + ``id``) is handled once, though delivered at least once.

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
whose claim expired and was taken over cannot overwrite the new owner.

Table Storage has no TTL: expired rows stay until something deletes them.
They are harmless (treated as absent); :meth:`IdempotencyStore.purge_expired`
removes them for whoever schedules it.

Identity: a CloudEvent is identified by ``source`` + ``id`` (CloudEvents 1.0:
"Producers MUST ensure that source + id is unique for each distinct event");
published Dialogporten examples reuse one ``id`` for different events.
Processing keys records on :func:`shared.events.identity.event_key`, a digest of both.

Upgrade from records keyed on ``id`` alone: those records carry the event's
type and dialog id. :meth:`IdempotencyStore.claim` given ``legacy_key`` treats
a live legacy record of the same id, type and dialog as this event's own, so a
duplicate delivered after the upgrade is still acknowledged instead of run
twice; a legacy record of another type or dialog is another event that shared
the id, and does not block this one. Legacy records stop mattering once their
retention (``IDEMPOTENCY_RETENTION_SECONDS``) has passed: the table remembers
when it was first used keyed on source + id (row :data:`KEYED_SINCE_ROW`), and
the legacy look-up (one read per event) stops a retention period (plus a day)
after that.

Layout: table :data:`IDEMPOTENCY_TABLE`, ``PartitionKey`` = the key (itself,
or a hash of it when it holds characters a key may not), ``RowKey`` = ``""``.
"""

from __future__ import annotations

import contextlib
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
from shared.stores.tables import ensure_table, record_key

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

    from shared.settings import Settings

__all__ = [
    "COMPLETED",
    "IDEMPOTENCY_TABLE",
    "INPROGRESS",
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
_ROW: Final = ""


@dataclass(frozen=True, slots=True)
class Claim:
    """Proof of a claim: the key and the etag of the record we wrote."""

    event_id: str
    key: str
    etag: str
    expires_at: datetime
    taken_over: bool = False
    """True when this claim replaced an expired one (a worker died, or a completed record aged out)."""
    owner: str = ""
    """The token this claim wrote on the record: how a lost response is told from a rival's write."""


def forget_tables() -> None:
    """Forget which tables exist and what was read of them (tests delete them between cases)."""
    tables.forget_tables()
    _KEYED_SINCE.clear()


#: Row that records when this table was first used keyed on source + id (no ``expires_at``:
#: never purged). Legacy look-ups stop once every record an older version wrote has expired.
KEYED_SINCE_ROW: Final = "$keyed-on-source-and-id"
#: Margin for older instances still writing during a deployment's overlap.
_LEGACY_MARGIN: Final = timedelta(days=1)
_KEYED_SINCE: Final[weakref.WeakKeyDictionary[Any, dict[str, datetime]]] = weakref.WeakKeyDictionary()


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value))


def _etag(metadata: Any) -> str:
    return str(metadata["etag"])


class IdempotencyStore:
    """Claim / complete / release over one Azure Table."""

    def __init__(
        self,
        tables: TableServiceClient,
        *,
        claim_timeout_seconds: int,
        retention_seconds: int,
        table_name: str = IDEMPOTENCY_TABLE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tables = tables
        self._table_name = table_name
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
        return ensure_table(self._tables, self._table_name)

    def _entity(self, key: str, event_id: str, status: str, expires_at: datetime, /, **extra: Any) -> dict[str, Any]:
        return {
            "PartitionKey": key,
            "RowKey": _ROW,
            "idempotency_key": event_id,
            "status": status,
            "expires_at": expires_at,
            **{k: v for k, v in extra.items() if v is not None},
        }

    def claim(self, event_id: str, /, *, legacy_key: str | None = None, **info: Any) -> Claim:
        """Mark ``event_id`` (the key) in progress; or raise :class:`AlreadyCompleted` / :class:`AlreadyInProgress`.

        ``info`` (e.g. ``event_type``, ``dialog_id``, ``source``) is stored on the record for
        operators. ``legacy_key`` names the record an older version wrote for the same event
        (keyed on its ``id`` alone): see the module's docstring.
        """
        key = record_key(event_id)
        table = self.table
        if legacy_key is not None:
            self._check_legacy(legacy_key, info)
        # Our mark on the record. When a write lands but its response is lost (a timeout), the
        # next look meets our own record: the owner tells it is ours, so the event runs now
        # instead of waiting out its own claim as a duplicate of itself.
        owner = uuid.uuid4().hex
        for _ in range(3):
            now = self._clock()
            expires = now + self.claim_timeout
            entity = self._entity(key, event_id, INPROGRESS, expires, claimed_at=now, owner=owner, **info)
            try:
                meta = table.create_entity(entity)
                return Claim(event_id, key, _etag(meta), expires, owner=owner)
            except ResourceExistsError:
                pass
            except ServiceResponseError:
                pass  # the insert may have landed (the SDK does not retry a POST): the owner will tell
            try:
                existing = table.get_entity(key, _ROW)
            except ResourceNotFoundError:
                continue  # released or purged between the two calls: insert again
            existing_expiry = _utc(existing.get("expires_at"))
            if existing.get("status") == INPROGRESS and existing.get("owner") == owner:
                return Claim(event_id, key, _etag(existing.metadata), existing_expiry, owner=owner)
            if existing_expiry > now:
                if existing.get("status") == COMPLETED:
                    raise AlreadyCompleted(f"event {event_id} was already handled")
                raise AlreadyInProgress(event_id, existing_expiry)
            try:
                meta = table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=_etag(existing.metadata),
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                continue  # someone else took it over first: look again
            except ResourceNotFoundError:
                continue
            return Claim(event_id, key, _etag(meta), expires, taken_over=True, owner=owner)
        raise AlreadyInProgress(event_id, self._clock() + self.claim_timeout)

    def keyed_since(self) -> datetime:
        """When this table was first used keyed on source + id (recorded on first call; cached)."""
        cached = _KEYED_SINCE.setdefault(self._tables, {})
        since = cached.get(self._table_name)
        if since is None:
            table = self.table
            with contextlib.suppress(ResourceExistsError):
                table.create_entity({"PartitionKey": KEYED_SINCE_ROW, "RowKey": _ROW, "since": self._clock()})
            since = _utc(table.get_entity(KEYED_SINCE_ROW, _ROW)["since"])
            cached[self._table_name] = since
        return since

    def _check_legacy(self, legacy_key: str, info: dict[str, Any]) -> None:
        """Raise as :meth:`claim` would when a live record of the old keying is this very event's.

        Only while such records can still be live: for the retention period (plus a margin)
        after the table was first used keyed on source + id. Then it costs nothing.
        """
        if self._clock() > self.keyed_since() + self.retention + self.claim_timeout + _LEGACY_MARGIN:
            return
        try:
            existing = self.table.get_entity(record_key(legacy_key), _ROW)
        except ResourceNotFoundError:
            return
        same_event = all(existing.get(k) == info.get(k) for k in ("event_type", "dialog_id"))
        expires = _utc(existing.get("expires_at"))
        if not same_event or expires <= self._clock():
            return
        if existing.get("status") == COMPLETED:
            raise AlreadyCompleted(f"event {legacy_key} was already handled (record from before source + id)")
        raise AlreadyInProgress(legacy_key, expires)

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
            entity = self._entity(claim.key, claim.event_id, COMPLETED, now + self.retention, completed_at=now)
            try:
                self.table.update_entity(
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
            entity = self.table.get_entity(claim.key, _ROW)
        except ResourceNotFoundError:
            return False
        except AzureError:
            if swallow:
                return False
            raise
        return bool(claim.owner) and entity.get("owner") == claim.owner and entity.get("status") == COMPLETED

    def release(self, claim: Claim) -> None:
        """Give the claim up (the handlers failed) so that the next delivery runs at once."""
        # No longer ours (ResourceModified): leave the new owner's record alone.
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
            self.table.delete_entity(claim.key, _ROW, etag=claim.etag, match_condition=MatchConditions.IfNotModified)

    def status(self, event_id: str) -> tuple[str, datetime] | None:
        """(status, expires_at) of an event's record, or None (for operators and tests)."""
        try:
            entity = self.table.get_entity(record_key(event_id), _ROW)
        except ResourceNotFoundError:
            return None
        return str(entity["status"]), _utc(entity["expires_at"])

    def purge_expired(self, max_seconds: float | None = None) -> int:
        """Delete records whose expiry has passed; returns how many.

        ``max_seconds`` bounds the run (a timer function has a timeout): what is
        left is taken by the next run.
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
