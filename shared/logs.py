"""One structured log line per event outcome.

Each line is ``<kind> {json}``: readable in a terminal, and parseable in
Application Insights with ``parse_json(substring(message, indexof(message, "{")))``
(the alert rule in ``infra/`` does exactly that). The JSON always has
``event_id``, ``event_type``, ``dialog_id`` and ``outcome``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

LOGGER_NAME: Final = "dialogporten"
logger = logging.getLogger(LOGGER_NAME)

INGEST: Final = "dialogporten.ingest"
PROCESS: Final = "dialogporten.process"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def event_line(kind: str, outcome: str, fields: dict[str, Any]) -> str:
    payload = {"outcome": outcome, **{k: _jsonable(v) for k, v in fields.items()}}
    for key in ("event_id", "event_type", "dialog_id"):
        payload.setdefault(key, None)
    return f"{kind} {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}"


def log_event(kind: str, outcome: str, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):  # build the JSON only when someone will read it
        logger.log(level, event_line(kind, outcome, fields))
