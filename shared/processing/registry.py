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
        ctx.clients.table("cases")...  # built once per name

Raise :class:`shared.errors.CannotSucceed` to poison the event now (with a
reason); raise anything else to have it retried.

``ctx.fetch_dialog(event)`` returns the whole dialog the event is about, typed
(:class:`shared.altinn.dialogporten.Dialog`), from Dialogporten's service-owner API
when Maskinporten is configured; see :mod:`shared.altinn.dialogporten` for what each
answer does to the message.

Outside effects
---------------
A handler is taken to have *outside effects* (a call to another system, a row
in your own table) unless it says otherwise, and processing then wraps the
event in an idempotency claim (:mod:`shared.stores.idempotency`): two more storage
requests per event, and the handler runs once per event even when the queue
delivers it again. ``@handles(Model, effects=False)`` declares a handler
whose work is idempotent by construction or free of effects, like the default
dialog-state handlers, whose one insert per event is its own exactly-once
step. When no handler of an event has effects, no claim is made: such a
handler may run again for a redelivered event, and may return ``False`` to say
that the event had been applied before (processing then logs a ``duplicate``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, overload

from pydantic import BaseModel

if TYPE_CHECKING:
    from shared.altinn.dialogporten import FetchedDialog
    from shared.settings import Settings
    from shared.stores.clients import StorageClients

__all__ = [
    "Handler",
    "HandlerContext",
    "Registration",
    "discover",
    "handlers_for",
    "handles",
    "has_effects",
    "invoke",
    "unregister",
]

Handler = Callable[..., object]
M = TypeVar("M", bound=BaseModel)

_REGISTRY: Final[list[tuple[type[BaseModel], Handler]]] = []
_WANTS_CONTEXT: Final[dict[Handler, bool]] = {}
_EFFECT_FREE: Final[set[Handler]] = set()


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

        Returns a :class:`~shared.altinn.dialogporten.Dialog`, or a :class:`~shared.altinn.dialogporten.DeletedDialog`
        (both have ``.deleted``). Raises by branch: not yet visible puts the message back until it is,
        503 and the like are retried, other refusals poison the message with the reason, and with no
        Maskinporten settings :class:`~shared.altinn.dialogporten.EnrichmentNotConfigured` poisons it.
        """
        from shared.altinn import clients as enrichment
        from shared.altinn.dialogporten import EnrichmentNotConfigured

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


class Registration(Generic[M]):
    """What ``@handles(...)`` returns: a decorator typed by the models it registers for.

    Like the parser overloads of Powertools for AWS Lambda, the types carry the
    contract: the handler must accept the event model (for several models, their
    closest common base, which is what mypy infers for ``M``), with or without a
    :class:`HandlerContext`. mypy rejects ``@handles(DialogCreated)`` on a
    function that takes an ``ActivityEvent``.
    """

    __slots__ = ("_effects", "_models")

    def __init__(self, models: tuple[type[M], ...], effects: bool = True) -> None:
        self._models = models
        self._effects = effects

    @overload
    def __call__(self, fn: Callable[[M], object], /) -> Callable[[M], object]: ...
    @overload
    def __call__(self, fn: Callable[[M, HandlerContext], object], /) -> Callable[[M, HandlerContext], object]: ...
    def __call__(self, fn: Handler, /) -> Handler:
        _WANTS_CONTEXT[fn] = _wants_context(fn)
        if self._effects:
            _EFFECT_FREE.discard(fn)
        else:
            _EFFECT_FREE.add(fn)
        for model in self._models:
            if (model, fn) not in _REGISTRY:
                _REGISTRY.append((model, fn))
        return fn


def handles(model: type[M], /, *more: type[M], effects: bool = True) -> Registration[M]:
    """Register the decorated function as a handler of the given models (and their subclasses).

    ``effects=False`` declares that it has no outside effects, so it needs no idempotency claim
    (see the module doc).
    """
    models = (model, *more)
    for each in models:
        if not (isinstance(each, type) and issubclass(each, BaseModel)):
            raise TypeError(f"@handles takes event model classes, got {each!r}")
    return Registration(models, effects)


def handlers_for(model: type[BaseModel]) -> list[Handler]:
    """Every handler that runs for an event of ``model``, in registration order."""
    seen: list[Handler] = []
    for registered_model, fn in _REGISTRY:
        if issubclass(model, registered_model) and fn not in seen:
            seen.append(fn)
    return seen


def has_effects(fn: Handler) -> bool:
    """Whether ``fn`` may have outside effects (the default), so that processing claims the event for it."""
    return fn not in _EFFECT_FREE


def invoke(fn: Handler, event: Any, ctx: HandlerContext) -> object:
    """Call ``fn`` with the event, and the context if it takes a second argument; its return value."""
    if _WANTS_CONTEXT.get(fn, False):
        return fn(event, ctx)
    return fn(event)


def unregister(fn: Handler) -> None:
    """Remove a handler from every model it was registered for."""
    _REGISTRY[:] = [(model, registered_fn) for model, registered_fn in _REGISTRY if registered_fn is not fn]
    _WANTS_CONTEXT.pop(fn, None)
    _EFFECT_FREE.discard(fn)


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
