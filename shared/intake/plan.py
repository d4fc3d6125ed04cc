"""The webhook's plan: HTTP request in, events on queues, HTTP response out.

parse (:mod:`shared.intake.binding`, with the strict JSON of :mod:`shared.events.jsonformat`)
-> validate (strict CloudEvents 1.0) -> classify (validation ping | known type |
unknown) -> allow-lists -> route (catalog) -> enqueue through an
:class:`EventSink` -> 2xx only now.

The HTTP binding and the JSON format are seams of their own, as in the
CloudEvents SDK; this module keeps the steps and their order. Nothing here
imports ``azure.functions`` or a storage SDK: the Functions adapter
(``shared/functions/webhook.py``) and the storage adapter (``shared/stores/sink.py``)
are passed in, so the tests, the local runner and the real host all run this
very code.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import unquote, urlsplit

from shared import logs
from shared.errors import EventTooLarge, StorageUnavailable
from shared.events import catalog, cloudevent, messages, rfc3339
from shared.events.cloudevent import CloudEvent
from shared.intake import binding
from shared.intake.binding import BATCH, JSON, MAX_BATCH_EVENTS, STRUCTURED, WebhookRequest, WebhookResponse, parse
from shared.intake.problems import (
    FieldError,
    Problem,
    bad_request,
    clip,
    event_too_large,
    forbidden,
    invalid_event,
    method_not_allowed,
    render,
    storage_unavailable,
    too_large,
)

if TYPE_CHECKING:
    from pydantic import ValidationError

    from shared.settings import Settings

__all__ = [
    # The binding's and the format's names, for the callers that import them from here.
    "BATCH",
    "JSON",
    "MAX_BATCH_EVENTS",
    "MAX_BODY_BYTES",
    "SEND_CONCURRENCY",
    "STRUCTURED",
    "EventOutcome",
    "EventSink",
    "EventTooLarge",
    "Policy",
    "Routed",
    "StorageUnavailable",
    "WebhookRequest",
    "WebhookResponse",
    "accept",
    "classify",
    "handle",
    "options",
    "parse",
    "plan",
    "problem_response",
    "route_all",
    "send_all",
    "serialize_all",
    "validate_all",
    "verdict",
]

#: Altinn sends one event of a few KiB; CloudEvents consumers should take at least
#: 64 KiB. Above 1 MiB a request is refused rather than parked in a blob.
MAX_BODY_BYTES: Final = 1024 * 1024
#: At most this many sends in flight per request; below the storage SDK's
#: connection pool (10 per host), so no connection is opened and thrown away.
SEND_CONCURRENCY: Final = 8
#: No send of a request starts after this many seconds: a slow account answers 503
#: (retried) well before Altinn's 45 s timeout instead of running past it.
SEND_BUDGET_SECONDS: Final = 20.0
DEFAULT_MAX_CLOCK_SKEW_SECONDS: Final = 300
ALLOW: Final = "POST, OPTIONS"


class EventSink(Protocol):
    def put(self, queue: str, body: str, event: CloudEvent) -> None:
        """Make ``body`` durable on ``queue``, or raise :class:`StorageUnavailable` or :class:`EventTooLarge`.

        Called from several threads at once for the members of a batch.
        """


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Policy:
    """Optional allow-lists (app settings; empty means everything is allowed) and the clock-skew bound."""

    allowed_resources: frozenset[str] = frozenset()
    allowed_source_hosts: frozenset[str] = frozenset()
    max_clock_skew: timedelta = timedelta(seconds=DEFAULT_MAX_CLOCK_SKEW_SECONDS)
    """An event whose ``time`` is further ahead of ``clock()`` than this is refused."""
    clock: Callable[[], datetime] = _utc_now

    @classmethod
    def from_settings(cls, cfg: Settings) -> Policy:
        """The one way to build the intake's policy from the app's settings (webhook, catch-up, ``dpctl``)."""
        return cls(
            cfg.intake.allowed_resources,
            cfg.intake.allowed_source_hosts,
            max_clock_skew=timedelta(seconds=cfg.intake.max_clock_skew_seconds),
        )


@dataclass(frozen=True, slots=True)
class Routed:
    event: CloudEvent
    queue: str | None
    outcome: str
    """``accepted`` (catalog type), ``parked`` (unknown type) or ``validated`` (subscription ping)."""


# --------------------------------------------------------------------------- validate, classify, route


def too_far_ahead(obj: Mapping[str, Any], policy: Policy, prefix: str = "") -> FieldError | None:
    """A ``time`` further ahead of the receiver's clock than the policy allows.

    One such event would win every "latest event" comparison of its dialog for good.
    """
    raw = obj.get("time")
    if not isinstance(raw, str):
        return None
    moment = rfc3339.parse(raw).utc  # already validated
    limit = policy.clock() + policy.max_clock_skew
    if moment <= limit:
        return None
    skew = int(policy.max_clock_skew.total_seconds())
    return FieldError(
        prefix + "time", f"is more than {skew} s ahead of the receiver's clock (MAX_CLOCK_SKEW_SECONDS)", raw
    )


def model_errors(obj: Mapping[str, Any], prefix: str = "") -> list[FieldError]:
    """Why an event of a catalog type can never be processed by its typed model; empty when it can.

    The models are lenient (unknown attributes and ``data`` fields are kept), so
    this refuses only what would otherwise be poisoned at once after a 200.
    """
    event_type = obj.get("type")
    if not isinstance(event_type, str) or catalog.lookup(event_type) is None:
        return []
    events, validation_error = _models()
    model = events.model_for(event_type)
    if model is None:
        return []
    try:
        model.model_validate(obj)
    except validation_error as exc:
        return [
            FieldError(
                prefix + (".".join(str(part) for part in err["loc"]) or "(event)"),
                clip(err["msg"]),  # a validator's message may quote the value
                None if err["type"] == "missing" else err.get("input"),
            )
            for err in exc.errors(include_url=False)
        ]
    return []


@lru_cache(maxsize=1)
def _models() -> tuple[Any, type[ValidationError]]:
    """The typed models and pydantic's ValidationError, imported on the first catalog event, not at indexing
    (pydantic is heavy for a cold start), and looked up once rather than on every event."""
    from pydantic import ValidationError

    from shared.events import models

    return models, ValidationError


def verdict(obj: Any, policy: Policy, prefix: str = "") -> tuple[list[FieldError], str | None]:
    """Why one event cannot be accepted (its errors and the rule they break), or ``([], None)``.

    CloudEvents 1.0 first; then, for a valid event, its ``time`` against the clock and,
    for a catalog type, its typed model.
    """
    found = cloudevent.validate(obj, prefix=prefix)
    if found:
        return found, "not valid CloudEvents 1.0"
    if (ahead := too_far_ahead(obj, policy, prefix)) is not None:
        return [ahead], "dated in the future"
    if found := model_errors(obj, prefix):
        if "data_base64" in obj and "data" not in obj:
            return [*found, _binary_data_error(obj, prefix)], _binary_data_rule(obj)
        return found, "not processable as its type (see errors)"
    return [], None


def _binary_data_rule(obj: Mapping[str, Any]) -> str:
    """Why a catalog event whose data came as ``data_base64`` was refused, and what to do about it.

    In binary mode the body is the data, and a Content-Type that is not JSON makes it ``data_base64``
    (CloudEvents HTTP binding 3.1.1); ``curl -d`` and urllib send ``application/x-www-form-urlencoded``
    unless told otherwise, and the typed model then finds no ``data``.
    """
    content_type = obj.get("datacontenttype")
    shown = repr(clip(content_type, 80)) if isinstance(content_type, str) else "none"
    return (
        f"not processable as its type: its data arrived as data_base64, since the Content-Type ({shown}) is not "
        "JSON; send the body with Content-Type: application/json (curl -d and urllib send "
        "application/x-www-form-urlencoded unless told otherwise)"
    )


def _binary_data_error(obj: Mapping[str, Any], prefix: str) -> FieldError:
    content_type = obj.get("datacontenttype")
    return FieldError(
        prefix + "datacontenttype",
        "is not JSON, so the body became data_base64 and the model has no data: send Content-Type: application/json",
        content_type if isinstance(content_type, str) else None,
    )


def validate_all(objects: list[Any], batch: bool, policy: Policy | None = None) -> list[CloudEvent]:
    """All or nothing: one invalid member rejects the whole request (see :func:`verdict`)."""
    policy = policy or Policy()
    errors: list[FieldError] = []
    rules: set[str] = set()
    for index, obj in enumerate(objects):
        found, rule = verdict(obj, policy, f"[{index}]." if batch else "")
        if rule is not None:
            rules.add(rule)
            errors += found
    if errors:
        what = "One or more events in the batch are" if batch else "The event is"
        raise invalid_event(f"{what} {' or '.join(sorted(rules))}; nothing was accepted", errors)
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


def route_all(objects: list[Any], batch: bool, policy: Policy) -> list[Routed]:
    """All or nothing: validated, allowed and routed, or a :class:`Problem` for the whole request."""
    events = validate_all(objects, batch, policy)
    refusals = [
        err
        for index, event in enumerate(events)
        if (err := refusal(event, policy, f"[{index}]." if batch else "")) is not None
    ]
    if refusals:
        raise forbidden("Refused by the receiver's allow-lists; nothing was accepted", *refusals)
    return [classify(event) for event in events]


def _objects(request: WebhookRequest) -> tuple[list[Any], bool]:
    """The request's events as parsed JSON, and whether it was a batch; a body over the limit is refused unread."""
    if len(request.body) > MAX_BODY_BYTES:
        raise too_large(len(request.body), MAX_BODY_BYTES)
    return parse(request)


def plan(request: WebhookRequest, policy: Policy) -> list[Routed]:
    """Everything short of I/O: what would go where. Raises :class:`Problem` for a bad request."""
    return route_all(*_objects(request), policy)


# --------------------------------------------------------------------------- the intake's core


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What became of one event: ``accepted``, ``parked`` or ``validated``; ``rejected`` or ``failed`` with why."""

    outcome: logs.Outcome
    event_id: str | None
    event_type: str | None
    queue: str | None = None
    problem: Problem | None = None
    """Why it was rejected (the sender's fault) or failed (storage: retry later), as the webhook answers it;
    a ``failed`` event without a problem was not sent, because an earlier one of the request could not be
    stored."""
    reason: str | None = None
    """What storage said, for a ``failed`` or too-large event (the problem's detail says it for the sender)."""

    @property
    def durable(self) -> bool:
        """On its queue (accepted, parked), or needing no queue (the validation ping)."""
        return self.outcome in {logs.Outcome.ACCEPTED, logs.Outcome.PARKED, logs.Outcome.VALIDATED}


def accept(
    objects: Sequence[Any],
    sink: EventSink,
    policy: Policy,
    *,
    all_or_nothing: bool = False,
    batch: bool = False,
    send_budget: float | None = None,
) -> list[EventOutcome]:
    """Validate, allow, route and make durable: one outcome per event, in order.

    The intake's core, for the webhook and for catch-up:

    - ``all_or_nothing`` (the webhook): one event that cannot be accepted refuses them all
      (a :class:`Problem` is raised before any send), and after the first failed send no
      further send starts;
    - otherwise (catch-up, each event as Altinn would have pushed it alone): a refused event
      is ``rejected`` with its problem and the others go on; sending stops only when storage
      fails, and the events not sent then are ``failed`` too.

    Sends run :data:`SEND_CONCURRENCY` at a time; none starts ``send_budget`` seconds after the first.
    """
    outcomes: list[EventOutcome | None] = [None] * len(objects)
    jobs: list[tuple[int, Job]] = []
    if all_or_nothing:
        routed = route_all(list(objects), batch, policy)
        jobs = serialize_all(routed)
        for index, item in enumerate(routed):
            if item.queue is None:
                outcomes[index] = _done(item)
    else:
        for index, obj in enumerate(objects):
            try:
                item = _route_one(obj, policy)
                job = _serialize(item, "(event)") if item.queue is not None else None
            except Problem as problem:
                logs.log_event(logs.INGEST, logs.Outcome.REJECTED, logging.WARNING, status=problem.status,
                               reason=problem.detail, errors=[e.as_dict() for e in problem.errors[:20]],
                               **_peek_object(obj))  # fmt: skip
                outcomes[index] = EventOutcome(logs.Outcome.REJECTED, *_peek_ids(obj), problem=problem)
                continue
            if job is None:
                outcomes[index] = _done(item)
            else:
                jobs.append((index, job))
    for index, result in zip(
        [index for index, _ in jobs],
        send_all([job for _, job in jobs], sink, stop_on_any=all_or_nothing, budget=send_budget),
        strict=True,
    ):
        outcomes[index] = result
    return [outcome for outcome in outcomes if outcome is not None]


def _route_one(obj: Any, policy: Policy) -> Routed:
    errors, rule = verdict(obj, policy)
    if rule is not None:
        raise invalid_event(f"The event is {rule}", errors)
    event = cloudevent.normalize(obj)
    refused = refusal(event, policy)
    if refused is not None:
        raise forbidden("Refused by the receiver's allow-lists", refused)
    return classify(event)


def _done(item: Routed) -> EventOutcome:
    """An event that needs no queue (the subscription validation ping): logged and answered."""
    event = item.event
    logs.log_event(logs.INGEST, item.outcome, logging.INFO, source=event.source, **_ids(event))
    return EventOutcome(logs.Outcome(item.outcome), event.id, event.type, item.queue)


def _peek_ids(obj: Any) -> tuple[str | None, str | None]:
    if not isinstance(obj, dict):
        return None, None
    event_id, event_type = obj.get("id"), obj.get("type")
    return (
        clip(event_id) if isinstance(event_id, str) else None,
        clip(event_type) if isinstance(event_type, str) else None,
    )


# --------------------------------------------------------------------------- the whole request


#: Built once: ``json.dumps`` with arguments builds a new encoder on every call.
_RESPONSE_JSON: Final = json.JSONEncoder(ensure_ascii=False)


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> WebhookResponse:
    return WebhookResponse(
        status,
        _RESPONSE_JSON.encode(payload).encode("utf-8"),
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def problem_response(problem: Problem, instance: str = "") -> WebhookResponse:
    status, headers, body = render(problem, instance)
    return WebhookResponse(status, body, headers)


def _peek_object(obj: Any) -> dict[str, Any]:
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        obj = obj[0]
    if not isinstance(obj, dict):
        return {}
    return {k: clip(v) for k, v in messages.summary(obj).items() if isinstance(v, str)}


def _peek(body: bytes) -> dict[str, Any]:
    """Best-effort ids of a refused request, for its log line only."""
    try:
        obj = json.loads(body) if len(body) <= MAX_BODY_BYTES else None
    except (ValueError, RecursionError):
        return {}
    return _peek_object(obj)


def _peek_request(request: WebhookRequest) -> dict[str, Any]:
    """Best-effort ids of a refused request: from the ``ce-`` headers in binary mode, else from the body."""
    headers = request.headers
    if not binding.is_binary(headers, binding.media_type_of(headers)):
        return _peek(request.body)
    ids = {
        "event_id": headers.get("ce-id"),
        "event_type": headers.get("ce-type"),
        "dialog_id": headers.get("ce-resourceinstance"),
    }
    return {name: clip(unquote(value, errors="replace")) for name, value in ids.items() if value is not None}


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
        objects, batch = _objects(request)
        outcomes = accept(objects, sink, policy, all_or_nothing=True, batch=batch, send_budget=SEND_BUDGET_SECONDS)
    except Problem as problem:
        logs.log_event(
            logs.INGEST, logs.Outcome.REJECTED, logging.WARNING, status=problem.status, reason=problem.detail,
            errors=[e.as_dict() for e in problem.errors[:20]],
            **_peek_request(request),
        )  # fmt: skip
        return problem_response(problem, request.url)
    failure = _answer_for(outcomes)
    if failure is not None:
        return problem_response(failure, request.url)
    results = [{"id": o.event_id, "type": o.event_type, "queue": o.queue, "outcome": str(o.outcome)} for o in outcomes]
    return _json_response(200, {"accepted": len(results), "events": results})


def _answer_for(outcomes: list[EventOutcome]) -> Problem | None:
    """The problem to answer when any event was not made durable: a storage outage wins over a too-large event.

    The sender's retry may then succeed for the others.
    """
    failed = [o.problem for o in outcomes if not o.durable and o.problem is not None]
    if not failed:
        return None
    unavailable = [problem for problem in failed if problem.status >= 500]
    return (unavailable or failed)[0]


# --------------------------------------------------------------------------- send


@dataclass(frozen=True, slots=True)
class Job:
    """One event ready to send: its queue and its message body, already serialised."""

    routed: Routed
    queue: str
    body: str


def _ids(event: CloudEvent) -> dict[str, Any]:
    return {"event_id": event.id, "event_type": event.type, "dialog_id": event.get("resourceinstance")}


def _serialize(item: Routed, where: str) -> Job:
    """The event's queue message; a 400 :class:`Problem` if JSON cannot carry it, a 413 if it cannot fit."""
    assert item.queue is not None  # noqa: S101 - only routed events are serialised
    try:
        body = messages.serialize_event(item.event.attributes)
        size = len(body.encode("utf-8"))
    except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
        raise bad_request(
            "unstorable-event", f"Event {where} cannot be stored as JSON: {clip(str(exc), 100)}",
            FieldError(where, "must be representable as UTF-8 JSON"),
        ) from None  # fmt: skip
    if size > messages.MAX_INLINE_EVENT_BYTES:
        reference = messages.claim_check_message(
            item.event.attributes, messages.claim_check_blob_name(item.queue), size
        )
        if not messages.fits_inline(reference):
            raise event_too_large(f"The attributes of event {where} are too large for a queue message")
    return Job(item, item.queue, body)


def serialize_all(routed: list[Routed]) -> list[tuple[int, Job]]:
    """Every member's message, with its place in ``routed``, before the first send: a member that cannot be
    stored refuses the whole request.

    Raises a 400 :class:`Problem` for a member JSON cannot carry, and a 413 for one
    whose claim check would not fit a queue message.
    """
    return [
        (index, _serialize(item, f"[{index}]" if len(routed) > 1 else "(event)"))
        for index, item in enumerate(routed)
        if item.queue is not None
    ]


def send_all(
    jobs: list[Job], sink: EventSink, *, stop_on_any: bool = True, budget: float | None = SEND_BUDGET_SECONDS
) -> list[EventOutcome]:
    """Send every job, SEND_CONCURRENCY at a time; one outcome per job, in order.

    No send starts after a storage failure (nor, with ``stop_on_any``, after a too-large
    event), nor ``budget`` seconds after the first: those are ``failed``, not sent.
    """
    if not jobs:
        return []
    started = time.monotonic()
    stop = threading.Event() if len(jobs) > 1 else _NeverSet()

    def send(job: Job) -> EventOutcome:
        event = job.routed.event
        if stop.is_set():  # not sent: an earlier event of the request could not be stored
            return EventOutcome(logs.Outcome.FAILED, event.id, event.type, job.queue)
        if budget is not None and time.monotonic() - started > budget:
            stop.set()
            exc: Exception = StorageUnavailable(f"not sent: storage took over {budget:.0f} s for this request")
        else:
            try:
                sink.put(job.queue, job.body, event)
            except (StorageUnavailable, EventTooLarge) as caught:
                exc = caught
            else:
                level = logging.WARNING if job.routed.outcome == "parked" else logging.INFO
                logs.log_event(logs.INGEST, job.routed.outcome, level, queue=job.queue, source=event.source,
                               **_ids(event))  # fmt: skip
                return EventOutcome(logs.Outcome(job.routed.outcome), event.id, event.type, job.queue)
        if stop_on_any or isinstance(exc, StorageUnavailable):
            stop.set()
        return _failed(job, exc)

    if len(jobs) == 1:
        return [send(jobs[0])]
    with ThreadPoolExecutor(max_workers=min(SEND_CONCURRENCY, len(jobs)), thread_name_prefix="ingest-send") as pool:
        return list(pool.map(send, jobs))


class _NeverSet:
    """A stop flag for a request of one event: nothing is sent after its only send (no lock needed)."""

    def is_set(self) -> bool:
        return False

    def set(self) -> None:
        return None


def _failed(job: Job, exc: Exception) -> EventOutcome:
    event = job.routed.event
    event_id = clip(event.id, 80)
    if isinstance(exc, EventTooLarge):  # the sender's fault: answered 413, like any other refusal
        logs.log_event(logs.INGEST, logs.Outcome.REJECTED, logging.WARNING, status=413, queue=job.queue,
                       reason=clip(str(exc)), **_ids(event))  # fmt: skip
        problem = event_too_large(f"Storage refused event {event_id!r} as too large: {clip(str(exc), 100)}")
        return EventOutcome(logs.Outcome.REJECTED, event.id, event.type, job.queue, problem, clip(str(exc)))
    logs.log_event(logs.INGEST, logs.Outcome.FAILED, logging.ERROR, queue=job.queue, reason=clip(str(exc)),
                   **_ids(event))  # fmt: skip
    problem = storage_unavailable(
        f"Could not store event {event_id!r}; retry later (other events of the request may arrive twice)"
    )
    return EventOutcome(logs.Outcome.FAILED, event.id, event.type, job.queue, problem, clip(str(exc)))
