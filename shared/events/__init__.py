"""Events (layer 3): what an event is, whatever carries it.

- :mod:`~shared.events.cloudevent`: CloudEvents 1.0 validation; :mod:`~shared.events.jsonformat`: its
  strict JSON format; :mod:`~shared.events.rfc3339`: the one time parser;
- :mod:`~shared.events.catalog`: the event types, the source of truth;
- :mod:`~shared.events.models`: a pydantic model per type (what handlers receive);
- :mod:`~shared.events.messages`: an event as a queue message (and its claim check);
- :mod:`~shared.events.identity`: an event's identity, ``source`` + ``id``.

``from shared.events import DialogCreated`` keeps working: the models are re-exported here, and loaded
on first use only (indexing the app must not load pydantic).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.events.models import *  # noqa: F403 - the models, for type checkers


_SUBMODULES = frozenset({"catalog", "cloudevent", "identity", "jsonformat", "messages", "rfc3339"})


def __getattr__(name: str) -> Any:
    """A model (or anything else :mod:`shared.events.models` defines), imported on first use."""
    if name.startswith("__") or name in _SUBMODULES:
        # `from shared.events import catalog` asks here before it imports the submodule: never load pydantic for it
        raise AttributeError(name)
    models = importlib.import_module("shared.events.models")  # not `from . import`: that asks this hook again
    if name == "models":
        return models
    try:
        return getattr(models, name)
    except AttributeError:
        raise AttributeError(f"module 'shared.events' has no attribute {name!r}") from None
