"""The glue between the default handlers and the dialogs table, on the clients processing was given."""

from __future__ import annotations

from shared.dialogs import DialogStore
from shared.events import DialogportenEvent
from shared.handlers.registry import HandlerContext


def dialog_store(ctx: HandlerContext) -> DialogStore:
    return DialogStore(ctx.clients.tables)


def record_dialog_state(event: DialogportenEvent, ctx: HandlerContext) -> bool:
    """Store the event in its dialog's rows; False when it had been stored before (a duplicate)."""
    return dialog_store(ctx).record(event)
