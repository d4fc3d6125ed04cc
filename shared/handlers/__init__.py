"""The user's room: your business logic goes in this package.

* ``dialog.py``       - dialog created / updated / deleted / restored / seen
* ``transmission.py`` - transmission created
* ``activity.py``     - the activity types
* ``unrouted.py``     - events of types the catalog does not know yet

Write a typed function and decorate it::

    from shared.events import DialogCreated
    from shared.handlers.registry import handles

    @handles(DialogCreated)
    def on_created(event: DialogCreated) -> None:
        ...

Parsing, queues, retries, poison queues, duplicate suppression and function
registration are done for you. Every type already has a default handler that
keeps the ``dialogs`` table (``GET /api/dialogs/{dialogId}``) up to date; your
handlers run after it. Importing this package registers every handler.
"""

from shared.handlers import activity, dialog, transmission, unrouted
from shared.handlers.registry import handlers_for, handles

__all__ = ["activity", "dialog", "handlers_for", "handles", "transmission", "unrouted"]
