"""Handlers for the activity family (``dialogporten.dialog.activity.*.v1``: 17 types).

YOUR CODE GOES HERE, e.g.::

    @handles(ActivitySignatureProvided)
    def on_signed(event: ActivitySignatureProvided) -> None:
        ...  # event.activity_id, event.data.extended_activity_type

    @handles(ActivityPaymentMade, ActivityFormSubmitted)
    def on_money_or_form(event: ActivityEvent) -> None:
        ...

Raise to have the event retried; raise ``CannotSucceed(reason)`` (``shared.errors``)
to poison it now. A handler may take a second argument, the ``HandlerContext``.
"""

from __future__ import annotations

from shared.events import ActivityEvent
from shared.handlers.registry import HandlerContext, handles
from shared.stores.dialogs import DialogStore


@handles(ActivityEvent, effects=False)
def keep_dialog_state(event: ActivityEvent, ctx: HandlerContext) -> bool:
    """Default: record the activity (last activity, count) on the dialog's row."""
    return DialogStore(ctx.clients.tables).record(event)  # False: stored before (a duplicate)
