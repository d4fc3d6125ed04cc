"""Timer schedules as the host reads them: when does a timer function fire next.

Schedules are NCRONTAB with seconds (six fields: second minute hour day month day-of-week),
the format the host reads, or a TimeSpan (``hh:mm:ss``), which the host accepts on App Service
plans only. Rules followed, from the Timer trigger reference (learn.microsoft.com,
azure-functions/functions-bindings-timer) and NCrontab, the parser the extension uses:

- six fields; ``*``, numbers, ``a-b`` ranges, ``*/n`` and ``a-b/n`` steps, ``,`` lists;
  month and day-of-week names (``Jan``, ``Mon``); day-of-week 0-6 with 0 = Sunday;
- a time must match the day-of-month *and* the day-of-week field (NCrontab ANDs them,
  unlike Vixie cron);
- UTC, the host's default (the runner does not read ``WEBSITE_TIME_ZONE`` or ``TZ``).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from devtools.runner.config import ConfigError, parse_timespan

#: Month and day names, abbreviated or in full, as NCrontab accepts them; day_abbr starts on Monday.
_MONTHS = {n.lower(): i for names in (calendar.month_abbr, calendar.month_name) for i, n in enumerate(names) if n}
_DAYS = {n.lower(): (i + 1) % 7 for names in (calendar.day_abbr, calendar.day_name) for i, n in enumerate(names)}
#: (name, lowest, highest, names) per field, in NCRONTAB order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
#: No occurrence within this many years means none ever (``0 0 0 30 Feb *``).
_HORIZON_YEARS = 28
#: A shorter TimeSpan would keep a thread busy firing; no real schedule wants one.
_MIN_INTERVAL = 1.0


class Schedule(Protocol):
    @property
    def text(self) -> str: ...

    def next_after(self, instant: datetime) -> datetime: ...


def _value(token: str, low: int, high: int, names: dict[str, int], what: str) -> int:
    if token.lower() in names:
        return names[token.lower()]
    if not token.isdigit():
        raise ConfigError(f"{what}: {token!r} is not a number")
    number = int(token)
    if not low <= number <= high:
        raise ConfigError(f"{what}: {number} is outside {low}-{high}")
    return number


def _field(text: str, low: int, high: int, names: dict[str, int], what: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ConfigError(f"{what}: empty list item in {text!r}")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ConfigError(f"{what}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _value(a, low, high, names, what), _value(b, low, high, names, what)
            if first > last:
                raise ConfigError(f"{what}: range {base!r} runs backwards")
        else:
            first = _value(base, low, high, names, what)
            last = high if slash else first  # NCrontab reads `5/15` as 5-max/15
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed six-field NCRONTAB expression."""

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        parts = text.split()
        if len(parts) != 6:
            raise ConfigError(
                f"schedule {text!r}: expected 6 fields (NCRONTAB with seconds: "
                f"second minute hour day month day-of-week), got {len(parts)}"
            )
        fields = [
            _field(part, low, high, names, f"schedule {text!r}, {name}")
            for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
        ]
        parsed = cls(
            text,
            tuple(sorted(fields[0])),
            tuple(sorted(fields[1])),
            tuple(sorted(fields[2])),
            fields[3],
            fields[4],
            fields[5],
        )
        parsed.next_after(datetime.now(UTC))  # refuse `30 Feb` at startup, not at the first wait
        return parsed

    def _day_matches(self, day: date) -> bool:
        return day.month in self.months and day.day in self.days and (day.weekday() + 1) % 7 in self.weekdays

    def _first_time_from(self, start: time) -> time | None:
        for h in self.hours:
            if h < start.hour:
                continue
            for m in self.minutes:
                if (h, m) < (start.hour, start.minute):
                    continue
                for s in self.seconds:
                    if (h, m, s) >= (start.hour, start.minute, start.second):
                        return time(h, m, s)
        return None

    def next_after(self, instant: datetime) -> datetime:
        """The first occurrence strictly after ``instant`` (UTC, whole seconds)."""
        start = instant.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        day, earliest = start.date(), start.time()
        horizon = date(min(day.year + _HORIZON_YEARS, 9999), 1, 1)
        while day < horizon:
            if self._day_matches(day):
                found = self._first_time_from(earliest)
                if found is not None:
                    return datetime.combine(day, found, UTC)
            day += timedelta(days=1)
            earliest = time(0, 0, 0)
        raise ConfigError(f"schedule {self.text!r} never occurs")


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule (``00:05:00``): every interval, counted from the previous occurrence."""

    text: str
    seconds: float

    def next_after(self, instant: datetime) -> datetime:
        return instant + timedelta(seconds=self.seconds)


def parse_schedule(text: str) -> Schedule:
    if len(text.split()) == 1 and ":" in text:
        seconds = parse_timespan(text, f"schedule {text!r}")
        if seconds < _MIN_INTERVAL:
            raise ConfigError(f"schedule {text!r}: a TimeSpan schedule must be at least 00:00:01")
        return IntervalSchedule(text, seconds)
    return CronSchedule.parse(text)
