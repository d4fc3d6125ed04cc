"""The HTTP binding: an HTTP request to CloudEvents as parsed JSON, in every content mode.

Structured (``application/cloudevents+json`` or ``application/json``: one
event), batched (``application/cloudevents-batch+json``: a JSON array) and
binary (attributes in percent-encoded ``ce-`` headers, the body is the data),
as the CloudEvents HTTP protocol binding 1.0 defines them. The objects are not
validated here: that is the plan's first step (:mod:`shared.intake.plan`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

from shared.errors import InvalidJson
from shared.events import jsonformat
from shared.intake.problems import FieldError, Problem, bad_request, clip, too_many_events, unsupported_media_type

__all__ = [
    "BATCH",
    "JSON",
    "MAX_BATCH_EVENTS",
    "STRUCTURED",
    "WebhookRequest",
    "WebhookResponse",
    "parse",
]

#: Altinn sends one event per request; a batch is for other senders. Its members are
#: sent SEND_CONCURRENCY (:mod:`shared.intake.plan`) at a time, so 100 take a few hundred
#: milliseconds on a healthy account: far inside Altinn's 45 s request timeout.
MAX_BATCH_EVENTS: Final = 100

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
JSON: Final = "application/json"


def parse_json(raw: bytes, what: str = "body") -> Any:
    """The strict JSON format (:mod:`shared.events.jsonformat`); what it refuses is a 400."""
    try:
        return jsonformat.parse_json(raw, what)
    except InvalidJson as exc:
        raise bad_request(exc.slug, exc.detail, exc.error) from None


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


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def media_type_of(headers: Mapping[str, str]) -> str:
    """The request's media type, lowercase, without parameters ("" when there is no Content-Type)."""
    return _media_type(headers.get("content-type", ""))[0]


def is_binary(headers: Mapping[str, str], media_type: str) -> bool:
    """Binary mode: ``ce-`` headers, and a body that is neither a structured event nor a batch."""
    return "ce-specversion" in headers and media_type not in (STRUCTURED, BATCH)


def _is_json_type(media_type: str) -> bool:
    return media_type == JSON or media_type.endswith("+json")


def _check_charset(params: Mapping[str, str], content_type: str) -> None:
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise unsupported_media_type(f"Only UTF-8 is accepted, got charset={clip(charset, 40)!r}")


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
    if not content_type:
        # Without a Content-Type the event has no datacontenttype, and the JSON event
        # format reads that as application/json: a body that is JSON is JSON data.
        # (The Python CloudEvents SDK sends no Content-Type when datacontenttype is unset.)
        try:
            obj["data"] = parse_json(body, "data")
        except Problem:
            obj["data_base64"] = base64.b64encode(body).decode("ascii")
        return obj
    media_type, params = _media_type(content_type)
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
    if is_binary(headers, media_type):
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
        if len(batch) > MAX_BATCH_EVENTS:
            raise too_many_events(len(batch), MAX_BATCH_EVENTS)
        return batch, True
    if media_type in (STRUCTURED, JSON):
        _check_charset(params, content_type)
        return [parse_json(request.body)], False
    raise unsupported_media_type(
        f"{clip(media_type, 100)!r} is not accepted; send {JSON} or {STRUCTURED} (one event), {BATCH} (a JSON array), "
        "or binary mode with ce- headers"
    )
