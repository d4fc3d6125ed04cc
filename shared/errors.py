"""Every error the event path raises on purpose, in one tree with two branches.

Like the exceptions modules of Powertools for AWS Lambda's idempotency utility
and of the CloudEvents SDK, the tree says what happens next, so processing
decides by branch rather than by a list of classes::

    DialogportenError
    ├── PermanentError        poison now: retrying can never help
    │   ├── MessageError      (shared.events.messages) not JSON, not an object, claim check gone or invalid
    │   ├── EventError        (shared.events.models) does not match its type's model
    │   └── CannotSucceed     raised by a handler: "this event can never succeed"
    │   └── InsecureUrl       (an OutboundError) a token would go somewhere other than https
    └── TransientError        retry after visibilityTimeout
        ├── AlreadyInProgress (shared.stores.idempotency) another worker holds the event
        └── the other OutboundErrors (shared.altinn.http): Unreachable, DeadlineExceeded,
            RedirectRefused, ResponseTooLarge

``OutboundError`` is the base of every failure of an outside call, so a caller can catch
them all; each one sits in the branch that says what happens next.

Anything else a handler raises (a ``requests`` timeout, an ``AzureError``...)
counts as transient: the safe default is to try again, and the last attempt
poisons the message anyway.
"""

from __future__ import annotations

__all__ = [
    "CannotSucceed",
    "DeadlineExceeded",
    "DialogportenError",
    "InsecureUrl",
    "OutboundError",
    "PermanentError",
    "RedirectRefused",
    "ResponseTooLarge",
    "TransientError",
    "Unreachable",
    "is_permanent",
]


class DialogportenError(Exception):
    """Root of the app's own errors."""


class PermanentError(DialogportenError):
    """Retrying cannot help: the message goes to ``<queue>-poison`` at once, untouched, with the reason."""


class TransientError(DialogportenError):
    """Retrying may help (storage, a concurrent writer): the host delivers the message again later."""


class CannotSucceed(PermanentError):
    """Raise this from a handler when the event can never succeed, e.g. it names a case your system refuses.

    The message goes to ``<queue>-poison`` at once (no further attempts) and
    ``reason`` is logged with the event's ids. Raise anything else to retry.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutboundError(DialogportenError):
    """An outside call (Maskinporten, Altinn, Dialogporten) failed before it gave a usable answer."""


class Unreachable(OutboundError, TransientError):
    """The network failed: no connection, a reset, a TLS failure."""


class DeadlineExceeded(OutboundError, TransientError):
    """No whole answer within the request's deadline (however slowly the peer was sending)."""


class RedirectRefused(OutboundError, TransientError):
    """A 3xx answer: never followed, since the request carries a token. ``location`` is where it pointed."""

    def __init__(self, message: str, location: str | None) -> None:
        super().__init__(message)
        self.location = location


class ResponseTooLarge(OutboundError, TransientError):
    """The answer was larger than the request allows."""


class InsecureUrl(OutboundError, PermanentError):
    """Not https (plain http only to a loopback simulator), or not an absolute URL: nothing was sent."""


def is_permanent(exc: BaseException) -> bool:
    """Whether ``exc`` means "poison now" (anything outside the permanent branch is retried)."""
    return isinstance(exc, PermanentError)
