"""Handlers for the activity family (``dialogporten.dialog.activity.*.v1``: 17 types).

YOUR CODE GOES HERE, e.g.::

    from shared.events import ActivityEvent, ActivityFormSubmitted, ActivityPaymentMade, ActivitySignatureProvided
    from shared.handlers import handles

    @handles(ActivitySignatureProvided)
    def on_signed(event: ActivitySignatureProvided) -> None:
        ...  # event.activity_id, event.data.extended_activity_type

    @handles(ActivityPaymentMade, ActivityFormSubmitted)
    def on_money_or_form(event: ActivityEvent) -> None:
        ...

Raise to have the event retried; raise ``CannotSucceed(reason)`` (``shared.errors``)
to poison it now. A handler may take a second argument, the ``HandlerContext``.
"""
