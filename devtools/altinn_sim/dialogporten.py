"""A fake of Dialogporten's service-owner dialog GET, for the app's enrichment (dev only).

Route: ``GET /dialogporten/api/v1/serviceowner/dialogs/{dialogId}`` (the simulator's base stands for
``https://platform.{tt02.}altinn.no``, so the Dialogporten base is ``{sim}/dialogporten``).

Rules, each from Altinn/dialogporten's own code (@743f07f):

- DP-MAINT: in maintenance mode every request, before authentication, is 503 ``text/plain``
  "Service Unavailable", with ``Retry-After`` only when a ``RetryAt`` is configured: that moment as an
  RFC 1123 date, not seconds (``src/Digdir.Library.Utils.AspNet/MaintenanceModeMiddleware.cs``,
  ``InvokeAsync``). :meth:`DialogStore.maintenance` switches it on; the simulator switches it off at the
  announced end, as the operators would (the real switch is configuration).
- DP-AUTH-401: a missing, malformed or expired token is 401 with an empty body and
  ``WWW-Authenticate: Bearer`` (JwtBearer's challenge; DP ``tests/…/ServiceOwner/Authentication/
  AuthenticationTests.cs``).
- DP-AUTH-403: a valid token without the scope ``digdir:dialogporten.serviceprovider`` (or without a
  ``consumer`` claim) is 403 with an empty body (``AuthorizationMiddleware``; DP ``…/CrossApiAuthenticationTests.cs``).
- DP-SO-404: an unknown id, and a dialog of another organisation alike, are 404 ``application/problem+json``
  ``{"title":"Resource not found.","errors":{"DialogEntity":["Entity 'DialogEntity' with the following
  key(s) was not found: (<id>)."]}}``: the loader filters by the caller's own resources
  (``Application/Features/V1/ServiceOwner/Common/HorizontalDataLoaders/FullDialogAggregateDataLoader.cs``,
  ``LoadDialogEntity``; ``WebApi/Common/Extensions/EndpointExtensions.cs`` ``NotFoundAsync``;
  ``Application/Common/ReturnTypes/EntityNotFound.cs``).
- DP-SO-DELETED, DP-SO-NOTVISIBLE: a deleted dialog (``deletedAt``) and one whose ``visibleFrom`` lies ahead
  are 200 with the dialog: the loader ignores the query filters (``.IgnoreQueryFilters()``) and the handler
  never reads ``visibleFrom`` (``ServiceOwner/Dialogs/Queries/Get/GetDialogQuery.cs``).
- DP-SO-ETAG: ``ETag`` is the dialog's ``revision``, unquoted (``GetDialogEndpoint.HandleAsync``).
- DP-RATE-NONE: the WebApi never answers 429 (no rate limiter in ``src/``).

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
    dialogs: dict[str, _Entry] = field(default_factory=dict)
    responses: list[tuple[str, Answer]] = field(default_factory=list)
    requests: int = 0
    #: DP-MAINT: (until, announce a RetryAt?) while maintenance lasts; None: open.
    _maintenance: tuple[float, bool] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, dialog: dict[str, Any], org_number: str = "991825827") -> None:
        with self._lock:
            self.dialogs[str(dialog["id"])] = _Entry(dialog, org_number)

    def maintenance(self, until: datetime, *, announce: bool = True) -> None:
        """DP-MAINT: a maintenance window until ``until``; ``announce`` sends it as ``Retry-After`` (RetryAt)."""
        with self._lock:
            self._maintenance = (until.timestamp(), announce)

    def get(self, dialog_id: str, authorization: str | None) -> Answer:
        answer = self._answer(dialog_id, authorization)
        with self._lock:
            self.requests += 1
            self.responses.append((DIALOG_ROUTE, answer))
        return answer

    def _answer(self, dialog_id: str, authorization: str | None) -> Answer:
        with self._lock:
            window = self._maintenance
            if window is not None and window[0] <= self.clock():
                window = self._maintenance = None  # the announced end: the operators switch it off
        if window is not None:  # DP-MAINT: before authentication
            until, announce = window
            headers = (
                {"Retry-After": format_datetime(datetime.fromtimestamp(until, UTC), usegmt=True)} if announce else {}
            )
            return Answer(503, headers, b"Service Unavailable", "text/plain")
        claims = self._claims(authorization)
        if claims is None:  # DP-AUTH-401
            return Answer(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, b"", None)
        consumer = claims.get("consumer")
        if SCOPE not in str(claims.get("scope", "")).split() or not isinstance(consumer, dict):  # DP-AUTH-403
            return Answer(403, {}, b"", None)
        with self._lock:
            entry = self.dialogs.get(dialog_id.lower())
        owner = str(consumer.get("ID", "")).split(":", 1)[-1]
        if entry is None or entry.org_number != owner:  # DP-SO-404: another organisation's is not found either
            return _not_found(dialog_id)
        dialog = entry.dialog  # DP-SO-DELETED, DP-SO-NOTVISIBLE: returned as it is
        body = json.dumps(dialog).encode("utf-8")
        return Answer(200, {"ETag": str(dialog["revision"])}, body, "application/json")  # DP-SO-ETAG

    def _claims(self, authorization: str | None) -> dict[str, Any] | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        try:
            return self.verify_token(authorization.split(" ", 1)[1].strip())
        except Exception:  # any refusal of the token is a 401 here
            return None


def _not_found(dialog_id: str) -> Answer:
    """DP-SO-404: FastEndpoints' ValidationProblemDetails for an EntityNotFound<DialogEntity>."""
    body = {
        "type": "https://datatracker.ietf.org/doc/html/rfc7231#section-6.5.4",
        "title": "Resource not found.",
        "status": 404,
        "instance": f"/api/v1/serviceowner/dialogs/{dialog_id}",
        "errors": {"DialogEntity": [f"Entity 'DialogEntity' with the following key(s) was not found: ({dialog_id})."]},
        "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00",
    }
    return Answer(404, {}, json.dumps(body).encode("utf-8"), "application/problem+json")


def _problem(status: int, title: str, errors: dict[str, list[str]]) -> Answer:
    body = {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.5",
        "title": title,
        "status": status,
        "errors": errors,
        "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
    }
    return Answer(status, {}, json.dumps(body).encode("utf-8"), "application/problem+json")


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
