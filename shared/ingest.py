"""The webhook's pure core: HTTP request in, events on queues, HTTP response out.

parse (structured / batch / binary) -> validate (strict CloudEvents 1.0)
-> classify (validation ping | known type | unknown) -> allow-lists -> route
(catalog) -> enqueue through an :class:`EventSink` -> 2xx only now.

Nothing here imports ``azure.functions`` or a storage SDK: the Functions
adapter (``shared/functions/webhook.py``) and the storage adapter
(``shared/outbox.py``) are passed in, so the tests, the local runner and the
real host all run this very code.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import unquote, urlsplit

from shared import catalog, cloudevent, logs, messages
from shared.cloudevent import CloudEvent
from shared.problems import (
    FieldError,
    Problem,
    bad_request,
    forbidden,
    invalid_event,
    method_not_allowed,
    storage_unavailable,
    too_large,
    unsupported_media_type,
)

#: Altinn sends one event of a few KiB; CloudEvents consumers should take at least
#: 64 KiB. Above 1 MiB a request is refused rather than parked in a blob.
MAX_BODY_BYTES: Final = 1024 * 1024
ALLOW: Final = "POST, OPTIONS"
RETRY_AFTER_SECONDS: Final = 10

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
JSON: Final = "application/json"


class StorageUnavailable(Exception):
    """The sink could not make an event durable; the sender must retry."""


class EventSink(Protocol):
    def put(self, queue: str, body: str, event: CloudEvent) -> None:
        """Make ``body`` durable on ``queue`` or raise :class:`StorageUnavailable`."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Optional allow-lists (app settings); empty means everything is allowed."""

    allowed_resources: frozenset[str] = frozenset()
    allowed_source_hosts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    method: str
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: bytes
    url: str = ""


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Routed:
    event: CloudEvent
    queue: str | None
    outcome: str
    """``accepted`` (catalog type), ``parked`` (unknown type) or ``validated`` (subscription ping)."""


# --------------------------------------------------------------------------- parse


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate member name {dup!r}")
    return obj


def parse_json(raw: bytes, what: str = "body") -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate names. Bad input is a 400, never a 500."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(
            "invalid-utf8", f"The {what} is not valid UTF-8 (byte {exc.start})", FieldError(what, "must be UTF-8")
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise bad_request("empty-body", f"The {what} is empty; expected a CloudEvent", FieldError(what, "required"))
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise bad_request(
            "invalid-json", f"The {what} is nested too deeply", FieldError(what, "JSON nesting too deep")
        ) from None
    except json.JSONDecodeError as exc:
        raise bad_request(
            "invalid-json",
            f"The {what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            FieldError(what, "must be JSON"),
        ) from None
    except ValueError as exc:  # NaN, duplicates, integers over Python's digit limit
        reason = "a number has more than 4300 digits" if "integer string conversion" in str(exc) else str(exc)
        detail = f"The {what} is not acceptable JSON: {reason}"
        raise bad_request("invalid-json", detail, FieldError(what, reason)) from None


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def _is_json_type(media_type: str) -> bool:
    return media_type == JSON or media_type.endswith("+json")


def _check_charset(params: Mapping[str, str], content_type: str) -> None:
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise unsupported_media_type(f"Only UTF-8 is accepted, got charset={charset!r} in {content_type!r}")


def _from_binary(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """HTTP binary mode: attributes in ``ce-`` headers (percent-encoded), the body is the data."""
    obj: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith("ce-") and len(name) > 3:
            obj[name[3:]] = unquote(value, errors="strict")
    content_type = headers.get("content-type")
    if content_type:
        obj["datacontenttype"] = content_type
    if not body:
        return obj
    media_type, params = _media_type(content_type or "")
    if _is_json_type(media_type):
        obj["data"] = parse_json(body, "data")
    elif media_type.startswith("text/") or "charset" in params:
        try:
            obj["data"] = body.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("invalid-utf8", "Text data is not valid UTF-8", FieldError("data", "UTF-8")) from None
    else:
        obj["data_base64"] = base64.b64encode(body).decode("ascii")
    return obj


def parse(request: WebhookRequest) -> tuple[list[Any], bool]:
    """The request's events as parsed JSON (not yet validated), and whether it was a batch."""
    headers = request.headers
    content_type = headers.get("content-type", "")
    media_type, params = _media_type(content_type)
    if media_type not in (STRUCTURED, BATCH) and "ce-specversion" in headers:
        try:
            return [_from_binary(headers, request.body)], False
        except UnicodeDecodeError:
            problem = FieldError("ce-*", "must be percent-encoded UTF-8")
            raise bad_request("invalid-header", "A ce- header is not valid percent-encoded UTF-8", problem) from None
    if not content_type:
        raise unsupported_media_type(
            f"Content-Type is missing; send {JSON} or {STRUCTURED} (one event), {BATCH} (a JSON array), "
            "or binary mode with ce- headers"
        )
    if media_type == BATCH:
        _check_charset(params, content_type)
        batch = parse_json(request.body)
        if not isinstance(batch, list):
            raise bad_request(
                "invalid-batch",
                f"A {BATCH} body must be a JSON array of CloudEvents",
                FieldError("(body)", "must be a JSON array"),
            )
        return batch, True
    if media_type in (STRUCTURED, JSON):
        _check_charset(params, content_type)
        return [parse_json(request.body)], False
    raise unsupported_media_type(
        f"{media_type!r} is not accepted; send {JSON} or {STRUCTURED} (one event), {BATCH} (a JSON array), "
        "or binary mode with ce- headers"
    )


# --------------------------------------------------------------------------- validate, classify, route


def validate_all(objects: list[Any], batch: bool) -> list[CloudEvent]:
    """All or nothing: one invalid member rejects the whole request."""
    errors: list[FieldError] = []
    for index, obj in enumerate(objects):
        errors += cloudevent.validate(obj, prefix=f"[{index}]." if batch else "")
    if errors:
        what = "One or more events in the batch are" if batch else "The event is"
        raise invalid_event(f"{what} not valid CloudEvents 1.0; nothing was accepted", errors)
    return [cloudevent.normalize(obj) for obj in objects]


def classify(event: CloudEvent) -> Routed:
    if event.type == catalog.VALIDATION_TYPE:
        return Routed(event, None, "validated")
    row = catalog.lookup(event.type)
    if row is None:
        return Routed(event, catalog.UNROUTED_QUEUE, "parked")
    return Routed(event, row.queue, "accepted")


def source_host(source: str) -> str | None:
    try:
        host = urlsplit(source).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def refusal(event: CloudEvent, policy: Policy, prefix: str = "") -> FieldError | None:
    """Why an allow-list refuses ``event``, or None.

    The subscription validation ping has no ``resource``: it is held to the
    source-host list only, or no subscription could ever be validated.
    """
    if policy.allowed_source_hosts:
        host = source_host(event.source)
        if host not in policy.allowed_source_hosts:
            return FieldError(prefix + "source", "host is not in ALLOWED_SOURCE_HOSTS", event.source)
    if policy.allowed_resources and event.type != catalog.VALIDATION_TYPE:
        resource = event.get("resource")
        if resource not in policy.allowed_resources:
            return FieldError(prefix + "resource", "not in ALLOWED_RESOURCES", resource)
    return None


def plan(request: WebhookRequest, policy: Policy) -> list[Routed]:
    """Everything short of I/O: what would go where. Raises :class:`Problem` for a bad request."""
    if len(request.body) > MAX_BODY_BYTES:
        raise too_large(len(request.body), MAX_BODY_BYTES)
    objects, batch = parse(request)
    events = validate_all(objects, batch)
    refusals = [
        err
        for index, event in enumerate(events)
        if (err := refusal(event, policy, f"[{index}]." if batch else "")) is not None
    ]
    if refusals:
        raise forbidden("Refused by the receiver's allow-lists; nothing was accepted", *refusals)
    return [classify(event) for event in events]


# --------------------------------------------------------------------------- the whole request


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> WebhookResponse:
    return WebhookResponse(
        status,
        json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def problem_response(problem: Problem, instance: str = "") -> WebhookResponse:
    return WebhookResponse(
        problem.status,
        problem.to_json(instance or None).encode("utf-8"),
        {"Content-Type": "application/problem+json; charset=utf-8", **dict(problem.headers)},
    )


def _peek(body: bytes) -> dict[str, Any]:
    """Best-effort ids of a refused request, for its log line only."""
    try:
        obj = json.loads(body) if len(body) <= MAX_BODY_BYTES else None
    except (ValueError, RecursionError):
        return {}
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        obj = obj[0]
    if not isinstance(obj, dict):
        return {}
    return {k: v for k, v in messages.summary(obj).items() if isinstance(v, str)}


def options(request: WebhookRequest) -> WebhookResponse:
    """CloudEvents webhook abuse protection (HTTP 1.1 Web Hooks for Event Delivery, section 4)."""
    headers = {"Allow": ALLOW}
    origin = request.headers.get("webhook-request-origin")
    if origin:
        headers["WebHook-Allowed-Origin"] = origin
        headers["WebHook-Allowed-Rate"] = "*"
    return WebhookResponse(200, b"", headers)


def handle(request: WebhookRequest, sink: EventSink, policy: Policy) -> WebhookResponse:
    method = request.method.upper()
    if method == "OPTIONS":
        return options(request)
    if method != "POST":
        return problem_response(method_not_allowed(method, ALLOW), request.url)
    try:
        routed = plan(request, policy)
    except Problem as problem:
        logs.log_event(
            logs.INGEST, "rejected", logging.WARNING, status=problem.status, reason=problem.detail,
            errors=[e.as_dict() for e in problem.errors[:20]],
            **_peek(request.body),
        )  # fmt: skip
        return problem_response(problem, request.url)

    results = []
    for item in routed:
        event = item.event
        ids = {"event_id": event.id, "event_type": event.type, "dialog_id": event.get("resourceinstance")}
        if item.queue is not None:
            try:
                sink.put(item.queue, messages.serialize_event(event.attributes), event)
            except StorageUnavailable as exc:
                logs.log_event(logs.INGEST, "failed", logging.ERROR, queue=item.queue, reason=str(exc), **ids)
                return problem_response(
                    storage_unavailable(
                        f"Could not store event {event.id!r}; retry later (events before it may arrive twice)",
                        RETRY_AFTER_SECONDS,
                    ),
                    request.url,
                )
        level = logging.WARNING if item.outcome == "parked" else logging.INFO
        logs.log_event(logs.INGEST, item.outcome, level, queue=item.queue, source=event.source, **ids)
        results.append({"id": event.id, "type": event.type, "queue": item.queue, "outcome": item.outcome})
    return _json_response(200, {"accepted": len(results), "events": results})
