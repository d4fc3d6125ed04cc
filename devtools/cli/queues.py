"""The queue names an operator may give: the catalog's queues, their ``-poison`` twins and ``dialogporten-unrouted``.

Any other name is an error (exit 1) that lists the valid ones: a typo must never read as an empty queue.
"""

from __future__ import annotations

from typing import NoReturn

from devtools.cli.output import fail
from shared.events import catalog


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
