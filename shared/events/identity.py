"""An event's identity: ``source`` + ``id``, as CloudEvents 1.0 defines it.

"Producers MUST ensure that source + id is unique for each distinct event"; the published Dialogporten
examples reuse one ``id`` for different events. Everything that recognises an event again (the dialog
state's rows, the idempotency records) keys it on :func:`event_key`.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["event_key"]


def event_key(source: str, event_id: str) -> str:
    """The identity of a CloudEvent, ``source`` + ``id``, as one fixed-length key (a digest of both).

    JSON-encoding the pair keeps it unambiguous: no (source, id) pair encodes like another.
    """
    pair = json.dumps([source, event_id], ensure_ascii=True, separators=(",", ":"))
    return "ce-" + hashlib.sha256(pair.encode("ascii")).hexdigest()
