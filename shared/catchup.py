"""Catch-up: read Altinn's events API and put every event on its queue through the webhook's core.

Used by the operator CLI (``dpctl catch-up``) and by the app's opt-in timer
(:mod:`shared.functions.catchup`). Each event goes through :func:`shared.ingest.handle` exactly as a
single ``application/json`` POST from Altinn would, so validation, routing, allow-lists and durability
are the webhook's; a duplicate of an event the webhook already took is harmless, the handlers
deduplicate by ``source`` + ``id``.

The API (EV ``Controllers/EventsController.cs``): ``GET /events/api/v1/events?resource=…&after=…&size=…``
needs ``resource`` and ``after`` (``0``: from the oldest kept, 90 days), an Altinn token (the
Maskinporten token exchanged; scope ``altinn:events.subscribe``), caps ``size`` at 1000 and gives the
next page in the ``next`` header. It has no time filter, so ``skip_before`` reads from the cursor and
skips older events. A page shorter than ``size`` is the last: no request is spent on an empty one.

The cursor kept by the timer lives in the table :data:`CATCHUP_TABLE` (one row per resource).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlencode

from shared.ingest import EventSink, Policy, WebhookRequest, handle
from shared.maskinporten import AuthError, Token, Transport, urllib_transport

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

__all__ = [
    "CATCHUP_TABLE",
    "EVENTS_PATH",
    "MAX_SIZE",
    "CatchUpError",
    "CatchUpResult",
    "CursorStore",
    "catch_up",
    "parse_time",
]

EVENTS_PATH: Final = "/events/api/v1/events"
MAX_SIZE: Final = 1000
CATCHUP_TABLE: Final = "catchup"
REQUEST_TIMEOUT: Final = 60.0
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 time (7 fractional digits allowed), or None when ``value`` is a cursor."""
    if value == "0" or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class TokenSource(Protocol):
    def token(self) -> Token: ...

    def invalidate(self) -> None: ...


class CatchUpError(Exception):
    """Reading stopped; ``cursor`` is where to resume (everything before it is on the queues)."""

    def __init__(self, message: str, cursor: str) -> None:
        super().__init__(message)
        self.cursor = cursor


@dataclass
class CatchUpResult:
    cursor: str
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "read": 0,
            "accepted": 0,
            "parked": 0,
            "validated": 0,
            "rejected": 0,
            "before_since": 0,
        }
    )
    rejected: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    #: False when ``max_seconds`` ran out before the last page.
    complete: bool = True


def catch_up(
    resource: str,
    cursor: str,
    *,
    platform: str,
    tokens: TokenSource,
    sink: EventSink,
    policy: Policy,
    size: int = MAX_SIZE,
    types: tuple[str, ...] = (),
    skip_before: datetime | None = None,
    transport: Transport = urllib_transport,
    on_page: Callable[[CatchUpResult], None] | None = None,
    max_seconds: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> CatchUpResult:
    """Queue every event of ``resource`` after ``cursor``; ``on_page`` runs after each page is on the queues."""
    result = CatchUpResult(cursor)
    deadline = None if max_seconds is None else monotonic() + max_seconds
    params = [("resource", resource), ("after", cursor), ("size", str(size))] + [("type", t) for t in types]
    url: str | None = f"{platform.rstrip('/')}{EVENTS_PATH}?{urlencode(params)}"
    refreshed = False
    while url:
        if deadline is not None and monotonic() >= deadline:
            result.complete = False
            break
        try:
            token = tokens.token()
            response = transport(
                "GET",
                url,
                timeout=REQUEST_TIMEOUT,
                body=None,
                headers={"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"},
            )
        except (AuthError, OSError) as exc:
            raise CatchUpError(f"reading {url.split('?')[0]}: {exc}", result.cursor) from exc
        result.requests += 1
        if response.status == 401 and not refreshed:
            refreshed = True  # an Altinn token revoked early: one fresh token, one more try
            tokens.invalidate()
            continue
        if response.status != 200:
            text = response.body[:300].decode("utf-8", "replace")
            raise CatchUpError(f"GET {url}: {response.status} {text}", result.cursor)
        page = response.json()
        if not isinstance(page, list):
            raise CatchUpError(f"GET {url}: the answer is not a JSON array", result.cursor)
        for event in page:
            _queue(event, result, sink, policy, skip_before)
        if on_page is not None and page:
            on_page(result)
        url = response.header("next") if len(page) >= size else None
    return result


def _queue(event: Any, result: CatchUpResult, sink: EventSink, policy: Policy, skip_before: datetime | None) -> None:
    counts = result.counts
    counts["read"] += 1
    event_id = str(event.get("id")) if isinstance(event, dict) else ""
    if skip_before is not None and isinstance(event, dict):
        moment = parse_time(str(event.get("time", "")))
        if moment is not None and moment < skip_before:
            counts["before_since"] += 1
            result.cursor = event_id
            return
    body = json.dumps(event).encode("utf-8")
    answer = handle(WebhookRequest("POST", {"content-type": "application/json"}, body, "catch-up"), sink, policy)
    if answer.status == 200:
        for item in json.loads(answer.body)["events"]:
            counts[item["outcome"]] = counts.get(item["outcome"], 0) + 1
    elif answer.status >= 500:
        raise CatchUpError(f"storage refused event {event_id}: {answer.body.decode('utf-8', 'replace')}", result.cursor)
    else:  # refused for good (invalid, outside the allow-lists): logged by the core; counted, and on
        counts["rejected"] += 1
        result.rejected.append(
            {"id": event_id, "status": answer.status, "problem": json.loads(answer.body or b"{}").get("detail")}
        )
    result.cursor = event_id


class CursorStore:
    """Where the timer resumes, per resource: table :data:`CATCHUP_TABLE`, ``PartitionKey`` ``cursor``."""

    PARTITION: Final = "cursor"

    def __init__(self, tables: TableServiceClient) -> None:
        from shared.tables import ensure_table

        self._table = ensure_table(tables, CATCHUP_TABLE)

    @staticmethod
    def _row_key(resource: str) -> str:
        # RowKey forbids / \ # ? and control characters; resource URNs are letters, digits, ':' '-' '_'.
        return re.sub(r"[/\\#?\x00-\x1f\x7f]", "_", resource)

    def get(self, resource: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            row = self._table.get_entity(self.PARTITION, self._row_key(resource))
        except ResourceNotFoundError:
            return None
        return str(row["Cursor"])

    def put(self, resource: str, cursor: str) -> None:
        from azure.data.tables import UpdateMode

        entity = {
            "PartitionKey": self.PARTITION,
            "RowKey": self._row_key(resource),
            "Resource": resource,
            "Cursor": cursor,
            "SavedAt": datetime.now(UTC),
        }
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
