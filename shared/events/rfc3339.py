"""The one RFC 3339 ``date-time`` parser: the webhook's validation and the typed models both use it.

Two readers of one timestamp must never disagree, or an event accepted at the
webhook is refused by its model on the queue and poisoned at once.

- Seconds are required (``2018-04-05T18:31Z`` is refused); the offset is ``Z``
  or ``±HH:MM`` within range; any number of fractional digits (.NET sends 7).
- A leap second (``:60``, RFC 3339 section 5.7) is accepted where one can
  occur, at 23:59 UTC, and is read as the last instant of second 59
  (``23:59:59.9999999``): :class:`datetime.datetime` cannot hold second 60,
  and this keeps the order with every other timestamp (never before 23:59:59,
  never after the next midnight).

Spec: https://www.rfc-editor.org/rfc/rfc3339#section-5.6
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Final

from shared.errors import InvalidValue

_PATTERN: Final = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[Tt]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<frac>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)
#: .NET ticks (100 ns): the precision Dialogporten sends and ``time_key`` keeps.
TICKS_DIGITS: Final = 7
LEAP_SECOND: Final = 60


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A parsed ``date-time``: whole seconds as an aware UTC datetime, and the fraction as written."""

    whole: datetime
    fraction: str
    """The fractional digits as sent (may be longer than 7); for a leap second, 9s."""

    @property
    def utc(self) -> datetime:
        """Aware UTC, truncated to microseconds (what :class:`datetime.datetime` holds)."""
        return self.whole.replace(microsecond=int((self.fraction + "000000")[:6]))

    @property
    def key(self) -> str:
        """Full-precision (100 ns), fixed-width UTC form that sorts as time does."""
        digits = (self.fraction + "0" * TICKS_DIGITS)[:TICKS_DIGITS]
        return self.whole.strftime("%Y-%m-%dT%H:%M:%S.") + digits + "Z"


#: Real timestamps are about 30 characters; longer ones are parsed but not kept in the cache.
_CACHED_LENGTH: Final = 64


def parse(value: str) -> Timestamp:
    """Parse an RFC 3339 ``date-time``; :class:`ValueError` says why it is not one.

    Cached: validation, the clock-skew check and the typed model each read the same ``time``.
    """
    return _parse_cached(value) if len(value) <= _CACHED_LENGTH else _parse(value)


@lru_cache(maxsize=1024)
def _parse_cached(value: str) -> Timestamp:
    return _parse(value)


def _parse(value: str) -> Timestamp:
    match = _PATTERN.fullmatch(value)
    if match is None:
        raise InvalidValue("not an RFC 3339 date-time with seconds")
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
    offset = match["offset"]
    if offset in ("Z", "z"):
        tz = UTC
    else:
        off_hours, off_minutes = int(offset[1:3]), int(offset[4:6])
        if off_hours > 23 or off_minutes > 59:
            raise InvalidValue("offset out of range")
        sign = -1 if offset[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=off_hours, minutes=off_minutes))
    if hour > 23 or minute > 59 or second > LEAP_SECOND:
        raise InvalidValue("hour, minute or second out of range")
    leap = second == LEAP_SECOND
    try:
        whole = datetime(
            int(match["year"]), int(match["month"]), int(match["day"]), hour, minute, 59 if leap else second, tzinfo=tz
        ).astimezone(UTC)
    except (ValueError, OverflowError):  # February 30th; or an offset that leaves year 1..9999
        raise InvalidValue("no such date") from None
    fraction = match["frac"] or ""
    if leap:
        if (whole.hour, whole.minute) != (23, 59):
            raise InvalidValue("a leap second (:60) occurs only at 23:59 UTC")
        fraction = "9" * max(TICKS_DIGITS, len(fraction))
    return Timestamp(whole, fraction)


def is_valid(value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True
