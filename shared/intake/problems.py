"""Errors as values at the edge: RFC 9457 problem details.

Every refusal of the webhook is a :class:`Problem` with one precise status.
A 4xx says "your request was wrong, do not retry as is"; a 5xx says "our
fault or storage down: retry".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
#: The bodies are UTF-8 (a sender's value is echoed as is); said, not left to the client to guess.
PROBLEM_CONTENT_TYPE_HEADER: Final = PROBLEM_CONTENT_TYPE + "; charset=utf-8"
#: Seconds a client is asked to wait after a 503 before retrying: one figure for every endpoint.
RETRY_AFTER_SECONDS: Final = 10
_TYPE_BASE: Final = "urn:dialogporten-receiver:problem:"


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


@dataclass(frozen=True)
class Problem(Exception):
    status: int
    slug: str
    title: str
    detail: str
    errors: tuple[FieldError, ...] = ()
    headers: tuple[tuple[str, str], ...] = field(default=())

    @property
    def type(self) -> str:
        return _TYPE_BASE + self.slug

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


def bad_request(slug: str, detail: str, *errors: FieldError) -> Problem:
    return Problem(400, slug, "Bad request", detail, errors)


def invalid_event(detail: str, errors: list[FieldError]) -> Problem:
    return Problem(400, "invalid-cloudevent", "Invalid CloudEvent", detail, tuple(errors))


def forbidden(detail: str, *errors: FieldError) -> Problem:
    return Problem(403, "not-allowed", "Event not allowed", detail, errors)


def method_not_allowed(method: str, allow: str) -> Problem:
    return Problem(
        405,
        "method-not-allowed",
        "Method not allowed",
        f"{method} is not supported here; use {allow}",
        headers=(("Allow", allow),),
    )


def too_large(size: int, limit: int) -> Problem:
    return Problem(413, "too-large", "Request too large", f"The body is {size} bytes; the limit is {limit} bytes")


def too_many_events(count: int, limit: int) -> Problem:
    return Problem(
        413, "too-many-events", "Batch too large", f"The batch has {count} events; the limit is {limit} per request"
    )


def event_too_large(detail: str) -> Problem:
    """The queue service refused a message as too large (HTTP 413): resending the same event cannot help."""
    return Problem(413, "event-too-large", "Event too large", detail)


def unsupported_media_type(detail: str) -> Problem:
    return Problem(415, "unsupported-media-type", "Unsupported media type", detail)


def storage_unavailable(detail: str, retry_after_seconds: int = RETRY_AFTER_SECONDS) -> Problem:
    return Problem(
        503,
        "storage-unavailable",
        "Storage unavailable",
        detail,
        headers=(("Retry-After", str(retry_after_seconds)),),
    )


class HttpProblem(NamedTuple):
    """A problem as an HTTP response, ready for any adapter to send."""

    status: int
    headers: dict[str, str]
    body: bytes


def render(problem: Problem, instance: str | None = None) -> HttpProblem:
    """The one rendering of a problem for every HTTP endpoint of the app.

    ``instance`` is the absolute URL of the request without its query string
    (which may hold the function key): RFC 9457 resolves a relative one against
    the document's base URI, which a log reader does not have.
    """
    return HttpProblem(
        problem.status,
        {"Content-Type": PROBLEM_CONTENT_TYPE_HEADER, **dict(problem.headers)},
        problem.to_json(instance or None).encode("utf-8"),
    )
