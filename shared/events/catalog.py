"""The catalog: the one source of truth for the Dialogporten event types.

Everything else is derived from this table: the routing of the webhook, the
queue-triggered functions that get registered, the queues that Bicep creates
(``infra/catalog.json`` is generated from it and checked by a test), the
event table of ``docs/webhook.md`` and the sample events. Adding a type is
adding one row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Family(StrEnum):
    """How a type's ``data`` and ``source`` are shaped."""

    DIALOG = "dialog"
    TRANSMISSION = "transmission"
    ACTIVITY = "activity"


#: Queue for valid CloudEvents whose type is not in the catalog: parked, never dropped.
UNROUTED_QUEUE: Final = "dialogporten-unrouted"
#: Altinn Events posts this right after a subscription is created; any 2xx validates it.
VALIDATION_TYPE: Final = "platform.events.validatesubscription"
POISON_SUFFIX: Final = "-poison"
#: Azure Storage queue names: 3-63 characters, lowercase letters, digits and
#: single hyphens, starting and ending with a letter or digit.
#: Applied with fullmatch: ``$`` would also accept a name ending in a newline.
_QUEUE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]")
MAX_QUEUE_NAME: Final = 63


def queue_name_for(event_type: str) -> str:
    """``dialogporten.dialog.created.v1`` -> ``dialogporten-dialog-created-v1``."""
    return event_type.replace(".", "-")


def poison_queue_for(queue: str) -> str:
    return queue + POISON_SUFFIX


def is_valid_queue_name(name: str) -> bool:
    return 3 <= len(name) <= MAX_QUEUE_NAME and bool(_QUEUE_NAME.fullmatch(name))


@dataclass(frozen=True, slots=True)
class EventType:
    """One row of the catalog."""

    type: str
    family: Family
    model_name: str
    """Name of the pydantic model in :mod:`shared.events.models` for this type (``models.MODELS[type]`` is the
    class; ``models.mismatches()``, run by the tests, checks that the two agree)."""
    description: str

    @property
    def queue(self) -> str:
        return queue_name_for(self.type)

    @property
    def poison_queue(self) -> str:
        return poison_queue_for(self.queue)

    @property
    def function_name(self) -> str:
        """Name of the queue-triggered function (unique, valid as a Functions name)."""
        return "on_" + self.queue.removeprefix("dialogporten-").replace("-", "_")


CATALOG: Final[tuple[EventType, ...]] = (
    EventType("dialogporten.dialog.created.v1", Family.DIALOG, "DialogCreated", "A new dialog has been created."),
    EventType("dialogporten.dialog.updated.v1", Family.DIALOG, "DialogUpdated", "An existing dialog has been updated."),
    EventType("dialogporten.dialog.deleted.v1", Family.DIALOG, "DialogDeleted", "A dialog has been deleted."),
    EventType("dialogporten.dialog.restored.v1", Family.DIALOG, "DialogRestored", "A dialog has been restored."),
    EventType(
        "dialogporten.dialog.seen.v1", Family.DIALOG, "DialogSeen", "A dialog has been seen (opened) by an end user."
    ),
    EventType(
        "dialogporten.dialog.transmission.created.v1",
        Family.TRANSMISSION,
        "TransmissionCreated",
        "A transmission has been created.",
    ),
    EventType(
        "dialogporten.dialog.activity.created.v1",
        Family.ACTIVITY,
        "ActivityCreated",
        'A "dialog created" activity has been added.',
    ),
    EventType(
        "dialogporten.dialog.activity.closed.v1",
        Family.ACTIVITY,
        "ActivityClosed",
        'A "dialog closed" activity has been added.',
    ),
    EventType(
        "dialogporten.dialog.activity.information.v1",
        Family.ACTIVITY,
        "ActivityInformation",
        "An information activity related to a dialog has been recorded.",
    ),
    EventType(
        "dialogporten.dialog.activity.transmission-opened.v1",
        Family.ACTIVITY,
        "ActivityTransmissionOpened",
        "A transmission related to a dialog has been marked as opened.",
    ),
    EventType(
        "dialogporten.dialog.activity.payment-made.v1",
        Family.ACTIVITY,
        "ActivityPaymentMade",
        "A payment activity in a dialog has been completed.",
    ),
    EventType(
        "dialogporten.dialog.activity.signature-provided.v1",
        Family.ACTIVITY,
        "ActivitySignatureProvided",
        "A signature has been provided for a dialog.",
    ),
    EventType(
        "dialogporten.dialog.activity.dialog-opened.v1",
        Family.ACTIVITY,
        "ActivityDialogOpened",
        "A dialog has been marked as opened.",
    ),
    EventType(
        "dialogporten.dialog.activity.dialog-deleted.v1",
        Family.ACTIVITY,
        "ActivityDialogDeleted",
        "A dialog has been marked as deleted.",
    ),
    EventType(
        "dialogporten.dialog.activity.dialog-restored.v1",
        Family.ACTIVITY,
        "ActivityDialogRestored",
        "A dialog has been restored.",
    ),
    EventType(
        "dialogporten.dialog.activity.sent-to-signing.v1",
        Family.ACTIVITY,
        "ActivitySentToSigning",
        "A dialog has been sent to signing.",
    ),
    EventType(
        "dialogporten.dialog.activity.sent-to-form-fill.v1",
        Family.ACTIVITY,
        "ActivitySentToFormFill",
        "A dialog has been sent to form filling.",
    ),
    EventType(
        "dialogporten.dialog.activity.sent-to-send-in.v1",
        Family.ACTIVITY,
        "ActivitySentToSendIn",
        "A dialog has been sent for submission.",
    ),
    EventType(
        "dialogporten.dialog.activity.sent-to-payment.v1",
        Family.ACTIVITY,
        "ActivitySentToPayment",
        "A dialog has been sent to payment.",
    ),
    EventType(
        "dialogporten.dialog.activity.form-submitted.v1",
        Family.ACTIVITY,
        "ActivityFormSubmitted",
        "A form belonging to the dialog has been submitted.",
    ),
    EventType(
        "dialogporten.dialog.activity.form-saved.v1",
        Family.ACTIVITY,
        "ActivityFormSaved",
        "A form belonging to the dialog has been saved.",
    ),
    EventType(
        "dialogporten.dialog.activity.correspondence-opened.v1",
        Family.ACTIVITY,
        "ActivityCorrespondenceOpened",
        "A correspondence belonging to the dialog has been opened.",
    ),
    EventType(
        "dialogporten.dialog.activity.correspondence-confirmed.v1",
        Family.ACTIVITY,
        "ActivityCorrespondenceConfirmed",
        "A correspondence belonging to the dialog has been confirmed.",
    ),
)

BY_TYPE: Final[dict[str, EventType]] = {row.type: row for row in CATALOG}
BY_QUEUE: Final[dict[str, EventType]] = {row.queue: row for row in CATALOG}


def lookup(event_type: str) -> EventType | None:
    return BY_TYPE.get(event_type)


def all_queues() -> list[str]:
    """Every queue the app uses, poison queues included, in a stable order."""
    names: list[str] = []
    for queue in [row.queue for row in CATALOG] + [UNROUTED_QUEUE]:
        names += [queue, poison_queue_for(queue)]
    return names
