"""Handlers for the transmission family (``dialogporten.dialog.transmission.created.v1``).

YOUR CODE GOES HERE, e.g.::

    from shared.events import TransmissionCreated
    from shared.handlers import handles

    @handles(TransmissionCreated)
    def on_transmission(event: TransmissionCreated) -> None:
        ...  # event.transmission_id, event.data.sender_type ("ServiceOwner" / "PartyRepresentative")

Raise to have the event retried; raise ``CannotSucceed(reason)`` (``shared.errors``)
to poison it now. A handler may take a second argument, the ``HandlerContext``.
"""
