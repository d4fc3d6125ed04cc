"""The default handler every event runs first: its row in its dialog's partition (``GET /api/dialogs/{id}``).

Registered once, by the app (:func:`shared.processing.registry.app_registry`), for every event model, before
any handler of ``shared/handlers/``: so a poisoned event still counts in the dialog state. Declared without
outside effects: the one insert per event is its own exactly-once step (a second insert of the same event is
refused, and the handler then says ``False``: the event was applied before).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.events.models import DialogportenEvent
from shared.stores.dialogs import DialogStore

if TYPE_CHECKING:  # the registry registers this handler: it may not be imported back
    from shared.processing.registry import HandlerContext

__all__ = ["keep_dialog_state"]


def keep_dialog_state(event: DialogportenEvent, ctx: HandlerContext) -> bool:
    """Record the event in its dialog's state; False when it was recorded before (a duplicate)."""
    return DialogStore(ctx.clients.tables).record(event)
