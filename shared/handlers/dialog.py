"""Handlers for the dialog family: created, updated, deleted, restored, seen.

YOUR CODE GOES HERE. Add a typed function per event type, e.g.::

    from shared.events import DialogCreated
    from shared.handlers import handles

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
