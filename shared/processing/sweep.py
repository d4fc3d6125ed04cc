"""Poison copies that never expire, also for the messages the Functions host moves itself.

Processing owns the last attempt (:mod:`shared.processing.pipeline`): it writes the
untouched message to ``<queue>-poison`` with no expiry. The host still moves a
message itself when the last attempt never returns (a timeout, a crashed
worker), and its copy gets the queue's default time to live, 7 days; the
Python host offers no setting to change that. :func:`sweep_poison_queues`
re-sends each such copy, byte for byte, with no expiry and deletes the
original: send before delete, so a crash in between leaves two copies (a
replay deduplicates) and never none. It also returns the id of every message
each queue holds after a complete pass, so that the reasons recorded for
messages no longer there can be deleted (:mod:`shared.stores.poison`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from azure.core.exceptions import ResourceNotFoundError

from shared.stores.clients import NEVER_EXPIRE

if TYPE_CHECKING:
    from azure.storage.queue import QueueMessage, QueueServiceClient

__all__ = ["SweepResult", "expires", "sweep_poison_queues"]

#: How long a message being looked at stays invisible to others (an operator's replay).
LEASE_SECONDS: Final = 120
#: A message sent with TTL -1 expires "9999-12-31T23:59:59Z" (Azure and Azurite alike).
_NEVER_YEAR: Final = 9999


def expires(message: QueueMessage) -> bool:
    """Whether the message has a finite time to live (the host's copy) rather than none (ours)."""
    return message.expires_on is None or message.expires_on.year < _NEVER_YEAR


@dataclass(frozen=True, slots=True)
class SweepResult:
    kept: int
    """Copies that already never expire."""
    renewed: list[tuple[str, str, str]]
    """(queue, id of the new copy, raw body) of each expiring copy replaced by a never-expiring one."""
    complete: bool
    """False when the time budget ran out: the next run takes the rest."""
    present: dict[str, set[str]] = field(default_factory=dict)
    """The ids of the messages of each queue the pass went all the way through (none for an absent queue)."""


def sweep_poison_queues(
    service: QueueServiceClient, queues: Iterable[str], max_seconds: float | None = None
) -> SweepResult:
    """Replace every expiring message of ``queues`` by a never-expiring copy of its exact body."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    renewed: list[tuple[str, str, str]] = []
    present: dict[str, set[str]] = {}
    kept = 0
    for name in queues:
        # No encode or decode policy: the body is moved exactly as stored (base64 and all).
        client = service.get_queue_client(name)
        held: list[QueueMessage] = []
        ours: set[str] = set()
        seen: set[str] = set()
        through = False
        try:
            # Each received message stays invisible for the lease, so the listing ends; the
            # ones kept are handed back at the end of the queue, not during it.
            for message in client.receive_messages(messages_per_page=32, visibility_timeout=LEASE_SECONDS):
                if deadline is not None and time.monotonic() > deadline:
                    held.append(message)
                    break
                if not expires(message):
                    held.append(message)
                    seen.add(message.id)
                    kept += 0 if message.id in ours else 1
                    continue
                copy = client.send_message(message.content, time_to_live=NEVER_EXPIRE).id
                ours.add(copy)
                seen.add(copy)
                client.delete_message(message)
                renewed.append((name, copy, message.content))
            else:
                through = True
        except ResourceNotFoundError:
            continue  # never created: nothing was ever poisoned there
        finally:
            for message in held:
                client.update_message(message, visibility_timeout=0)
        if through:
            present[name] = seen
        if deadline is not None and time.monotonic() > deadline:
            return SweepResult(kept, renewed, complete=False, present=present)
    return SweepResult(kept, renewed, complete=True, present=present)
