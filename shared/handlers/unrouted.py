"""Handler for events of types the catalog does not know (parked on ``dialogporten-unrouted``).

Dialogporten adds types over time. Such an event is accepted and parked, never
dropped; the default logs it as a warning so that someone adds a catalog row.
"""

from __future__ import annotations

import logging

from shared import logs
from shared.events import UnknownEvent
from shared.handlers.registry import handles

#: Its own log kind: the processing line (``dialogporten.process``) stays one per event.
UNROUTED = "dialogporten.unrouted"


@handles(UnknownEvent)
def log_parked(event: UnknownEvent) -> None:
    """Default: a warning per parked event (add the type to ``shared/catalog.py`` to route it)."""
    logs.log_event(
        UNROUTED,
        "parked",
        logging.WARNING,
        event_id=event.id,
        event_type=event.type,
        dialog_id=event.dialog_id,
        source=event.source,
        reason="event type not in the catalog; add a row to shared/catalog.py to route it",
    )
