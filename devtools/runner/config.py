"""The parts of ``host.json`` and ``local.settings.json`` the runner honours, with the host's defaults.

Defaults and limits are those of ``QueuesOptions`` in the WebJobs storage-queues
extension (azure-sdk-for-net, ``Microsoft.Azure.WebJobs.Extensions.Storage.Queues``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

#: QueuePollingIntervals.Minimum / DefaultMaximum in the extension.
MIN_POLLING_INTERVAL: Final = 0.1
DEFAULT_MAX_POLLING_INTERVAL: Final = 60.0
#: Azure Storage returns at most 32 messages per Get Messages call.
MAX_BATCH_SIZE: Final = 32
#: QueueListener fetches with a 10 minute visibility and renews it at half time while the function runs.
DEFAULT_MESSAGE_LEASE: Final = 600.0

_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d+):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")


class ConfigError(ValueError):
    """host.json or local.settings.json holds something the host would refuse too."""


def parse_timespan(value: Any, what: str, *, number_unit: float | None = None) -> float:
    """A .NET TimeSpan (``[d.]hh:mm:ss[.fff]``) in seconds.

    A bare number is accepted only where the host documents one (``maxPollingInterval``
    in milliseconds); elsewhere .NET would read ``"30"`` as 30 days, which is never meant.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a TimeSpan like '00:00:30', got {value!r}")
    if isinstance(value, int | float) and number_unit is not None:
        return float(value) * number_unit
    if isinstance(value, str):
        match = _TIMESPAN.match(value.strip())
        if match:
            days = int(match["days"] or 0)
            return days * 86400 + int(match["h"]) * 3600 + int(match["m"]) * 60 + float(match["s"])
        if number_unit is not None and value.strip().isdigit():
            return int(value) * number_unit
    raise ConfigError(f"{what}: expected a TimeSpan like '00:00:30', got {value!r}")


@dataclass(frozen=True)
class QueueOptions:
    batch_size: int = 16
    new_batch_threshold: int | None = None  # None: the host's default, computed by effective_new_batch_threshold
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = DEFAULT_MAX_POLLING_INTERVAL
    message_encoding: str = "base64"

    @property
    def effective_new_batch_threshold(self) -> int:
        # The extension's default is (batchSize / 2) * processor count (1 on Consumption plans; the
        # machine's count under `func start`, which is what this runner stands in for).
        if self.new_batch_threshold is not None:
            return self.new_batch_threshold
        return (self.batch_size // 2) * (os.cpu_count() or 1)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> QueueOptions:
        known = {
            "batchSize",
            "newBatchThreshold",
            "maxDequeueCount",
            "visibilityTimeout",
            "maxPollingInterval",
            "messageEncoding",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"host.json extensions.queues: unknown setting(s) {', '.join(unknown)}")
        batch_size = _int(raw.get("batchSize", 16), "batchSize")
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ConfigError(f"host.json extensions.queues.batchSize must be 1..{MAX_BATCH_SIZE}, got {batch_size}")
        threshold = raw.get("newBatchThreshold")
        new_batch_threshold = None if threshold is None else _int(threshold, "newBatchThreshold")
        if new_batch_threshold is not None and new_batch_threshold < 0:
            raise ConfigError("host.json extensions.queues.newBatchThreshold must not be negative")
        max_dequeue = _int(raw.get("maxDequeueCount", 5), "maxDequeueCount")
        if max_dequeue < 1:
            raise ConfigError("host.json extensions.queues.maxDequeueCount must not be less than 1")
        visibility = parse_timespan(raw.get("visibilityTimeout", "00:00:00"), "visibilityTimeout")
        polling = parse_timespan(raw.get("maxPollingInterval", "00:01:00"), "maxPollingInterval", number_unit=0.001)
        if polling < MIN_POLLING_INTERVAL:
            raise ConfigError("host.json extensions.queues.maxPollingInterval must not be less than 00:00:00.1")
        encoding = str(raw.get("messageEncoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise ConfigError(f"host.json extensions.queues.messageEncoding must be base64 or none, got {encoding!r}")
        return cls(batch_size, new_batch_threshold, max_dequeue, visibility, polling, encoding)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"host.json extensions.queues.{what}: expected an integer, got {value!r}")
    return value


@dataclass(frozen=True)
class HostConfig:
    """What the runner reads from host.json; everything else in it is the real host's business."""

    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    function_timeout: float | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> HostConfig:
        extensions = raw.get("extensions") or {}
        http = extensions.get("http") or {}
        prefix = str(http.get("routePrefix", "api")).strip("/")
        queues = QueueOptions.from_json(extensions.get("queues") or {})
        timeout = raw.get("functionTimeout")
        return cls(prefix, queues, None if timeout is None else parse_timespan(timeout, "functionTimeout"))

    @classmethod
    def load(cls, path: Path) -> HostConfig:
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_json(raw)


LOCAL_SETTINGS: Final = "local.settings.json"
#: Committed; local.settings.json itself is not (it may hold a real connection string), as Core Tools projects do.
LOCAL_SETTINGS_EXAMPLE: Final = "local.settings.example.json"


def ensure_local_settings(script_root: Path) -> bool:
    """Write ``local.settings.json`` from the committed example when absent. True if it wrote one; never overwrites."""
    target, example = script_root / LOCAL_SETTINGS, script_root / LOCAL_SETTINGS_EXAMPLE
    if target.exists() or not example.exists():
        return False
    try:
        with target.open("x", encoding="utf-8") as out:  # "x": a file created meanwhile is kept, not clobbered
            out.write(example.read_text(encoding="utf-8"))
    except FileExistsError:
        return False
    return True


def load_local_settings(path: Path, environ: MutableMapping[str, str]) -> list[str]:
    """Copy ``Values`` into ``environ`` like ``func start``: a variable already set wins. Returns the names applied."""
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    if raw.get("IsEncrypted"):
        raise ConfigError(f"{path}: encrypted settings are not supported; run `func settings decrypt` first")
    applied = []
    for name, value in (raw.get("Values") or {}).items():
        if name not in environ:
            environ[name] = "" if value is None else str(value)
            applied.append(name)
    return applied
