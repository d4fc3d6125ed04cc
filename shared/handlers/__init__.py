"""The user's room: your business logic goes in this package.

* ``dialog.py``       - dialog created / updated / deleted / restored / seen
* ``transmission.py`` - transmission created
* ``activity.py``     - the activity types
* any other module you add here: it is found and imported, no need to name it

Write a typed function and decorate it::

    from shared.events import DialogCreated
    from shared.handlers import handles

    @handles(DialogCreated)
    def on_created(event: DialogCreated) -> None:
        ...

Parsing, queues, retries, poison queues, duplicate suppression and function registration are done for
you. Before your handlers, the app runs its own for every event: it keeps the ``dialogs`` table
(``GET /api/dialogs/{dialogId}``) up to date (:mod:`shared.processing.defaults`). With the first queue
message the app imports every module of this package, in name order, and registers each function marked
``@handles``, in the order they are written; a module that fails to import fails that message loudly,
instead of its handlers silently never running.

Events of types the catalog does not know are parked on ``dialogporten-unrouted`` and reach no handler:
add a catalog row, then ``dpctl parked reroute``.
"""

from shared.errors import CannotSucceed, RetryLater
from shared.processing.registry import HandlerContext, handles

__all__ = ["CannotSucceed", "HandlerContext", "RetryLater", "handles"]
