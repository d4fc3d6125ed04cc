"""The queues an operator works on: the names that may be given, and reading a queue's messages as they are.

The names are the catalog's queues, their ``-poison`` twins and ``dialogporten-unrouted``. Any other name is an
error (exit 1) that lists the valid ones: a typo must never read as an empty queue.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final, NoReturn

from azure.core.exceptions import ResourceNotFoundError

from devtools.cli.output import fail
from shared.events import catalog

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

#: How long a message being moved or listed stays invisible to other operators' commands.
LEASE_SECONDS: Final = 60


def raw(service: QueueServiceClient, name: str) -> QueueClient:
    """Queue ``name`` with no encode or decode policy: bodies are read and sent exactly as stored (base64 and all)."""
    return service.get_queue_client(name)


def leased(client: QueueClient) -> Iterator[tuple[QueueMessage, Callable[[], None]]]:
    """Every message of the queue once, each with a function that hands it back.

    Each received message stays invisible for the lease, so the listing ends; the ones
    handed back become visible again only after the listing, so none is seen twice.
    A queue that was never created has nothing to list.
    """
    hand_back: list[QueueMessage] = []
    try:
        for message in client.receive_messages(messages_per_page=32, visibility_timeout=LEASE_SECONDS):
            yield message, functools.partial(hand_back.append, message)
    except ResourceNotFoundError:
        return
    finally:
        for message in hand_back:
            with contextlib.suppress(ResourceNotFoundError):
                client.update_message(message, visibility_timeout=0)


def valid_names() -> list[str]:
    queues = [row.queue for row in catalog.CATALOG]
    return [*queues, *(catalog.poison_queue_for(q) for q in queues), catalog.UNROUTED_QUEUE]


def _unknown(name: str) -> NoReturn:
    names = valid_names()
    fail(
        f"no queue named {name[:200]!r}: valid names are the catalog's queues, their -poison twins "
        f"and {catalog.UNROUTED_QUEUE}",
        hint="valid names:\n  " + "\n  ".join(names),
    )


def poison_queue(name: str) -> str:
    """The poison queue meant by ``name`` (a catalog queue or its ``-poison`` twin); else exit 1."""
    if name in (catalog.UNROUTED_QUEUE, catalog.poison_queue_for(catalog.UNROUTED_QUEUE)):
        fail(
            f"{catalog.UNROUTED_QUEUE} has no poison queue: nothing consumes it, its events wait there parked",
            hint="see them with: dpctl parked list",
        )
    if name in catalog.BY_QUEUE:
        return catalog.poison_queue_for(name)
    if name.endswith(catalog.POISON_SUFFIX) and name.removesuffix(catalog.POISON_SUFFIX) in catalog.BY_QUEUE:
        return name
    _unknown(name)
