"""What processing must agree on with the Functions host: host.json's queue trigger settings.

``maxDequeueCount`` decides which attempt is the last (processing owns it and writes
``<queue>-poison`` itself); ``visibilityTimeout`` bounds how long an in-progress
duplicate is put back for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

__all__ = ["HOST_JSON", "QueueSettings", "host_queue_settings", "read_queue_settings"]

HOST_JSON: Final = Path(__file__).resolve().parent.parent / "host.json"


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The queue trigger settings of host.json that processing must agree with."""

    max_dequeue_count: int = 5
    visibility_timeout_seconds: float = 30.0


def _timespan_seconds(value: str) -> float:
    """``hh:mm:ss`` (as host.json writes timespans) -> seconds."""
    parts = [float(p) for p in value.split(":")]
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def read_queue_settings(path: Path) -> QueueSettings:
    defaults = QueueSettings()
    try:
        queues = json.loads(path.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
    except (OSError, ValueError):
        return defaults
    return QueueSettings(
        max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
        visibility_timeout_seconds=_timespan_seconds(str(queues.get("visibilityTimeout", "00:00:30"))),
    )


@lru_cache(maxsize=1)
def host_queue_settings() -> QueueSettings:
    """host.json's queue settings, read once per process."""
    return read_queue_settings(HOST_JSON)
