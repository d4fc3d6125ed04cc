"""Every error the event path raises on purpose, in one tree with two branches.

Like the exceptions modules of Powertools for AWS Lambda's idempotency utility
and of the CloudEvents SDK, the tree says what happens next, so processing
decides by branch rather than by a list of classes::

    DialogportenError
    ├── PermanentError        poison now: retrying can never help
    │   ├── MessageError      (shared.messages) not JSON, not an object, claim check gone or invalid
    │   ├── EventError        (shared.events) does not match its type's model
    │   └── CannotSucceed     raised by a handler: "this event can never succeed"
    └── TransientError        retry after visibilityTimeout
        └── AlreadyInProgress (shared.idempotency) another worker holds the event

Anything else a handler raises (a ``requests`` timeout, an ``AzureError``...)
counts as transient: the safe default is to try again, and the last attempt
poisons the message anyway.
"""

from __future__ import annotations

__all__ = ["CannotSucceed", "DialogportenError", "PermanentError", "TransientError", "is_permanent"]


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


def is_permanent(exc: BaseException) -> bool:
    """Whether ``exc`` means "poison now" (anything outside the permanent branch is retried)."""
    return isinstance(exc, PermanentError)
