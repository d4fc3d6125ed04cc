"""Handlers for the dialog family: created, updated, deleted, restored, seen.

YOUR CODE GOES HERE. Add a typed function per event type, e.g.::

    @handles(DialogCreated)
    def notify_case_system(event: DialogCreated) -> None:
        ...  # event.dialog_id, event.party, event.service_resource, event.data.process

Raise to have the event retried (after 5 failed attempts it lands in the
type's ``-poison`` queue); raise ``CannotSucceed(reason)`` (``shared.errors``)
to poison it now. A handler may take a second argument, the
``HandlerContext`` (the storage clients and settings of the invocation).
Each event (``source`` + ``id``) reaches your handler once in normal
operation; make outside effects idempotent anyway (keyed on ``event.source``
and ``event.id``) for the rare claim that expires while a handler still runs.
"""

from __future__ import annotations

from shared.events import DialogEvent
from shared.handlers.registry import HandlerContext, handles
from shared.stores.dialogs import DialogStore


@handles(DialogEvent, effects=False)
def keep_dialog_state(event: DialogEvent, ctx: HandlerContext) -> bool:
    """Default: keep the dialog's row in the ``dialogs`` table up to date."""
    return DialogStore(ctx.clients.tables).record(event)  # False: stored before (a duplicate)
