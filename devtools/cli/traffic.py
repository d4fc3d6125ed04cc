"""Realistic Dialogporten traffic: whole dialog lifecycles, as Dialogporten would emit them (pure, seeded).

Shapes (the project's notes on the Altinn APIs, section 3): ``source`` is
``{BaseUri}/api/v1/enduser/dialogs/{dialogId}`` with ``/activities/{id}`` or ``/transmissions/{id}``
appended; ``resourceinstance`` is the dialog id (a UUIDv7); ``subject`` the party URN; ``time`` .NET's
7 fractional digits; ``data.activityId`` always on activity events, ``senderType`` on transmissions.
Organisation numbers pass mod 11 with weights 3,2,7,6,5,4,3,2 (DP ``NorwegianOrganizationIdentifier.cs``).
Person numbers are *synthetic* (Skatteetaten's test numbers: month + 80), so they are never a real
person's, with both control digits right.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from shared.events.catalog import CATALOG, Family

SOURCES: Final = {
    "tt02": "https://platform.tt02.altinn.no/dialogporten",
    "prod": "https://platform.altinn.no/dialogporten",
}
ORG_WEIGHTS: Final = (3, 2, 7, 6, 5, 4, 3, 2)
PID_WEIGHTS_1: Final = (3, 7, 6, 1, 8, 9, 4, 5, 2)
PID_WEIGHTS_2: Final = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
ACTIVITY_TYPES: Final = [row.type for row in CATALOG if row.family is Family.ACTIVITY]


def mod11(digits: str, weights: tuple[int, ...]) -> int | None:
    """The mod-11 control digit, or None where none exists (the remainder gives 10)."""
    rest = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    if rest == 11:
        return 0
    return None if rest == 10 else rest


def org_number(rng: random.Random) -> str:
    while True:
        body = str(rng.choice("89")) + "".join(str(rng.randrange(10)) for _ in range(7))
        check = mod11(body, ORG_WEIGHTS)
        if check is not None:
            return body + str(check)


def synthetic_person_number(rng: random.Random) -> str:
    while True:
        born = datetime(1940, 1, 1) + timedelta(days=rng.randrange(365 * 60))
        body = f"{born.day:02d}{born.month + 80:02d}{born.year % 100:02d}{rng.randrange(500):03d}"
        k1 = mod11(body, PID_WEIGHTS_1)
        if k1 is None:
            continue
        k2 = mod11(body + str(k1), PID_WEIGHTS_2)
        if k2 is not None:
            return f"{body}{k1}{k2}"


def uuid7(rng: random.Random, moment: datetime) -> str:
    """RFC 9562 version 7: 48-bit Unix milliseconds, then random bits (Dialogporten's dialog ids)."""
    value = (int(moment.timestamp() * 1000) & (2**48 - 1)) << 80 | rng.getrandbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
    return str(uuid.UUID(int=value))


def dotnet_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}{moment.microsecond % 10}Z"


def lifecycle(
    rng: random.Random,
    *,
    source_env: str = "tt02",
    resource: str = "urn:altinn:resource:super-simple-service",
    start: datetime | None = None,
) -> list[dict[str, Any]]:
    """One dialog's events in the order they happened: created, activities, a transmission, seen, updates,
    sometimes deleted and restored."""
    at = start or datetime.now(UTC)
    dialog = uuid7(rng, at)
    base = f"{SOURCES[source_env]}/api/v1/enduser/dialogs/{dialog}"
    party = (
        f"urn:altinn:organization:identifier-no:{org_number(rng)}"
        if rng.random() < 0.6
        else f"urn:altinn:person:identifier-no:{synthetic_person_number(rng)}"
    )
    process = f"urn:example:process:{rng.randrange(10**6)}"
    events: list[dict[str, Any]] = []

    def emit(event_type: str, source: str, data: dict[str, Any]) -> None:
        nonlocal at
        at += timedelta(milliseconds=rng.randrange(5, 5000), microseconds=rng.randrange(1000))
        events.append(
            {
                "specversion": "1.0",
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "type": event_type,
                "time": dotnet_time(at),
                "resource": resource,
                "resourceinstance": dialog,
                "subject": party,
                "source": source,
                "data": data,
            }
        )

    def activity(event_type: str) -> None:
        activity_id = uuid7(rng, at)
        emit(event_type, f"{base}/activities/{activity_id}", {"activityId": activity_id, "process": process})

    emit("dialogporten.dialog.created.v1", base, {"process": process})
    activity("dialogporten.dialog.activity.created.v1")
    for event_type in rng.sample(ACTIVITY_TYPES, rng.randrange(1, 5)):
        activity(event_type)
    transmission = uuid7(rng, at)
    emit(
        "dialogporten.dialog.transmission.created.v1",
        f"{base}/transmissions/{transmission}",
        {"process": process, "senderType": rng.choice(["ServiceOwner", "PartyRepresentative"])},
    )
    activity("dialogporten.dialog.activity.transmission-opened.v1")
    emit("dialogporten.dialog.seen.v1", base, {"process": process})
    emit("dialogporten.dialog.updated.v1", base, {"process": process})
    if rng.random() < 0.2:
        emit("dialogporten.dialog.deleted.v1", base, {"process": process})
        activity("dialogporten.dialog.activity.dialog-deleted.v1")
        if rng.random() < 0.5:
            emit("dialogporten.dialog.restored.v1", base, {"process": process})
            activity("dialogporten.dialog.activity.dialog-restored.v1")
    return events


def stream(
    rng: random.Random, *, duplicates: float = 0.0, shuffle: bool = False, window: int = 64, **lifecycle_args: Any
) -> Iterator[dict[str, Any]]:
    """An endless stream of dialogs' events; ``duplicates`` of them sent again later (same id), and with
    ``shuffle`` reordered within ``window`` events, as at-least-once delivery without order does."""
    pending: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    while True:
        while len(pending) < window:
            pending.extend(lifecycle(rng, **lifecycle_args))
        if shuffle:
            rng.shuffle(pending)
        event = pending.pop(0)
        yield event
        sent.append(event)
        if len(sent) > window:
            sent.pop(0)
        if duplicates and rng.random() < duplicates:
            pending.insert(rng.randrange(len(pending) + 1) if shuffle else 0, rng.choice(sent))
