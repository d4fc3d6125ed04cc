"""The handler registry: which typed functions run for which event model.

``@handles(Model, ...)`` registers a function for those models and for every
subclass of them, so ``@handles(ActivityEvent)`` runs for all activity types
and ``@handles(DialogCreated)`` for one. Several handlers may run for one
event: they run in registration order, the defaults (in this package's
family modules) first. A handler that raises means "retry this event".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from pydantic import BaseModel

__all__ = ["Handler", "handlers_for", "handles", "registered", "unregister"]

Handler = Callable[[Any], None]
F = TypeVar("F", bound=Callable[..., None])

_REGISTRY: Final[list[tuple[type[BaseModel], Handler]]] = []


def handles(*models: type[BaseModel]) -> Callable[[F], F]:
    """Register the decorated function as a handler of ``models`` (and their subclasses)."""
    if not models:
        raise TypeError("@handles needs at least one event model, e.g. @handles(DialogCreated)")
    for model in models:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"@handles takes event model classes, got {model!r}")

    def register(fn: F) -> F:
        for model in models:
            if (model, fn) not in _REGISTRY:
                _REGISTRY.append((model, fn))
        return fn

    return register


def handlers_for(model: type[BaseModel]) -> list[Handler]:
    """Every handler that runs for an event of ``model``, in registration order."""
    seen: list[Handler] = []
    for registered_model, fn in _REGISTRY:
        if issubclass(model, registered_model) and fn not in seen:
            seen.append(fn)
    return seen


def registered() -> list[tuple[type[BaseModel], Handler]]:
    return list(_REGISTRY)


def unregister(fn: Handler) -> None:
    """Remove a handler from every model it was registered for."""
    _REGISTRY[:] = [(model, registered_fn) for model, registered_fn in _REGISTRY if registered_fn is not fn]
