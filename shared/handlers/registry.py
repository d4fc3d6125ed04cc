"""The handler registry: which typed functions run for which event model, and what they are given.

``@handles(Model, ...)`` registers a function for those models and for every
subclass of them, so ``@handles(ActivityEvent)`` runs for all activity types
and ``@handles(DialogCreated)`` for one. Several handlers may run for one
event: they run in registration order, the defaults (in this package's
family modules) first.

A handler takes the event, and optionally a second argument, the
:class:`HandlerContext`: the storage clients and settings the queue function
was given, so that a handler never reaches for process-wide clients that may
point elsewhere::

    @handles(DialogCreated)
    def on_created(event: DialogCreated, ctx: HandlerContext) -> None:
        ctx.clients.tables.get_table_client("cases")...

Raise :class:`shared.errors.CannotSucceed` to poison the event now (with a
reason); raise anything else to have it retried.

``ctx.fetch_dialog(event)`` returns the whole dialog the event is about, typed
(:class:`shared.dialogporten.Dialog`), from Dialogporten's service-owner API
when Maskinporten is configured; see :mod:`shared.dialogporten` for what each
answer does to the message.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from shared.dialogporten import FetchedDialog
    from shared.settings import Settings
    from shared.storage import StorageClients

__all__ = ["Handler", "HandlerContext", "discover", "handlers_for", "handles", "invoke", "registered", "unregister"]

Handler = Callable[..., None]
F = TypeVar("F", bound=Callable[..., None])

_REGISTRY: Final[list[tuple[type[BaseModel], Handler]]] = []
_WANTS_CONTEXT: Final[dict[Handler, bool]] = {}


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What processing gives a handler besides the event."""

    clients: StorageClients
    """The storage clients of this invocation (the queue function's account)."""
    settings: Settings
    queue: str
    """The queue the message came from."""
    dequeue_count: int
    """Which attempt this is (1 = first); the last is host.json's ``maxDequeueCount``."""
    message_id: str | None = None

    def fetch_dialog(self, event: Any) -> FetchedDialog:
        """The dialog ``event`` is about (or a dialog id), fetched now from Dialogporten.

        Returns a :class:`~shared.dialogporten.Dialog`, or a :class:`~shared.dialogporten.DeletedDialog`
        (both have ``.deleted``). Raises by branch: not yet visible puts the message back until it is,
        503 and the like are retried, other refusals poison the message with the reason, and with no
        Maskinporten settings :class:`~shared.dialogporten.EnrichmentNotConfigured` poisons it.
        """
        from shared import enrichment
        from shared.dialogporten import EnrichmentNotConfigured

        cfg = self.settings.enrichment
        if not cfg.enabled:
            raise EnrichmentNotConfigured(
                f"a handler fetches the dialog, but Maskinporten is not configured: set {cfg.missing}"
            )
        dialog_id = event if isinstance(event, str) else event.dialog_id
        return enrichment.dialogporten(cfg).get_dialog(dialog_id)


def _wants_context(fn: Handler) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: the event only
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def handles(*models: type[BaseModel]) -> Callable[[F], F]:
    """Register the decorated function as a handler of ``models`` (and their subclasses)."""
    if not models:
        raise TypeError("@handles needs at least one event model, e.g. @handles(DialogCreated)")
    for model in models:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"@handles takes event model classes, got {model!r}")

    def register(fn: F) -> F:
        _WANTS_CONTEXT[fn] = _wants_context(fn)
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


def invoke(fn: Handler, event: Any, ctx: HandlerContext) -> None:
    """Call ``fn`` with the event, and the context if it takes a second argument."""
    if _WANTS_CONTEXT.get(fn, False):
        fn(event, ctx)
    else:
        fn(event)


def registered() -> list[tuple[type[BaseModel], Handler]]:
    return list(_REGISTRY)


def unregister(fn: Handler) -> None:
    """Remove a handler from every model it was registered for."""
    _REGISTRY[:] = [(model, registered_fn) for model, registered_fn in _REGISTRY if registered_fn is not fn]
    _WANTS_CONTEXT.pop(fn, None)


def discover(package: str, path: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Import every module of ``package`` (found on ``path``) but ``skip``; returns their names in order.

    A module dropped into the package registers its handlers without being named
    anywhere. A module that fails to import fails the import of the package: loudly,
    at startup, instead of its handlers silently never running.
    """
    skipped = set(skip)
    names = sorted(m.name for m in pkgutil.iter_modules(list(path)) if m.name not in skipped)
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
