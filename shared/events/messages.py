"""What a queue message holds, both ways: pure, no storage imports.

A message is the CloudEvent in structured JSON, every attribute preserved as
received. An event too large for one queue message (64 KiB after base64) is
stored as a blob and the message is a small *claim check* that names the blob
and repeats the attributes the logs need. ``$claimcheck`` cannot collide with
a CloudEvent attribute: attribute names are lowercase a-z and 0-9 only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from shared.errors import MessageError
from shared.events.catalog import CATALOG, UNROUTED_QUEUE

#: Azure Storage queue messages are at most 64 KiB; base64 (as the queue trigger
#: expects) turns every 3 bytes into 4, so 48 KiB of UTF-8 is the most a message holds.
MAX_QUEUE_MESSAGE_BYTES: Final = 64 * 1024
MAX_INLINE_EVENT_BYTES: Final = MAX_QUEUE_MESSAGE_BYTES // 4 * 3
CLAIM_CHECK_CONTAINER: Final = "dialogporten-claimcheck"
CLAIM_CHECK_KEY: Final = "$claimcheck"
#: Attributes copied into a claim check so that logs and the unrouted handler see them.
_SUMMARY_ATTRIBUTES: Final = ("specversion", "id", "type", "source", "time", "subject", "resource", "resourceinstance")


#: The only blob names a claim check may hold: exactly what :func:`claim_check_blob_name`
#: writes, ``<queue>/<uuid4>.json`` for a queue of the app. Nothing else is ever read, so a
#: forged message cannot make the app read another container or walk out of this one.
_CLAIM_CHECK_BLOB: Final = re.compile(
    r"(?P<queue>[a-z0-9-]{3,63})/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.json"
)
_CLAIM_CHECK_QUEUES: Final = frozenset([row.queue for row in CATALOG] + [UNROUTED_QUEUE])


def serialize_event(event: Mapping[str, Any]) -> str:
    """The structured-JSON form stored on the queue (compact; non-ASCII kept as is)."""
    return _ENCODER.encode(event)


#: Built once: ``json.dumps`` with arguments builds a new encoder on every call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


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
    stored = decode_message(fetch_blob(CLAIM_CHECK_CONTAINER, claim_check_blob(reference)))
    if CLAIM_CHECK_KEY in stored:
        raise MessageError("claim check blob holds another claim check")
    return stored


def claim_check_blob(reference: Any) -> str:
    """The blob a claim check names, if it is one the sink could have written; else :class:`MessageError`.

    The container is fixed in code: a reference naming another one is refused, not followed.
    """
    if not isinstance(reference, dict):
        raise MessageError(f"malformed claim check: a JSON {type(reference).__name__}, not an object")
    container = reference.get("container", CLAIM_CHECK_CONTAINER)
    if container != CLAIM_CHECK_CONTAINER:
        raise MessageError(f"claim check names container {container!r}; only {CLAIM_CHECK_CONTAINER!r} is read")
    blob = reference.get("blob")
    if not isinstance(blob, str):
        raise MessageError("malformed claim check: no blob name")
    match = _CLAIM_CHECK_BLOB.fullmatch(blob)
    if match is None or match["queue"] not in _CLAIM_CHECK_QUEUES:
        raise MessageError(f"claim check blob name {blob[:200]!r} is not one the sink writes (<queue>/<uuid>.json)")
    return blob


@dataclass(frozen=True, slots=True)
class Description:
    """What a stored queue body is, as far as it can be read: for the operator's tools and the sweep's logs."""

    readable: bool
    reason: str | None = None
    """Why it cannot be read (``readable`` is False)."""
    event_id: str | None = None
    event_type: str | None = None
    dialog_id: str | None = None
    source: str | None = None
    claim_check: bool = False
    """The body is a claim check: the event itself is in a blob."""

    def ids(self) -> dict[str, str | None]:
        return {"event_id": self.event_id, "event_type": self.event_type, "dialog_id": self.dialog_id}

    @property
    def service(self) -> str | None:
        """The Altinn service the event's source belongs to (:func:`service_of`)."""
        return service_of(self.source, self.event_type)


#: An Altinn 3 app's host: ``{org}.apps.altinn.no`` or ``{org}.apps.tt02.altinn.no``.
_APP_HOST: Final = re.compile(r"(?i)[a-z0-9-]+\.apps\.(?:[a-z0-9-]+\.)?altinn\.no")


def service_of(source: str | None, event_type: str | None = None) -> str | None:
    """Which service published an event, from its ``source`` (and ``type``): for a parked event's listing.

    Sources as the services build them:

    * Dialogporten: ``{base}/dialogporten/api/v1/enduser/dialogs/{id}`` (Dialogporten's docs and
      ``tests/fixtures/events``; its types begin with ``dialogporten.``);
    * Correspondence: ``{CorrespondenceBaseUrl}/correspondence/api/v1/{...}``, types ``no.altinn.correspondence.*``
      (Altinn/altinn-correspondence ``Integrations/Altinn/Events/AltinnEventBus.cs``, ``CreateCloudEvent``);
    * Broker: ``{PlatformGatewayUrl}broker/api/v1/filetransfer``, types ``no.altinn.broker.*``
      (Altinn/altinn-broker ``Integrations/Altinn/Events/AltinnEventBus.cs``, ``CreateCloudEvent``);
    * an app: ``https://{org}.apps.altinn.no/{org}/{app}/instances/{party}/{guid}`` (Altinn/altinn-events, the
      Events API's ``app.instance.created`` examples), named ``app {org}/{app}``.

    Anything else is named by its host; None when there is no source.
    """
    from urllib.parse import urlsplit

    kind = event_type or ""
    if kind.startswith("dialogporten."):
        return "Dialogporten"
    if kind.startswith("no.altinn.correspondence."):
        return "Correspondence"
    if kind.startswith("no.altinn.broker."):
        return "Broker"
    if not source:
        return None
    try:
        parts = urlsplit(source)
    except ValueError:
        return None
    path = parts.path.lower()
    # The docs' example has /dialogporten.no/api/... (tests/fixtures/events/seed-*.json): a typo, still Dialogporten.
    if re.search(r"/dialogporten[/.]", f"{path}/") or (parts.hostname or "").startswith("dialogporten."):
        return "Dialogporten"
    if "/correspondence/api/" in path:
        return "Correspondence"
    if "/broker/api/" in path:
        return "Broker"
    if parts.hostname and _APP_HOST.fullmatch(parts.hostname):
        segments = [s for s in parts.path.split("/") if s]
        return f"app {segments[0]}/{segments[1]}" if len(segments) >= 2 else f"an app on {parts.hostname}"
    return parts.hostname or None


def describe(raw: str | bytes) -> Description:
    """A queue body as stored (base64 of the message, as the queue trigger expects), described; never raises.

    The one reading of a stored body for display: ``dpctl poison``, ``dpctl parked`` and the poison sweep.
    """
    try:
        body = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return Description(False, "not base64-encoded")
    try:
        obj = decode_message(body)
    except MessageError as exc:
        return Description(False, str(exc))

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    return Description(
        True,
        event_id=text(obj.get("id")),
        event_type=text(obj.get("type")),
        dialog_id=text(obj.get("resourceinstance")),
        source=text(obj.get("source")),
        claim_check=CLAIM_CHECK_KEY in obj,
    )


def summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes every log line carries: event id, type and dialog id."""
    return {
        "event_id": obj.get("id"),
        "event_type": obj.get("type"),
        "dialog_id": obj.get("resourceinstance"),
    }
