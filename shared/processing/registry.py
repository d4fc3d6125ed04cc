"""The handler registry: which typed functions run for which event model, and what they are given.

``@handles(Model, ...)`` marks a function as a handler of those models and of every subclass of them, so
``@handles(ActivityEvent)`` runs for all activity types and ``@handles(DialogCreated)`` for one. The mark
is all the decorator does: a :class:`Registry`, an instance the app owns, finds marked functions by
importing the handler package's modules (:meth:`Registry.discover`), on the first queue message, not when
the app is indexed. :func:`app_registry` builds the app's: the default dialog-state handler first (added
once, by the app), then every handler of ``shared/handlers/`` in module-name order and, within a module,
in the order they are written. Several handlers may run for one event, in that order.

A handler takes the event, and optionally a second argument, the :class:`HandlerContext`: the storage
clients and settings the queue function was given, so that a handler never reaches for process-wide
clients that may point elsewhere::

    @handles(DialogCreated)
    def on_created(event: DialogCreated, ctx: HandlerContext) -> None:
        ctx.clients.table("cases")...  # built once per name

Raise :class:`shared.errors.CannotSucceed` to poison the event now (with a reason); raise anything else to
have it retried.

``ctx.fetch_dialog(event)`` returns the whole dialog the event is about, typed
(:class:`shared.altinn.dialogporten.Dialog`), from Dialogporten's service-owner API when Maskinporten is
configured; see :mod:`shared.altinn.dialogporten` for what each answer does to the message.

Outside effects
---------------
A handler is taken to have *outside effects* (a call to another system, a row in your own table) unless it
says otherwise, and processing then wraps the event in an idempotency claim
(:mod:`shared.stores.idempotency`), kept in the event's own row of the dialog state: its insert replaces the
default handler's, and its completion is one more storage request per event; the handler runs once per
event even when the queue delivers it again. ``@handles(Model, effects=False)`` declares a handler whose
work is idempotent by construction or free of effects, like the default dialog-state handler, whose one
insert per event is its own exactly-once step. When no handler of an event has effects, no claim is made:
such a handler may run again for a redelivered event, and may return ``False`` to say that the event had
been applied before (processing then logs a ``duplicate``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, overload

from pydantic import BaseModel

if TYPE_CHECKING:
    from shared.altinn.dialogporten import Dialog
    from shared.settings import Settings
    from shared.stores.clients import StorageClients

__all__ = [
    "HANDLERS_PACKAGE",
    "Binding",
    "Handler",
    "HandlerContext",
    "Registration",
    "Registry",
    "app_registry",
    "handles",
]

Handler = Callable[..., object]
M = TypeVar("M", bound=BaseModel)

#: The user's room: every module in it is imported and its marked functions registered.
HANDLERS_PACKAGE: Final = "shared.handlers"
#: Where ``@handles`` leaves its mark on a function: ``[(models, effects), ...]``.
_MARK: Final = "__dialogporten_handles__"


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

    def fetch_dialog(self, event: Any) -> Dialog:
        """The dialog ``event`` is about (or a dialog id), fetched now from Dialogporten's service-owner API.

        Returns a :class:`~shared.altinn.dialogporten.Dialog`, deleted (``.deleted``) and not yet visible
        (``.is_visible``, ``.visible_from``) ones too. Raises by branch: a maintenance window puts the
        message back until its announced end (no attempt spent), other 503s are retried, a dialog that is
        not there or not your organisation's poisons the message with the reason, and with no Maskinporten
        settings :class:`~shared.errors.EnrichmentNotConfigured` poisons it.
        """
        from shared.altinn import clients
        from shared.errors import EnrichmentNotConfigured

        cfg = self.settings.maskinporten
        if not cfg.enabled:
            raise EnrichmentNotConfigured(
                f"a handler fetches the dialog, but Maskinporten is not configured: set {cfg.missing}"
            )
        dialog_id = event if isinstance(event, str) else event.dialog_id
        return clients.dialogporten(cfg).get_dialog(dialog_id)


def _wants_context(fn: Handler) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: the event only
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


class Registration(Generic[M]):
    """What ``@handles(...)`` returns: a decorator typed by the models it registers for.

    Like the parser overloads of Powertools for AWS Lambda, the types carry the contract: the handler must
    accept the event model (for several models, their closest common base, which is what mypy infers for
    ``M``), with or without a :class:`HandlerContext`. mypy rejects ``@handles(DialogCreated)`` on a
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
        marks: list[tuple[tuple[type[BaseModel], ...], bool]] = list(getattr(fn, _MARK, ()))
        marks.append((self._models, self._effects))
        try:
            setattr(fn, _MARK, marks)
        except AttributeError:
            raise TypeError(f"@handles decorates functions, not {fn!r}") from None
        return fn


def handles(model: type[M], /, *more: type[M], effects: bool = True) -> Registration[M]:
    """Mark the decorated function as a handler of the given models (and their subclasses).

    ``effects=False`` declares that it has no outside effects, so it needs no idempotency claim
    (see the module doc).
    """
    models = (model, *more)
    for each in models:
        if not (isinstance(each, type) and issubclass(each, BaseModel)):
            raise TypeError(f"@handles takes event model classes, got {each!r}")
    return Registration(models, effects)


@dataclass(frozen=True, slots=True)
class Binding:
    """One handler, the models it runs for, whether it has outside effects, and whether it takes the context."""

    fn: Handler
    models: tuple[type[BaseModel], ...]
    effects: bool
    wants_context: bool

    def __call__(self, event: Any, ctx: HandlerContext) -> object:
        """Call the handler with the event, and the context if it takes a second argument; its return value."""
        if self.wants_context:
            return self.fn(event, ctx)
        return self.fn(event)


class Registry:
    """Which handlers run for which model, in order. Thread-safe; the app owns one (:func:`app_registry`)."""

    def __init__(self) -> None:
        self._bindings: list[Binding] = []
        self._lock = threading.Lock()
        #: The modules :meth:`discover` imported, by name.
        self.discovered: tuple[str, ...] = ()

    def add(self, fn: Handler, *models: type[BaseModel], effects: bool = True) -> None:
        """Register ``fn`` for ``models`` (and their subclasses), after every handler added before."""
        with self._lock:
            self._bindings.append(Binding(fn, models, effects, _wants_context(fn)))

    def add_marked(self, fn: Handler) -> None:
        """Register ``fn`` as its ``@handles`` marks say (TypeError if it has none)."""
        marks = getattr(fn, _MARK, None)
        if not marks:
            raise TypeError(f"{fn!r} is not marked with @handles")
        for models, effects in marks:
            self.add(fn, *models, effects=effects)

    def remove(self, fn: Handler) -> None:
        with self._lock:
            self._bindings = [b for b in self._bindings if b.fn is not fn]

    def collect(self, module: ModuleType) -> list[Handler]:
        """Register every function of ``module`` marked by ``@handles``, in the order they are written."""
        marked = [
            fn
            for fn in vars(module).values()
            if callable(fn) and getattr(fn, "__module__", None) == module.__name__ and getattr(fn, _MARK, None)
        ]
        marked.sort(key=lambda fn: getattr(getattr(fn, "__code__", None), "co_firstlineno", 0))
        for fn in marked:
            self.add_marked(fn)
        return marked

    def discover(self, package: str, *, skip: Iterable[str] = ()) -> list[str]:
        """Import every module of ``package`` but ``skip`` and register what they mark; their names, in order.

        A module dropped into the package registers its handlers without being named anywhere. A module
        that fails to import fails here: loudly, on the first message, instead of its handlers silently
        never running.
        """
        root = importlib.import_module(package)
        skipped = set(skip)
        names = sorted(m.name for m in pkgutil.iter_modules(list(root.__path__)) if m.name not in skipped)
        self.collect(root)
        for name in names:
            self.collect(importlib.import_module(f"{package}.{name}"))
        self.discovered = tuple(names)
        return names

    def handlers_for(self, model: type[BaseModel]) -> list[Binding]:
        """Every handler that runs for an event of ``model``, in registration order (each once)."""
        with self._lock:
            bindings = list(self._bindings)
        chosen: dict[Handler, Binding] = {}
        for binding in bindings:
            if issubclass(model, binding.models):
                seen = chosen.get(binding.fn)
                if seen is None or (binding.effects and not seen.effects):
                    chosen[binding.fn] = binding
        return list(chosen.values())


def app_registry(package: str = HANDLERS_PACKAGE) -> Registry:
    """The app's registry: the default dialog-state handler, registered once here, then the user's handlers."""
    from shared.events.models import DialogportenEvent
    from shared.processing.defaults import keep_dialog_state

    registry = Registry()
    registry.add(keep_dialog_state, DialogportenEvent, effects=False)
    registry.discover(package)
    return registry
