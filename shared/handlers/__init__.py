"""The user's room: your business logic goes in this package.

* ``dialog.py``       - dialog created / updated / deleted / restored / seen
* ``transmission.py`` - transmission created
* ``activity.py``     - the activity types
* any other module you add here: it is found and imported, no need to name it

Write a typed function and decorate it::

    from shared.events import DialogCreated
    from shared.processing.registry import handles

    @handles(DialogCreated)
    def on_created(event: DialogCreated) -> None:
        ...

Parsing, queues, retries, poison queues, duplicate suppression and function
registration are done for you. Every type already has a default handler that
keeps the ``dialogs`` table (``GET /api/dialogs/{dialogId}``) up to date; your
handlers run after it. Importing this package registers every handler: the
family modules first (so the defaults run first), then every other module of
the package in name order. A module that fails to import fails the app's
start, instead of its handlers silently never running.

Events of types the catalog does not know are parked on
``dialogporten-unrouted`` and reach no handler: add a catalog row, then
``dpctl parked reroute``.
"""

from shared.handlers import activity, dialog, transmission
from shared.processing.registry import HandlerContext, discover, handlers_for, handles, has_effects, invoke

#: Infrastructure of the package, not handlers.
_NOT_HANDLERS = ("registry",)

#: Every module of the package that was imported for its handlers.
DISCOVERED: tuple[str, ...] = tuple(discover(__name__, __path__, skip=_NOT_HANDLERS))

__all__ = [
    "DISCOVERED",
    "HandlerContext",
    "activity",
    "dialog",
    "handlers_for",
    "handles",
    "has_effects",
    "invoke",
    "transmission",
]
