"""One structured log line per event outcome: the contract the alert is written against.

Each line is ``<kind> {json}`` where ``kind`` is ``dialogporten.ingest``,
``dialogporten.process`` (or another ``dialogporten.*`` kind) and the JSON
object's FIRST key is always ``outcome``, serialised without spaces. So an
alert can match ``Message startswith 'dialogporten.process {"outcome":"poisoned"'``
without parsing the line, and ``parse_json(substring(Message, indexof(Message, "{")))``
still reads the rest. The JSON always has ``event_id``, ``event_type`` and
``dialog_id``.

Every field may come from an attacker (an event id is whatever the sender
wrote), so every line is bounded and ASCII: strings are cut at
:data:`MAX_FIELD_CHARS` (with a note of how much was cut), nesting and list
lengths are bounded, non-ASCII is escaped, and a line that would still exceed
:data:`MAX_LINE_CHARS` is reduced to its ids. Application Insights cuts trace
messages at 32,768 characters; a cut line would no longer be JSON.
"""

from __future__ import annotations

import json
import logging
import math
from enum import StrEnum
from typing import Any, Final

LOGGER_NAME: Final = "dialogporten"
logger = logging.getLogger(LOGGER_NAME)

INGEST: Final = "dialogporten.ingest"
PROCESS: Final = "dialogporten.process"

#: Longest string value kept whole; a longer one is cut and marked. A GUID is 36, a
#: Dialogporten ``source`` about 150: real values pass untouched.
MAX_FIELD_CHARS: Final = 512
#: Longest free-text value (reasons, details) kept whole.
MAX_TEXT_CHARS: Final = 2048
#: Keys, list items and nesting depth kept per value.
MAX_ITEMS: Final = 32
MAX_DEPTH: Final = 4
#: Well under Application Insights' 32,768-character cut, whatever the input.
MAX_LINE_CHARS: Final = 16_384
_TEXT_FIELDS: Final = frozenset({"reason", "detail", "warning", "note", "errors"})
_IDS: Final = ("event_id", "event_type", "dialog_id")


class Outcome(StrEnum):
    """Every outcome a log line can carry. ``POISONED`` and ``PARKED`` alert."""

    # ingest (the webhook)
    ACCEPTED = "accepted"
    PARKED = "parked"
    VALIDATED = "validated"
    REJECTED = "rejected"
    FAILED = "failed"
    # processing (the queue functions)
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    #: Put back until a handler's RetryLater moment, no attempt spent ("not now" is not failure).
    DEFERRED = "deferred"
    POISONED = "poisoned"
    # the dialog state: an event disagrees on an attribute that never changes
    CONFLICT = "conflict"
    # housekeeping and operator tools
    PURGED = "purged"
    SWEPT = "swept"
    REROUTED = "rerouted"


#: The outcomes the alert fires on.
ALERTING: Final = frozenset({Outcome.POISONED, Outcome.PARKED})


def bound_text(value: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``value`` cut to ``limit`` characters, with how much was cut."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}...[+{len(value) - limit} chars]"


def _bounded(value: Any, limit: int, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return bound_text(value, limit)
    if depth >= MAX_DEPTH:
        return bound_text(repr(value), limit)
    if isinstance(value, dict):
        items = list(value.items())
        out = {bound_text(str(k), 64): _bounded(v, limit, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = f"+{len(items) - MAX_ITEMS} keys"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        bounded = [_bounded(v, limit, depth + 1) for v in seq[:MAX_ITEMS]]
        if len(seq) > MAX_ITEMS:
            bounded.append(f"...+{len(seq) - MAX_ITEMS} items")
        return bounded
    return bound_text(str(value), limit)


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":"))


def event_line(kind: str, outcome: Outcome | str, fields: dict[str, Any]) -> str:
    """``<kind> {"outcome":...,...}``: bounded, ASCII, ``outcome`` first.

    ``outcome`` is one of :class:`Outcome`; a plain string is written as it is (bounded),
    since a log call must never be what fails an event.
    """
    payload: dict[str, Any] = {"outcome": bound_text(str(outcome), 64)}
    for key in _IDS:
        payload[key] = None
    for key, value in list(fields.items())[: MAX_ITEMS * 2]:
        if key == "outcome":
            continue  # never displaced from the first place
        limit = MAX_TEXT_CHARS if key in _TEXT_FIELDS else MAX_FIELD_CHARS
        payload[bound_text(str(key), 64)] = _bounded(value, limit)
    line = f"{bound_text(kind, 64)} {_dumps(payload)}"
    if len(line) <= MAX_LINE_CHARS:
        return line
    # Escaping can grow a bounded string sixfold: keep what the alert and the operator need.
    reduced: dict[str, Any] = {key: _bounded(payload[key], 64) for key in ("outcome", *_IDS, "queue") if key in payload}
    reduced["truncated"] = f"line of {len(line)} chars reduced to its ids"
    return f"{bound_text(kind, 64)} {_dumps(reduced)}"


def log_event(kind: str, outcome: Outcome | str, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):  # build the JSON only when someone will read it
        logger.log(level, event_line(kind, outcome, fields))
