"""Typed Dialogporten events: one pydantic model per catalog type.

Every model is the CloudEvent envelope plus what a handler needs without
string surgery: :attr:`DialogportenEvent.dialog_id` (from ``resourceinstance``),
:attr:`~DialogportenEvent.party` (``subject``),
:attr:`~DialogportenEvent.service_resource` (``resource`` without its URN
prefix), and per family :attr:`ActivityEvent.activity_id` or
:attr:`TransmissionEvent.transmission_id` (from ``data``, else the end of
``source``). ``data`` is typed per family.

Unknown attributes and unknown ``data`` fields are kept (``extra="allow"``):
Dialogporten adds fields over time and an event must never lose them.

``time`` comes from .NET with 7 fractional digits (``...32.4136593Z``), one
more than :class:`datetime.datetime` holds. :attr:`~DialogportenEvent.time` is
the datetime (microseconds), and :attr:`~DialogportenEvent.time_key` is the
full-precision UTC instant as a fixed-width string that sorts in time order:
use it when ordering events.

:func:`parse_event` picks the model by ``type`` through the catalog and raises
:class:`EventError` for an event that can never match it.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from shared.errors import EventError
from shared.events import rfc3339
from shared.events.catalog import CATALOG, EventType, Family

__all__ = [
    "MODELS",
    "RESOURCE_PREFIX",
    "ActivityClosed",
    "ActivityCorrespondenceConfirmed",
    "ActivityCorrespondenceOpened",
    "ActivityCreated",
    "ActivityData",
    "ActivityDialogDeleted",
    "ActivityDialogOpened",
    "ActivityDialogRestored",
    "ActivityEvent",
    "ActivityFormSaved",
    "ActivityFormSubmitted",
    "ActivityInformation",
    "ActivityPaymentMade",
    "ActivitySentToFormFill",
    "ActivitySentToPayment",
    "ActivitySentToSendIn",
    "ActivitySentToSigning",
    "ActivitySignatureProvided",
    "ActivityTransmissionOpened",
    "DialogCreated",
    "DialogData",
    "DialogDeleted",
    "DialogEvent",
    "DialogRestored",
    "DialogSeen",
    "DialogUpdated",
    "DialogportenEvent",
    "EventError",
    "TransmissionCreated",
    "TransmissionData",
    "TransmissionEvent",
    "UnknownEvent",
    "mismatches",
    "model_for",
    "parse_event",
    "parse_time",
    "parse_unknown",
    "time_key",
]

RESOURCE_PREFIX: Final = "urn:altinn:resource:"


def parse_time(value: str) -> datetime:
    """RFC 3339 with any number of fractional digits -> aware UTC datetime (truncated to microseconds).

    The same parser as the webhook's validation (:mod:`shared.events.rfc3339`), leap second included.
    """
    return rfc3339.parse(value).utc


def time_key(value: str) -> str:
    """Full-precision, fixed-width UTC form (``2026-03-16T11:43:32.4136593Z``): sorts as time does."""
    return rfc3339.parse(value).key


def _guid(value: str, what: str) -> str:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"{what} must be a GUID, got {value!r}") from None
    return value


def _source_id(source: str, segment: str) -> str | None:
    """The id after ``/{segment}/`` at the end of ``source``, if it is there."""
    parts = source.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == segment and parts[-1]:
        return parts[-1]
    return None


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)


class DialogData(_Open):
    """``data`` of dialog events: both fields optional, unknown fields kept."""

    process: str | None = None
    preceding_process: str | None = Field(default=None, alias="precedingProcess")


class TransmissionData(DialogData):
    """``data`` of ``dialog.transmission.created.v1``: ``ServiceOwner`` or ``PartyRepresentative``."""

    sender_type: str | None = Field(default=None, alias="senderType")


class ActivityData(DialogData):
    """``data`` of activity events: ``activityId`` is always there."""

    activity_id: str = Field(alias="activityId", min_length=1)
    extended_activity_type: str | None = Field(default=None, alias="extendedActivityType")


class DialogportenEvent(_Open):
    """The envelope every Dialogporten event has (the CloudEvent attributes)."""

    family: ClassVar[Family | None] = None

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    type: str
    time: datetime
    source: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    resource: str = Field(min_length=1)
    resourceinstance: str

    _time_raw: str = PrivateAttr(default="")

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw_time(cls, value: Any, handler: Any) -> Any:
        model = handler(value)
        raw = value.get("time") if isinstance(value, dict) else None
        model._time_raw = raw if isinstance(raw, str) else model.time.isoformat().replace("+00:00", "Z")
        return model

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_time(value)
        return value

    @field_validator("resourceinstance")
    @classmethod
    def _dialog_guid(cls, value: str) -> str:
        return _guid(value, "resourceinstance (the dialog id)")

    @property
    def dialog_id(self) -> str:
        """The dialog's id, lowercase canonical GUID form."""
        return str(uuid.UUID(self.resourceinstance))

    @property
    def party(self) -> str:
        """Who the dialog belongs to, e.g. ``urn:altinn:organization:identifier-no:991825827``."""
        return self.subject

    @property
    def service_resource(self) -> str:
        """``super-simple-service`` for ``urn:altinn:resource:super-simple-service``."""
        return self.resource.removeprefix(RESOURCE_PREFIX)

    @property
    def time_raw(self) -> str:
        """``time`` exactly as received (7 fractional digits from .NET)."""
        return self._time_raw

    @property
    def time_key(self) -> str:
        """Full-precision UTC time as a sortable fixed-width string."""
        return time_key(self._time_raw)


class DialogEvent(DialogportenEvent):
    """Base of the dialog family (created, updated, deleted, restored, seen)."""

    family: ClassVar[Family | None] = Family.DIALOG
    data: DialogData | None = None


class TransmissionEvent(DialogportenEvent):
    """Base of the transmission family; ``source`` ends with ``/transmissions/{id}``."""

    family: ClassVar[Family | None] = Family.TRANSMISSION
    data: TransmissionData | None = None

    @property
    def transmission_id(self) -> str | None:
        from_data = self.data.model_extra.get("transmissionId") if self.data and self.data.model_extra else None
        if isinstance(from_data, str) and from_data:
            return from_data
        return _source_id(self.source, "transmissions")


class ActivityEvent(DialogportenEvent):
    """Base of the activity family: ``data.activityId`` is required."""

    family: ClassVar[Family | None] = Family.ACTIVITY
    data: ActivityData

    @property
    def activity_id(self) -> str:
        return self.data.activity_id or _source_id(self.source, "activities") or ""


class UnknownEvent(_Open):
    """A valid CloudEvent of a type the catalog does not know (the ``dialogporten-unrouted`` queue)."""

    specversion: str
    id: str
    type: str
    source: str
    time: str | None = None
    subject: str | None = None
    resource: str | None = None
    resourceinstance: str | None = None

    @property
    def dialog_id(self) -> str | None:
        return self.resourceinstance


# One class per catalog row. The names are the catalog's ``model`` column (a
# test checks both ways); the ``type`` literal makes a mismatched event fail.


class DialogCreated(DialogEvent):
    type: Literal["dialogporten.dialog.created.v1"]


class DialogUpdated(DialogEvent):
    type: Literal["dialogporten.dialog.updated.v1"]


class DialogDeleted(DialogEvent):
    type: Literal["dialogporten.dialog.deleted.v1"]


class DialogRestored(DialogEvent):
    type: Literal["dialogporten.dialog.restored.v1"]


class DialogSeen(DialogEvent):
    type: Literal["dialogporten.dialog.seen.v1"]


class TransmissionCreated(TransmissionEvent):
    type: Literal["dialogporten.dialog.transmission.created.v1"]


class ActivityCreated(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.created.v1"]


class ActivityClosed(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.closed.v1"]


class ActivityInformation(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.information.v1"]


class ActivityTransmissionOpened(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.transmission-opened.v1"]


class ActivityPaymentMade(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.payment-made.v1"]


class ActivitySignatureProvided(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.signature-provided.v1"]


class ActivityDialogOpened(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.dialog-opened.v1"]


class ActivityDialogDeleted(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.dialog-deleted.v1"]


class ActivityDialogRestored(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.dialog-restored.v1"]


class ActivitySentToSigning(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.sent-to-signing.v1"]


class ActivitySentToFormFill(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.sent-to-form-fill.v1"]


class ActivitySentToSendIn(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.sent-to-send-in.v1"]


class ActivitySentToPayment(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.sent-to-payment.v1"]


class ActivityFormSubmitted(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.form-submitted.v1"]


class ActivityFormSaved(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.form-saved.v1"]


class ActivityCorrespondenceOpened(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.correspondence-opened.v1"]


class ActivityCorrespondenceConfirmed(ActivityEvent):
    type: Literal["dialogporten.dialog.activity.correspondence-confirmed.v1"]


_FAMILY_BASE: Final[dict[Family, type[DialogportenEvent]]] = {
    Family.DIALOG: DialogEvent,
    Family.TRANSMISSION: TransmissionEvent,
    Family.ACTIVITY: ActivityEvent,
}


#: type string -> model class, for every catalog row (a row naming no model fails the import).
MODELS: Final[dict[str, type[DialogportenEvent]]] = {
    row.type: getattr(sys.modules[__name__], row.model_name) for row in CATALOG
}


def mismatches(rows: Iterable[EventType] = CATALOG) -> list[str]:
    """Every way a catalog row and its model disagree: no such model, not of the row's family, another type.

    Checked by the tests rather than on every import: importing the models must not reach back into the
    catalog's rows for anything but their names (the catalog imports no model at all).
    """
    found = []
    for row in rows:
        model = getattr(sys.modules[__name__], row.model_name, None)
        base = _FAMILY_BASE[row.family]
        if not (isinstance(model, type) and issubclass(model, base)):
            found.append(f"catalog row {row.type}: shared.events.models.{row.model_name} must be a {base.__name__}")
            continue
        literal = get_args(model.model_fields["type"].annotation)
        if literal != (row.type,):
            found.append(f"catalog row {row.type}: {row.model_name}.type is Literal{list(literal)}, not the row's type")
    return found


def model_for(event_type: str) -> type[DialogportenEvent] | None:
    return MODELS.get(event_type)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_event(obj: Any, expected_type: str | None = None) -> DialogportenEvent:
    """The typed event for a CloudEvent object (a dict), chosen by its ``type`` via the catalog.

    ``expected_type`` (the queue's type) makes an event on the wrong queue an error.
    Raises :class:`EventError` when the event can never match.
    """
    if not isinstance(obj, dict):
        raise EventError(f"an event is a JSON object, not {type(obj).__name__}")
    event_type = obj.get("type")
    if expected_type is not None and event_type != expected_type:
        raise EventError(f"event type {event_type!r} does not belong on the queue of {expected_type!r}")
    model = model_for(event_type) if isinstance(event_type, str) else None
    if model is None:
        raise EventError(f"unknown event type {event_type!r}")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise EventError(f"{event_type}: {_describe(exc)}") from None


def parse_unknown(obj: Any) -> UnknownEvent:
    """The loose model for a parked event of a type the catalog does not know."""
    try:
        return UnknownEvent.model_validate(obj)
    except ValidationError as exc:
        raise EventError(f"not a CloudEvent: {_describe(exc)}") from None
