"""Every exception the app raises, in one tree with one root.

Like the exceptions module of the CloudEvents SDK and those of Powertools for AWS
Lambda, the tree says what happens next, so processing decides by branch rather
than by a list of classes::

    DialogportenError                 the root: every exception of the app
    ├── PermanentError                poison now: retrying can never help
    │   ├── MessageError              a queue message that is not an event (not JSON, claim check gone)
    │   ├── EventError                an event that does not match its type's model
    │   ├── CannotSucceed             raised by a handler: "this event can never succeed"
    │   ├── DialogportenRefused       Dialogporten refused for good (404 not ours, 400, 401 after a fresh token)
    │   ├── EnrichmentNotConfigured   a handler fetched a dialog, but Maskinporten is not configured
    │   └── InsecureUrl               (an OutboundError) a token would go somewhere other than https
    ├── TransientError                retry after visibilityTimeout
    │   ├── RetryLater                "not now": put back until ``until``, no attempt spent (bounded)
    │   │   └── DialogNotVisibleYet   the end-user API's 404 with Expires (kept for one release)
    │   ├── AlreadyInProgress         (an IdempotencyError) another worker holds the event
    │   ├── DialogportenUnavailable   503 or a 5xx without a time, a timeout
    │   ├── TokenUnavailable          (an AuthError) Maskinporten or the exchange: 429, 5xx, the network
    │   └── Unreachable, DeadlineExceeded, RedirectRefused, ResponseTooLarge   (OutboundErrors)
    ├── OutboundError                 any failed outside call: its subclasses sit in the branch above that fits
    ├── AuthError                     no token from Maskinporten or the exchange; TokenRefused (a PermanentError:
    │                                 the grant was refused) or TokenUnavailable (transient)
    ├── EventsApiError                a page of Altinn's events API could not be read
    ├── CatchUpError                  catch-up stopped for one resource (``cursor``: where to resume)
    │   └── CatchUpFailed             the timer's run, after every resource had its turn
    ├── IdempotencyError              the claim store's answers: AlreadyCompleted, AlreadyInProgress, ClaimLost
    ├── StorageUnavailable            the sink could not make an event durable (answered 503)
    ├── EventTooLarge                 storage refused an event as too large (answered 413)
    ├── InvalidJson                   not the strict JSON format (the intake answers 400)
    ├── Problem                       a refusal of the intake, as the RFC 9457 problem it is answered with
    └── InvalidValue                  a value the app cannot use (also a ValueError): a time, a resource URN
        └── SettingsError             an app setting the app cannot use

Anything else a handler raises (a ``requests`` timeout, an ``AzureError``...)
counts as transient: the safe default is to try again, and the last attempt
poisons the message anyway. The modules that raise these re-export them where
callers have always imported them (``shared.dialogporten``, ``shared.handlers``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

__all__ = [
    "ECHO_LIMIT",
    "AlreadyCompleted",
    "AlreadyInProgress",
    "AuthError",
    "CannotSucceed",
    "CatchUpError",
    "CatchUpFailed",
    "ClaimLost",
    "DeadlineExceeded",
    "DialogNotVisibleYet",
    "DialogportenError",
    "DialogportenRefused",
    "DialogportenUnavailable",
    "EnrichmentNotConfigured",
    "EventError",
    "EventTooLarge",
    "EventsApiError",
    "FieldError",
    "IdempotencyError",
    "InsecureUrl",
    "InvalidJson",
    "InvalidValue",
    "MessageError",
    "OutboundError",
    "PermanentError",
    "Problem",
    "RedirectRefused",
    "ResponseTooLarge",
    "RetryLater",
    "SettingsError",
    "StorageUnavailable",
    "TokenRefused",
    "TokenUnavailable",
    "TransientError",
    "Unreachable",
    "clip",
    "is_permanent",
]


class DialogportenError(Exception):
    """Root of the app's own errors."""


class PermanentError(DialogportenError):
    """Retrying cannot help: the message goes to ``<queue>-poison`` at once, untouched, with the reason."""


class TransientError(DialogportenError):
    """Retrying may help (storage, a concurrent writer): the host delivers the message again later."""


def is_permanent(exc: BaseException) -> bool:
    """Whether ``exc`` means "poison now" (anything outside the permanent branch is retried)."""
    return isinstance(exc, PermanentError)


# --- what a handler raises ---------------------------------------------------------------------------


class CannotSucceed(PermanentError):
    """Raise this from a handler when the event can never succeed, e.g. it names a case your system refuses.

    The message goes to ``<queue>-poison`` at once (no further attempts) and
    ``reason`` is logged with the event's ids. Raise anything else to retry.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(TransientError):
    """Raise this from a handler when an outside system says "later": the message is put back, invisible
    until ``after``, **without spending an attempt**.

    ``after`` is a number of seconds from now, or a moment (an aware ``datetime``). Processing puts back a
    fresh copy of the message's bytes (its dequeue count starts again), at most the queue's 7 days at a
    time, and logs it as ``deferred`` with ``reason`` and the moment. The total wait is bounded, counted
    from the event's ``time`` (``RETRY_LATER_MAX_WAIT_SECONDS``, 7 days): past it, ``RetryLater`` counts as
    an ordinary transient failure, and the last attempt poisons the message as usual. A claim (a handler
    with effects) is released first, so the copy is not taken for a duplicate in progress.
    """

    def __init__(self, after: float | datetime, reason: str = "") -> None:
        if isinstance(after, datetime):
            if after.tzinfo is None:
                raise TypeError("RetryLater needs an aware datetime (with a time zone), or a number of seconds")
            self.until: datetime | None = after
            self.seconds: float | None = None
        else:
            self.until = None
            self.seconds = max(0.0, float(after))
        text = reason or "retry later"
        when = self.until.isoformat() if self.until is not None else f"in {self.seconds:g} s"
        super().__init__(f"{text} (retry {'at ' if self.until is not None else ''}{when})")
        self.reason = text

    def moment(self, now: datetime) -> datetime:
        """When to try again, as seen from ``now``."""
        if self.until is not None:
            return self.until
        return now + timedelta(seconds=self.seconds or 0.0)


# --- events and messages ---------------------------------------------------------------------------


class MessageError(PermanentError, ValueError):
    """A queue message that can never be processed (not JSON, not an object, broken claim check)."""


class EventError(PermanentError, ValueError):
    """An event that can never be turned into its model (wrong shape, bad GUID, missing activityId...)."""


#: The most characters of a sender's value echoed in a problem (or its log line).
ECHO_LIMIT: Final = 200


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text``, or its first ``limit`` characters and an ellipsis: never echo a huge value back."""
    return text if len(text) <= limit else text[:limit] + "…"


def _printable(value: Any, limit: int = ECHO_LIMIT) -> Any:
    """Echo a bad value back, but never a huge or deeply nested one."""
    if isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        # Beyond 2**53 JSON readers lose digits: say what it was instead of echoing it.
        return value if abs(value) < 2**53 else f"<integer of {value.bit_length()} bits>"
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, dict | list):
        return f"<JSON {'object' if isinstance(value, dict) else 'array'}>"
    return str(value)[:limit]


@dataclass(frozen=True, slots=True)
class FieldError:
    """What was wrong with one member: where, what it held, which rule it broke."""

    field: str
    rule: str
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        # A field can be an extension name the sender chose, as long as the body allows.
        out: dict[str, Any] = {"field": clip(self.field), "rule": self.rule}
        if self.value is not None:
            out["value"] = _printable(self.value)
        return out


class InvalidJson(DialogportenError):
    """Bytes that are not the strict JSON format (:mod:`shared.events.jsonformat`): why, where, which rule.

    ``slug`` names the kind (``invalid-json``, ``invalid-utf8``, ``empty-body``), as the intake's 400 does.
    """

    def __init__(self, slug: str, detail: str, error: FieldError) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.error = error


_PROBLEM_TYPE_BASE: Final = "urn:dialogporten-receiver:problem:"


@dataclass(frozen=True)
class Problem(DialogportenError):
    """A refusal of the intake, with one precise status (:mod:`shared.intake.problems` builds and renders them).

    A 4xx says "your request was wrong, do not retry as is"; a 5xx says "our fault or storage down: retry".
    """

    status: int
    slug: str
    title: str
    detail: str
    errors: tuple[FieldError, ...] = ()
    headers: tuple[tuple[str, str], ...] = field(default=())

    @property
    def type(self) -> str:
        return _PROBLEM_TYPE_BASE + self.slug

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail}
        if instance:
            out["instance"] = instance
        if self.errors:
            out["errors"] = [e.as_dict() for e in self.errors]
        return out

    def to_json(self, instance: str | None = None) -> str:
        return json.dumps(self.body(instance), ensure_ascii=False)

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"


# --- storage -------------------------------------------------------------------------------------


class StorageUnavailable(DialogportenError):
    """The sink could not make an event durable; the sender must retry."""


class EventTooLarge(DialogportenError):
    """Storage refused the event as too large (HTTP 413): the sender's fault, a retry cannot help."""


class IdempotencyError(DialogportenError):
    """Base of the claim store's refusals."""


class AlreadyCompleted(IdempotencyError):
    """The event was handled before: acknowledge it, do not run the handlers again."""


class AlreadyInProgress(IdempotencyError, TransientError):
    """Another worker holds a live claim on the event: try again later."""

    def __init__(self, event_id: str, expires_at: datetime) -> None:
        super().__init__(f"event {event_id} is being handled elsewhere; claim expires at {expires_at.isoformat()}")
        self.expires_at = expires_at


class ClaimLost(IdempotencyError):
    """Our claim expired and another worker took it over before we completed."""


# --- outside calls -----------------------------------------------------------------------------------


class OutboundError(DialogportenError):
    """An outside call (Maskinporten, Altinn, Dialogporten) failed before it gave a usable answer."""


class Unreachable(OutboundError, TransientError):
    """The network failed: no connection, a reset, a TLS failure."""


class DeadlineExceeded(OutboundError, TransientError):
    """No whole answer within the request's deadline (however slowly the peer was sending)."""


class RedirectRefused(OutboundError, TransientError):
    """A 3xx answer: never followed, since the request carries a token. ``location`` is where it pointed."""

    def __init__(self, message: str, location: str | None) -> None:
        super().__init__(message)
        self.location = location


class ResponseTooLarge(OutboundError, TransientError):
    """The answer was larger than the request allows."""


class InsecureUrl(OutboundError, PermanentError):
    """Not https (plain http only to a loopback simulator), or not an absolute URL: nothing was sent."""


class AuthError(DialogportenError):
    """A token could not be obtained; the message says from where and why (``status``: the HTTP status, if any).

    Raised as one of its two kinds: :class:`TokenRefused` or :class:`TokenUnavailable`.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TokenRefused(AuthError, PermanentError):
    """The grant was refused for good (``invalid_client``, ``invalid_grant``, ``invalid_scope``, 403), the
    exchange refused a fresh token (401), or the client is not configured: retrying cannot help."""


class TokenUnavailable(AuthError, TransientError):
    """Maskinporten or the exchange said "not now" (429, a 5xx) or could not be reached; ``retry_at`` is the
    moment its ``Retry-After`` named, if it named one."""

    def __init__(self, message: str, status: int | None = None, retry_at: datetime | None = None) -> None:
        super().__init__(message, status)
        self.retry_at = retry_at


class EventsApiError(DialogportenError):
    """A page of Altinn's events API could not be read: the API's answer, a refused token, or a failed call."""


class CatchUpError(DialogportenError):
    """Catch-up stopped; ``cursor`` is where to resume (everything up to it is on the queues).

    ``partial`` is what was done before it stopped (a :class:`shared.intake.catchup.CatchUpResult`).
    """

    def __init__(self, message: str, cursor: str) -> None:
        super().__init__(message)
        self.cursor = cursor
        self.partial: Any = None


class CatchUpFailed(CatchUpError):
    """At least one resource's catch-up failed in the timer's run (each is logged with its resource and cursor)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, cursor="")


# --- Dialogporten ------------------------------------------------------------------------------------


class DialogNotVisibleYet(RetryLater):
    """What the end-user API answers before a dialog's ``visibleFrom`` (404 with ``Expires``).

    Kept importable for one release. The service-owner API this app calls answers 200 with ``visibleFrom``
    instead (``Dialog.is_visible``); a handler that wants to wait raises ``RetryLater(dialog.visible_from)``.
    """

    def __init__(self, dialog_id: str, until: datetime) -> None:
        super().__init__(until, f"dialog {dialog_id} is not visible until {until.isoformat()}")
        self.dialog_id = dialog_id


class DialogportenUnavailable(TransientError):
    """503/429/5xx, a timeout or a network failure: the queue retries later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DialogportenRefused(PermanentError):
    """A 4xx retrying cannot fix (404 not ours or not found, 400, a 401 after a fresh token)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class EnrichmentNotConfigured(PermanentError):
    """A handler asked for the dialog but the app has no Maskinporten client configured."""


# --- values ----------------------------------------------------------------------------------------


class InvalidValue(DialogportenError, ValueError):
    """A value the app cannot use: a time that is not RFC 3339, a resource that is not a resource URN."""


class SettingsError(InvalidValue):
    """A setting has a value the app cannot use."""
