"""Errors as values at the edge: RFC 9457 problem details.

Every refusal of the webhook is a :class:`~shared.errors.Problem` (defined with every other exception in
:mod:`shared.errors`) with one precise status; this module builds them and renders them.
A 4xx says "your request was wrong, do not retry as is"; a 5xx says "our
fault or storage down: retry".
"""

from __future__ import annotations

from typing import Final, NamedTuple

from shared.errors import ECHO_LIMIT, FieldError, Problem, clip

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
#: The bodies are UTF-8 (a sender's value is echoed as is); said, not left to the client to guess.
PROBLEM_CONTENT_TYPE_HEADER: Final = PROBLEM_CONTENT_TYPE + "; charset=utf-8"
#: Seconds a client is asked to wait after a 503 before retrying: one figure for every endpoint.
RETRY_AFTER_SECONDS: Final = 10

__all__ = [
    "ECHO_LIMIT",
    "PROBLEM_CONTENT_TYPE",
    "RETRY_AFTER_SECONDS",
    "FieldError",
    "HttpProblem",
    "Problem",
    "bad_request",
    "clip",
    "event_too_large",
    "forbidden",
    "invalid_event",
    "method_not_allowed",
    "render",
    "storage_unavailable",
    "too_large",
    "too_many_events",
    "unsupported_media_type",
]


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
