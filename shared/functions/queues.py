"""Queue adapters: one queue-triggered function per catalog type.

Generated from :data:`shared.events.catalog.CATALOG`: adding a row adds its function.
Each function only adapts ``func.QueueMessage`` to :func:`shared.processing.pipeline.process_message`;
the business logic lives in :mod:`shared.handlers`.

``dialogporten-unrouted`` deliberately has no trigger: an event of a type the
catalog does not know is *parked* there, untouched and never expiring, until an
operator re-routes it (``dpctl parked reroute``) or discards it.
Nothing consumes it, so nothing can lose it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from shared import settings
from shared.events.catalog import CATALOG
from shared.settings import STORAGE_CONNECTION
from shared.stores import clients as storage

if TYPE_CHECKING:
    from shared.processing.registry import Registry

bp = func.Blueprint()

_REGISTRY: list[Registry] = []
_BUILDING = threading.Lock()


def registry() -> Registry:
    """The app's handler registry, built once, with the first message (discovery imports the handlers)."""
    with _BUILDING:
        if not _REGISTRY:
            from shared.processing.registry import app_registry

            _REGISTRY.append(app_registry())
        return _REGISTRY[0]


def _adapter(queue: str, name: str) -> Callable[[func.QueueMessage], None]:
    def run(msg: func.QueueMessage) -> None:
        # Imported here, not at module level: indexing the app (every cold start) then
        # needs only the catalog, and an instance that only serves HTTP never loads
        # pydantic models, the table SDK or the handlers.
        from shared.processing.pipeline import process_message

        process_message(
            msg.get_body(),
            queue=queue,
            dequeue_count=int(msg.dequeue_count or 1),
            clients=storage.current(),
            cfg=settings.current(),
            registry=registry(),
            message_id=msg.id,
        )

    run.__name__ = run.__qualname__ = name
    return run


def _register(queue: str, name: str) -> None:
    fn = _adapter(queue, name)
    bp.function_name(name=name)(bp.queue_trigger(arg_name="msg", queue_name=queue, connection=STORAGE_CONNECTION)(fn))


for _row in CATALOG:
    _register(_row.queue, _row.function_name)
