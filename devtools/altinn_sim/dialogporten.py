"""A fake of Dialogporten's service-owner dialog GET, for the app's enrichment (dev only).

Route: ``GET /dialogporten/api/v1/serviceowner/dialogs/{dialogId}`` (the simulator's base stands for
``https://platform.{tt02.}altinn.no``, so the Dialogporten base is ``{sim}/dialogporten``).

Rules, with their sources (the project's notes on the Altinn APIs §3, and the pinned OpenAPI
document, operation ``V1ServiceOwnerDialogsQueriesGet_Dialog``):

- DP-AUTH: a Maskinporten token (no exchange) with scope ``digdir:dialogporten.serviceprovider``,
  else 401 (documented without a body).
- DP-OWNER: a dialog of another org is 403 (documented without a body).
- DP-NOTFOUND: an unknown id is 404 with a ProblemDetails body (application/problem+json).
- DP-DELETED: the service-owner GET returns deleted dialogs, with ``deletedAt`` ("may return deleted
  dialogs"). With ``gone_when_deleted`` the fake answers 410 instead, as Dialogporten does for a
  deleted dialog elsewhere (#127; 410 is missing from the OpenAPI document).
- DP-VISIBLE: the service-owner GET ignores ``visibleFrom``. With ``hide_until_visible`` the fake
  answers as Dialogporten does before ``visibleFrom`` (PR #2802): 404, an ``Expires`` header (RFC 1123)
  set to ``visibleFrom``, and ``errors.DialogEntity: ["Dialog is not visible until yyyy-MM-ddTHH:mm:ss"]``.
- DP-503: maintenance mode is 503 ``text/plain`` "Service Unavailable" with ``Retry-After``
  (``fail_next``).

Every answer is recorded in :attr:`DialogStore.responses`, so tests can check each one against the
pinned OpenAPI document.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Final

BASE_PATH: Final = "/dialogporten"
DIALOG_ROUTE: Final = "/api/v1/serviceowner/dialogs/{dialogId}"
PREFIX: Final = BASE_PATH + "/api/v1/serviceowner/dialogs/"
SCOPE: Final = "digdir:dialogporten.serviceprovider"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    content_type: str | None


@dataclass
class _Entry:
    dialog: dict[str, Any]
    org_number: str


@dataclass
class DialogStore:
    """The fake's dialogs and its behaviour switches; thread-safe (the server is threaded)."""

    verify_token: Callable[[str], dict[str, Any]]
    clock: Callable[[], float]
    hide_until_visible: bool = False
    gone_when_deleted: bool = False
    dialogs: dict[str, _Entry] = field(default_factory=dict)
    responses: list[tuple[str, Answer]] = field(default_factory=list)
    requests: int = 0
    _failures: list[tuple[int, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, dialog: dict[str, Any], org_number: str = "991825827") -> None:
        with self._lock:
            self.dialogs[str(dialog["id"])] = _Entry(dialog, org_number)

    def fail_next(self, count: int, retry_after: str = "1") -> None:
        """The next ``count`` requests get 503 with this ``Retry-After`` (DP-503)."""
        with self._lock:
            self._failures += [(503, retry_after)] * count

    def get(self, dialog_id: str, authorization: str | None) -> Answer:
        answer = self._answer(dialog_id, authorization)
        with self._lock:
            self.requests += 1
            self.responses.append((DIALOG_ROUTE, answer))
        return answer

    def _answer(self, dialog_id: str, authorization: str | None) -> Answer:
        claims = self._claims(authorization)
        if claims is None or SCOPE not in str(claims.get("scope", "")).split():  # DP-AUTH
            return Answer(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, b"", None)
        with self._lock:
            if self._failures:
                status, retry_after = self._failures.pop(0)  # DP-503
                return Answer(status, {"Retry-After": retry_after}, b"Service Unavailable", "text/plain")
            entry = self.dialogs.get(dialog_id.lower())
        if entry is None:  # DP-NOTFOUND
            return _problem(404, "The given dialog ID was not found.", {"DialogEntity": [f"{dialog_id} not found"]})
        consumer = str(claims.get("consumer", {}).get("ID", ""))
        if consumer.split(":", 1)[-1] != entry.org_number:  # DP-OWNER
            return Answer(403, {}, b"", None)
        dialog = entry.dialog
        if self.gone_when_deleted and dialog.get("deletedAt"):  # DP-DELETED
            return _problem(410, "Gone", {"DialogEntity": [f"Entity 'DialogEntity' with key '{dialog_id}' is removed"]})
        visible_from = _moment(dialog.get("visibleFrom"))
        if self.hide_until_visible and visible_from and visible_from.timestamp() > self.clock():  # DP-VISIBLE
            text = visible_from.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
            answer = _problem(404, "Not Found", {"DialogEntity": [f"Dialog is not visible until {text}"]})
            return Answer(404, {**answer.headers, "Expires": format_datetime(visible_from, usegmt=True)}, answer.body,
                          answer.content_type)  # fmt: skip
        body = json.dumps(dialog).encode("utf-8")
        return Answer(200, {"ETag": f'"{dialog["revision"]}"'}, body, "application/json")

    def _claims(self, authorization: str | None) -> dict[str, Any] | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        try:
            return self.verify_token(authorization.split(" ", 1)[1].strip())
        except Exception:  # any refusal of the token is a 401 here
            return None


def _problem(status: int, title: str, errors: dict[str, list[str]]) -> Answer:
    body = {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.5",
        "title": title,
        "status": status,
        "errors": errors,
        "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
    }
    return Answer(status, {}, json.dumps(body).encode("utf-8"), "application/problem+json")


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sample_dialog(
    dialog_id: str | None = None,
    *,
    org: str = "ttd",
    resource: str = "urn:altinn:resource:super-simple-service",
    status: str = "InProgress",
    visible_from: datetime | None = None,
    deleted_at: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A dialog as the service-owner GET answers it (only properties of its schema, which forbids others)."""
    now = now or datetime.now(UTC)
    created = now - timedelta(minutes=5)
    activity_id = str(uuid.uuid4())
    return {
        "id": dialog_id or str(uuid.uuid4()),
        "revision": str(uuid.uuid4()),
        "org": org,
        "party": "urn:altinn:organization:identifier-no:313695156",
        "serviceResource": resource,
        "serviceResourceType": "GenericAccessResource",
        "status": status,
        "extendedStatus": None,
        "progress": 10,
        "visibleFrom": _iso(visible_from) if visible_from else None,
        "deletedAt": _iso(deleted_at) if deleted_at else None,
        "createdAt": _iso(created),
        "updatedAt": _iso(now),
        "contentUpdatedAt": _iso(created),
        "hasUnopenedContent": False,
        "isApiOnly": False,
        "activities": [
            {
                "id": activity_id,
                "type": "DialogCreated",
                "createdAt": _iso(created),
                "performedBy": {"actorType": "ServiceOwner"},
                "description": [],
            }
        ],
        "transmissions": [],
    }
