"""Sample Dialogporten events, derived from the catalog (one per type), shaped like real TT02 deliveries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shared.events.catalog import BY_TYPE, EventType, Family

TT02_BASE = "https://platform.tt02.altinn.no/dialogporten/api/v1/enduser/dialogs"
RESOURCE = "urn:altinn:resource:super-simple-service"
PARTY = "urn:altinn:organization:identifier-no:991825827"


def dotnet_time(moment: datetime | None = None) -> str:
    """RFC 3339 with 7 fractional digits, as .NET (Dialogporten) writes it."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def sample_event(
    row: EventType | str,
    *,
    dialog_id: str | None = None,
    event_id: str | None = None,
    time: str | None = None,
    party: str = PARTY,
    resource: str = RESOURCE,
) -> dict[str, Any]:
    row = BY_TYPE[row] if isinstance(row, str) else row
    dialog_id = dialog_id or str(uuid.uuid4())
    source = f"{TT02_BASE}/{dialog_id}"
    data: dict[str, Any] = {"process": "urn:example:process:1"}
    if row.family is Family.ACTIVITY:
        activity_id = str(uuid.uuid4())
        source += f"/activities/{activity_id}"
        data = {"activityId": activity_id, **data}
    elif row.family is Family.TRANSMISSION:
        transmission_id = str(uuid.uuid4())
        source += f"/transmissions/{transmission_id}"
        data["senderType"] = "ServiceOwner"
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "type": row.type,
        "time": time or dotnet_time(),
        "resource": resource,
        "resourceinstance": dialog_id,
        "subject": party,
        "source": source,
        "data": data,
    }
