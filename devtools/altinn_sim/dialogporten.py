"""A fake of Dialogporten's service-owner dialog GET, for the app's enrichment (dev only).

Route: ``GET /dialogporten/api/v1/serviceowner/dialogs/{dialogId}`` (the simulator's base stands for
``https://platform.{tt02.}altinn.no``, so the Dialogporten base is ``{sim}/dialogporten``). The checks run in
the order of the real pipeline: maintenance, authentication, authorization, binding, the query. Rules:

- DP-MAINT: in maintenance mode every request, before authentication, is 503 ``text/plain``
  "Service Unavailable", with ``Retry-After`` only when a ``RetryAt`` is configured: that moment as an
  RFC 1123 date, not seconds. :meth:`DialogStore.maintenance` switches it on; the simulator switches it off at
  the announced end, as the operators would (the real switch is configuration).
  Altinn/dialogporten src/Digdir.Library.Utils.AspNet/MaintenanceModeMiddleware.cs (MaintenanceModeMiddleware.InvokeAsync)
- DP-AUTH-401: a missing, malformed, expired (2 s skew) or foreign token is 401 with an empty body and
  ``WWW-Authenticate: Bearer`` (with ``error="invalid_token"`` when a token was sent). Maskinporten's tokens
  and the Altinn exchange's are both accepted (the scheme is chosen by the token's issuer).
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.WebApi/Common/Authentication/AuthenticationBuilderExtensions.cs (AddDialogportenAuthentication)
- DP-AUTH-403: a valid token without the scope ``digdir:dialogporten.serviceprovider``, or without a valid
  ``consumer`` claim (authority ``iso6523-actorid-upis``, ID ``0192:`` and an organisation number that
  passes mod 11), is 403 with an empty body.
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.WebApi/Common/Authorization/AuthorizationOptionsSetup.cs (AuthorizationOptionsSetup.Configure)
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.Application/Common/Extensions/ClaimsPrincipalExtensions.cs (TryGetConsumerOrgNumber)
- DP-SO-BADID: a ``dialogId`` that is not a GUID fails FastEndpoints' binding: 400, a
  ``ValidationProblemDetails`` under ``errors.dialogId``.
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.WebApi/Common/NonBodyRequestBinder.cs (NonBodyRequestBinder)
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.WebApi/Common/Extensions/ErrorResponseBuilderExtensions.cs (Status400BadRequest)
- DP-SO-404: an unknown id, and a dialog of another organisation alike, are 404 ``application/problem+json``
  ``{"title":"Resource not found.","errors":{"DialogEntity":["Entity 'DialogEntity' with the following
  key(s) was not found: (<id>)."]}}``: the loader filters by the caller's own resources.
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.Application/Features/V1/ServiceOwner/Common/HorizontalDataLoaders/FullDialogAggregateDataLoader.cs (LoadDialogEntity)
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.WebApi/Common/Extensions/EndpointExtensions.cs (NotFoundAsync)
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.Application/Common/ReturnTypes/EntityNotFound.cs (EntityNotFound)
- DP-SO-OK: a dialog of the caller's is 200, ``application/json``, returned as it is: a deleted one (with
  ``deletedAt``) and one whose ``visibleFrom`` lies ahead alike, for the loader ignores the query filters and
  the handler never reads ``visibleFrom``. Null fields are left out of the JSON.
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.Application/Features/V1/ServiceOwner/Common/HorizontalDataLoaders/FullDialogAggregateDataLoader.cs (IgnoreQueryFilters)
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.Application/Features/V1/ServiceOwner/Dialogs/Queries/Get/GetDialogQuery.cs (GetDialogQueryHandler)
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.WebApi/Program.cs (WhenWritingNull)
- DP-SO-ETAG: ``ETag`` is the dialog's ``revision``, unquoted.
  Altinn/dialogporten src/Digdir.Domain.Dialogporten.WebApi/Endpoints/V1/ServiceOwner/Dialogs/Queries/Get/GetDialogEndpoint.cs (GetDialogEndpoint.HandleAsync)

The WebApi has no rate limiter: it never answers 429 (nothing in its ``src/`` does). Every answer is recorded
in :attr:`DialogStore.responses`, so tests can check each one against the pinned OpenAPI document.
"""  # noqa: E501 - a citation stays on one line

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Final

from devtools.cli.traffic import ORG_WEIGHTS, mod11

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
            self.dialogs[str(dialog["id"]).lower()] = _Entry(dialog, org_number)

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
            return Answer(503, headers, b"Service Unavailable", "text/plain")  # DP-MAINT
        sent = bool(authorization and authorization.lower().startswith("bearer ") and authorization[7:].strip())
        claims = self._claims(authorization)
        if claims is None:  # DP-AUTH-401
            challenge = 'Bearer error="invalid_token"' if sent else "Bearer"
            return Answer(401, {"WWW-Authenticate": challenge}, b"", None)
        if SCOPE not in str(claims.get("scope", "")).split():  # DP-AUTH-403
            return Answer(403, {}, b"", None)
        owner = consumer_org_number(claims.get("consumer"))
        if owner is None:  # DP-AUTH-403
            return Answer(403, {}, b"", None)
        try:
            key = str(uuid.UUID(dialog_id))
        except ValueError:  # DP-SO-BADID
            return _problem(400, "One or more validation errors occurred.", "6.5.1", dialog_id, {
                "dialogId": [f"Value [{dialog_id}] is not valid for a [Guid] property!"]
            })  # fmt: skip
        with self._lock:
            entry = self.dialogs.get(key)
        if entry is None or entry.org_number != owner:  # DP-SO-404: another organisation's is not found either
            return _problem(404, "Resource not found.", "6.5.4", dialog_id, {
                "DialogEntity": [f"Entity 'DialogEntity' with the following key(s) was not found: ({key})."]
            })  # fmt: skip
        dialog = entry.dialog  # DP-SO-OK: deleted and not yet visible dialogs alike
        body = json.dumps(_without_nulls(dialog)).encode("utf-8")  # DP-SO-OK: null fields left out
        return Answer(200, {"ETag": str(dialog["revision"])}, body, "application/json")  # DP-SO-ETAG

    def _claims(self, authorization: str | None) -> dict[str, Any] | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        try:
            return self.verify_token(authorization.split(" ", 1)[1].strip())
        except Exception:  # any refusal of the token is a 401 here
            return None


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def trace_id() -> str:
    """A W3C trace context id, as ASP.NET puts in every problem body of Altinn's services."""
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00"


def valid_org_number(number: str) -> bool:
    """``NorwegianOrganizationIdentifier.IsValid``: nine digits, the last a mod-11 control digit (the one
    computation ``dpctl send`` also makes its numbers with)."""
    return len(number) == 9 and number.isdigit() and mod11(number[:8], ORG_WEIGHTS) == int(number[8])


def consumer_org_number(consumer: Any) -> str | None:
    """The organisation number of a ``consumer`` claim as Dialogporten reads it, or None (DP-AUTH-403)."""
    if isinstance(consumer, str):
        try:
            consumer = json.loads(consumer)
        except ValueError:
            return None
    if not isinstance(consumer, dict) or str(consumer.get("authority", "")).lower() != "iso6523-actorid-upis":
        return None
    parts = str(consumer.get("ID", "")).split(":")
    return parts[1] if len(parts) == 2 and parts[0] == "0192" and valid_org_number(parts[1]) else None


def _problem(status: int, title: str, section: str, dialog_id: str, errors: dict[str, list[str]]) -> Answer:
    """FastEndpoints' ``ValidationProblemDetails`` from Dialogporten's ``ResponseBuilder``."""
    body = {
        "type": f"https://datatracker.ietf.org/doc/html/rfc7231#section-{section}",
        "title": title,
        "status": status,
        "instance": f"/api/v1/serviceowner/dialogs/{dialog_id}",
        "errors": errors,
        "traceId": trace_id(),
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
