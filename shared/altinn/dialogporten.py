"""Dialogporten's service-owner API: the whole dialog an event is about, typed.

An event only says that something happened to a dialog; this module fetches the dialog itself, with the
contracts of Altinn/dialogporten's own code (cited rule by rule in the simulator,
``devtools/altinn_sim/dialogporten.py``) and the pinned OpenAPI document
``@digdir/dialogporten-schema`` ``swagger.verified.json`` (operation ``V1ServiceOwnerDialogsQueriesGet_Dialog``):

- ``GET {base}/api/v1/serviceowner/dialogs/{dialogId}`` with a Maskinporten token (scope
  ``digdir:dialogporten.serviceprovider``) used directly, no Altinn exchange. Bases:
  ``https://platform.tt02.altinn.no/dialogporten`` and ``https://platform.altinn.no/dialogporten``.
- Never the end-user API: reading it writes a seen-log entry and emits ``dialog.seen``/``dialog.updated``
  events back to this very webhook.
- The service-owner GET answers **200** for a deleted dialog (``deletedAt`` set) and for one whose
  ``visibleFrom`` lies ahead: its loader ignores the query filters and its handler never reads
  ``visibleFrom`` (``FullDialogAggregateDataLoader.LoadDialogEntity``, ``GetDialogQueryHandler``). It
  answers **404** for a dialog of another organisation, exactly as for one that does not exist: the query
  filters by the caller's own resources. The 404 with ``Expires`` and the 410 belong to the end-user API.
- **503 in a maintenance window** (``MaintenanceModeMiddleware``): ``Retry-After`` is an RFC 1123 *date*,
  the announced end, which may be hours away.

How each answer meets the queue semantics (see :func:`DialogportenClient.get_dialog`):

========================  ====================================================================================
200                       the :class:`Dialog`: ``deleted``, ``visible_from`` and ``is_visible`` say what they say;
                          whether to wait for ``visibleFrom`` is the handler's choice
                          (``raise RetryLater(dialog.visible_from, ...)``)
503 / 429 + Retry-After   waited out in the call when it fits its budget (15 s), else :class:`RetryLater`
                          until that moment: processing puts the message back, no attempt spent
503 / 429 / 5xx, no time  :class:`DialogportenUnavailable` (transient: the queue retries)
401                       the token is refreshed once and the request repeated; a second 401 is permanent
404                       :class:`DialogportenRefused`: not found, or another organisation's (permanent)
other 4xx                 :class:`DialogportenRefused` (permanent: poison, with the reason)
no token                  a refused grant is permanent; Maskinporten's "not now" is transient, or a
                          :class:`RetryLater` when it names a time
network, timeout          :class:`DialogportenUnavailable` (transient)
========================  ====================================================================================

The models are written by hand from the pinned document and kept to it by a drift test
(``devtools/checks/dialogporten_schema.py``); unknown fields are kept, as everywhere. :class:`DeletedDialog`
and :class:`~shared.errors.DialogNotVisibleYet` stay importable for one release: they are what the
end-user API would answer, and the client no longer produces them. No ``azure.functions`` import; HTTP, the
clock and sleeping are injected.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from shared.altinn.http import HttpClient, HttpResponse, Transport, parse_http_time
from shared.altinn.maskinporten import TokenSource
from shared.errors import (
    DialogNotVisibleYet,
    DialogportenRefused,
    DialogportenUnavailable,
    EnrichmentNotConfigured,
    InsecureUrl,
    OutboundError,
    PermanentError,
    RetryLater,
    TokenRefused,
    TokenUnavailable,
    TransientError,
)

__all__ = [
    "SCOPE",
    "Activity",
    "ActivityType",
    "DeletedDialog",
    "Dialog",
    "DialogNotVisibleYet",
    "DialogStatus",
    "DialogportenClient",
    "DialogportenRefused",
    "DialogportenUnavailable",
    "EnrichmentNotConfigured",
    "FetchedDialog",
    "PermanentError",
    "RetryLater",
    "TransientError",
    "Transmission",
    "TransmissionType",
]

SCOPE: Final = "digdir:dialogporten.serviceprovider"
DIALOG_PATH: Final = "/api/v1/serviceowner/dialogs/"
#: One request may take this long; with the retries below a fetch stays far inside host.json's
#: functionTimeout (5 minutes).
REQUEST_TIMEOUT: Final = 10.0
#: The whole fetch (retries and Retry-After waits included) ends within this.
FETCH_BUDGET: Final = 45.0
#: A ``Retry-After`` longer than this is left to the queue's retry instead of sleeping through it.
MAX_IN_PROCESS_WAIT: Final = 15.0
#: Attempts for 429/503/5xx answers within one fetch (a network failure is left to the queue's retry).
MAX_ATTEMPTS: Final = 3
#: A dialog with all its activities and transmissions; far above any seen.
MAX_DIALOG_BYTES: Final = 4 * 1024 * 1024


# --- the models (components/schemas of the pinned swagger.verified.json) ----------------------


class DialogStatus(StrEnum):
    """``DialogsEntities_DialogStatus``."""

    IN_PROGRESS = "InProgress"
    DRAFT = "Draft"
    REQUIRES_ATTENTION = "RequiresAttention"
    COMPLETED = "Completed"
    NOT_APPLICABLE = "NotApplicable"
    AWAITING = "Awaiting"


class ActivityType(StrEnum):
    """``DialogsEntitiesActivities_DialogActivityType``."""

    DIALOG_CREATED = "DialogCreated"
    DIALOG_CLOSED = "DialogClosed"
    INFORMATION = "Information"
    TRANSMISSION_OPENED = "TransmissionOpened"
    PAYMENT_MADE = "PaymentMade"
    SIGNATURE_PROVIDED = "SignatureProvided"
    DIALOG_OPENED = "DialogOpened"
    DIALOG_DELETED = "DialogDeleted"
    DIALOG_RESTORED = "DialogRestored"
    SENT_TO_SIGNING = "SentToSigning"
    SENT_TO_FORM_FILL = "SentToFormFill"
    SENT_TO_SEND_IN = "SentToSendIn"
    SENT_TO_PAYMENT = "SentToPayment"
    FORM_SUBMITTED = "FormSubmitted"
    FORM_SAVED = "FormSaved"
    CORRESPONDENCE_OPENED = "CorrespondenceOpened"
    CORRESPONDENCE_CONFIRMED = "CorrespondenceConfirmed"


class TransmissionType(StrEnum):
    """``DialogsEntitiesTransmissions_DialogTransmissionType``."""

    INFORMATION = "Information"
    ACCEPTANCE = "Acceptance"
    REJECTION = "Rejection"
    REQUEST = "Request"
    ALERT = "Alert"
    DECISION = "Decision"
    SUBMISSION = "Submission"
    CORRECTION = "Correction"


#: Known values become the enum; a value a newer Dialogporten added stays a plain string.
_Status = Annotated[DialogStatus | str, Field(union_mode="left_to_right")]
_ActivityKind = Annotated[ActivityType | str, Field(union_mode="left_to_right")]
_TransmissionKind = Annotated[TransmissionType | str, Field(union_mode="left_to_right")]


class _Model(BaseModel):
    # Unknown fields are kept (Dialogporten adds fields between releases); enum fields also take
    # a value this release does not know, as a plain string, rather than failing the event.
    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True, frozen=True)


class Activity(_Model):
    """``V1ServiceOwnerDialogsQueriesGet_DialogActivity``."""

    id: uuid.UUID
    type: _ActivityKind
    created_at: datetime | None = None
    extended_type: str | None = None
    transmission_id: uuid.UUID | None = None
    performed_by: dict[str, Any] | None = None
    description: list[dict[str, Any]] | None = None


class Transmission(_Model):
    """``V1ServiceOwnerDialogsQueriesGet_DialogTransmission``."""

    id: uuid.UUID
    type: _TransmissionKind
    created_at: datetime | None = None
    extended_type: str | None = None
    external_reference: str | None = None
    related_transmission_id: uuid.UUID | None = None
    is_opened: bool | None = None
    sender: dict[str, Any] | None = None
    content: dict[str, Any] | None = None


class Dialog(_Model):
    """``V1ServiceOwnerDialogsQueriesGet_Dialog``: what the service-owner GET answers."""

    id: uuid.UUID
    revision: uuid.UUID
    org: str
    party: str
    service_resource: str
    service_resource_type: str | None = None
    status: _Status
    extended_status: str | None = None
    external_reference: str | None = None
    process: str | None = None
    preceding_process: str | None = None
    progress: int | None = None
    visible_from: datetime | None = None
    due_at: datetime | None = None
    expires_at: datetime | None = None
    deleted_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    content_updated_at: datetime | None = None
    content: dict[str, Any] | None = None
    activities: list[Activity] | None = None
    transmissions: list[Transmission] | None = None

    @property
    def deleted(self) -> bool:
        """The service-owner API returns deleted dialogs too, with ``deletedAt`` set."""
        return self.deleted_at is not None

    @property
    def is_visible(self) -> bool:
        """Whether end users see it now: no ``visibleFrom``, or one that has passed.

        The service-owner API returns a dialog before its ``visibleFrom`` too. To act only once end users
        can see it, ``raise RetryLater(dialog.visible_from, "not visible yet")`` from the handler.
        """
        return self.visible_from is None or self.visible_from <= datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DeletedDialog:
    """What the end-user API answers for a deleted dialog (410 Gone). Kept importable for one release: the
    service-owner API answers 200 with ``deletedAt`` instead, so :meth:`DialogportenClient.get_dialog`
    returns a :class:`Dialog` whose ``deleted`` is true."""

    id: str
    deleted: bool = True


#: What ``get_dialog`` returned before the client followed the service-owner API (kept for one release).
FetchedDialog = Dialog | DeletedDialog


# --- the client -------------------------------------------------------------------------------


def _problem_text(body: bytes) -> str:
    try:
        problem = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if not isinstance(problem, dict):
        return json.dumps(problem)[:200]
    parts = [str(problem[k]) for k in ("title", "detail") if problem.get(k)]
    errors = problem.get("errors")
    if isinstance(errors, dict):
        parts += [f"{k}: {'; '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items()]
    return " - ".join(parts)[:300]


class DialogportenClient:
    """Fetches dialogs from the service-owner API with a (shared, cached) Maskinporten token."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        request_timeout: float = REQUEST_TIMEOUT,
        budget: float = FETCH_BUDGET,
        max_in_process_wait: float = MAX_IN_PROCESS_WAIT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self._transport: Transport = transport or HttpClient()
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._timeout = request_timeout
        self._budget = budget
        self._max_wait = max_in_process_wait

    def url_for(self, dialog_id: str) -> str:
        return f"{self.base_url}{DIALOG_PATH}{dialog_id}"

    def get_dialog(self, dialog_id: str | uuid.UUID) -> Dialog:
        """The dialog, typed (deleted and not-yet-visible ones too). Raises by branch (see the module doc)."""
        try:
            key = str(uuid.UUID(str(dialog_id)))
        except ValueError:
            raise DialogportenRefused(f"dialog id {str(dialog_id)[:64]!r} is not a UUID", 400) from None
        url = self.url_for(key)
        deadline = self._monotonic() + self._budget
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            response = self._send(url, deadline)
            status = response.status
            if status == 200:
                return self._typed(key, response.body)
            if status == 401 and not refreshed:
                refreshed = True  # a revoked or clock-skewed token: one fresh token, one more try
                self.tokens.invalidate()
                continue
            if status == 404:
                raise DialogportenRefused(
                    f"GET {url}: 404: no such dialog, or a dialog of another organisation (the service-owner "
                    f"API answers 404 for both) - {_problem_text(response.body)}",
                    status,
                )
            if 400 <= status < 500 and status != 429:
                raise DialogportenRefused(f"GET {url}: {status} {_problem_text(response.body)}".rstrip(), status)
            now = self._clock()
            retry_at = parse_http_time(response.header("Retry-After"), now)
            wait = max(0.0, retry_at.timestamp() - now) if retry_at else min(2.0**attempt, 8.0)
            left = deadline - self._monotonic()
            if retry_at is not None and (wait > self._max_wait or wait >= left):
                # A maintenance window (or a rate limit) that ends later than this call can wait.
                raise RetryLater(retry_at, f"Dialogporten answered {status} until {retry_at.isoformat()}")
            if attempt >= MAX_ATTEMPTS or wait >= left:
                raise DialogportenUnavailable(f"GET {url}: {status} after {attempt} attempt(s)")
            self._sleep(wait)

    def _send(self, url: str, deadline: float) -> HttpResponse:
        left = deadline - self._monotonic()
        if left <= 0:
            raise DialogportenUnavailable(f"GET {url}: out of time ({self._budget:.0f} s budget)")
        try:
            token = self.tokens.token()
        except TokenRefused as exc:
            raise DialogportenRefused(f"no Maskinporten token: {exc}", exc.status or 0) from exc
        except TokenUnavailable as exc:
            if exc.retry_at is not None:
                raise RetryLater(exc.retry_at, f"no Maskinporten token yet: {exc}") from exc
            raise DialogportenUnavailable(f"no Maskinporten token: {exc}") from exc
        try:
            return self._transport(
                "GET",
                url,
                body=None,
                timeout=min(self._timeout, left),
                headers={"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"},
                max_bytes=MAX_DIALOG_BYTES,
            )
        except InsecureUrl as exc:  # the configured base: no retry can fix it
            raise DialogportenRefused(f"GET {url}: {exc}", 0) from exc
        except OutboundError as exc:  # network, deadline, a redirect (never followed), too large
            raise DialogportenUnavailable(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _typed(dialog_id: str, body: bytes) -> Dialog:
        try:
            return Dialog.model_validate_json(body)
        except ValidationError as exc:
            # Dialogporten broke its own contract for this dialog: retrying returns the same bytes.
            raise DialogportenRefused(
                f"dialog {dialog_id}: the 200 body does not match the dialog model: "
                f"{exc.error_count()} error(s), first: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}",
                200,
            ) from None
