"""What a queue message holds, both ways: pure, no storage imports.

A message is the CloudEvent in structured JSON, every attribute preserved as
received. An event too large for one queue message (64 KiB after base64) is
stored as a blob and the message is a small *claim check* that names the blob
and repeats the attributes the logs need. ``$claimcheck`` cannot collide with
a CloudEvent attribute: attribute names are lowercase a-z and 0-9 only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

#: Azure Storage queue messages are at most 64 KiB; base64 (as the queue trigger
#: expects) turns every 3 bytes into 4, so 48 KiB of UTF-8 is the most a message holds.
MAX_QUEUE_MESSAGE_BYTES: Final = 64 * 1024
MAX_INLINE_EVENT_BYTES: Final = MAX_QUEUE_MESSAGE_BYTES // 4 * 3
CLAIM_CHECK_CONTAINER: Final = "dialogporten-claimcheck"
CLAIM_CHECK_KEY: Final = "$claimcheck"
#: Attributes copied into a claim check so that logs and the unrouted handler see them.
_SUMMARY_ATTRIBUTES: Final = ("specversion", "id", "type", "source", "time", "subject", "resource", "resourceinstance")


class MessageError(ValueError):
    """A queue message that can never be processed (not JSON, not an object, broken claim check)."""


def serialize_event(event: Mapping[str, Any]) -> str:
    """The structured-JSON form stored on the queue (compact; non-ASCII kept as is)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def fits_inline(body: str) -> bool:
    return len(body.encode("utf-8")) <= MAX_INLINE_EVENT_BYTES


def claim_check_blob_name(queue: str) -> str:
    # A fresh name per upload: the same event id can arrive twice (retries) and
    # each accepted copy must keep its own blob until its message is handled.
    return f"{queue}/{uuid.uuid4()}.json"


def claim_check_message(event: Mapping[str, Any], blob_name: str, size: int) -> str:
    reference: dict[str, Any] = {k: event[k] for k in _SUMMARY_ATTRIBUTES if k in event}
    reference[CLAIM_CHECK_KEY] = {"container": CLAIM_CHECK_CONTAINER, "blob": blob_name, "bytes": size}
    return serialize_event(reference)


def decode_message(body: str | bytes, fetch_blob: Callable[[str, str], bytes] | None = None) -> dict[str, Any]:
    """Turn a queue message body (already base64-decoded by the host) into the event object.

    Claim checks are resolved through ``fetch_blob(container, name)``; without
    it they are returned as they are (the logs only need the summary).
    Raises :class:`MessageError` for a body that can never be processed.
    """
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MessageError(f"message body is not UTF-8: {exc}") from None
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise MessageError(f"message body is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MessageError(f"message body is a JSON {type(obj).__name__}, not an object")
    return obj if fetch_blob is None else resolve_claim_check(obj, fetch_blob)


def resolve_claim_check(obj: dict[str, Any], fetch_blob: Callable[[str, str], bytes]) -> dict[str, Any]:
    """``obj`` itself, or the event its claim check names, read through ``fetch_blob(container, name)``."""
    reference = obj.get(CLAIM_CHECK_KEY)
    if reference is None:
        return obj
    if not isinstance(reference, dict) or not isinstance(reference.get("blob"), str):
        raise MessageError(f"malformed claim check: {reference!r}")
    container = reference.get("container", CLAIM_CHECK_CONTAINER)
    if not isinstance(container, str):
        raise MessageError(f"malformed claim check container: {container!r}")
    stored = decode_message(fetch_blob(container, reference["blob"]))
    if CLAIM_CHECK_KEY in stored:
        raise MessageError("claim check blob holds another claim check")
    return stored


def summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes every log line carries: event id, type and dialog id."""
    return {
        "event_id": obj.get("id"),
        "event_type": obj.get("type"),
        "dialog_id": obj.get("resourceinstance"),
    }
