"""Handlers for the transmission family (``dialogporten.dialog.transmission.created.v1``).

YOUR CODE GOES HERE, e.g.::

    @handles(TransmissionCreated)
    def on_transmission(event: TransmissionCreated) -> None:
        ...  # event.transmission_id, event.data.sender_type ("ServiceOwner" / "PartyRepresentative")

Raise to have the event retried; raise ``CannotSucceed(reason)`` (``shared.errors``)
to poison it now. A handler may take a second argument, the ``HandlerContext``.
"""

from __future__ import annotations

from shared.events import TransmissionEvent
from shared.handlers.registry import HandlerContext, handles
from shared.stores.dialogs import DialogStore


@handles(TransmissionEvent, effects=False)
def keep_dialog_state(event: TransmissionEvent, ctx: HandlerContext) -> bool:
    """Default: count the transmission on the dialog's row."""
    return DialogStore(ctx.clients.tables).record(event)  # False: stored before (a duplicate)
