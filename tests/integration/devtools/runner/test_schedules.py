"""Timer schedules as the host reads them: six-field NCRONTAB with seconds, or a TimeSpan (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devtools.runner import ConfigError
from devtools.runner.schedules import CronSchedule, IntervalSchedule, parse_schedule


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc,arg-type]


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("0 17 3 * * *", at(2026, 11, 27, 18, 0, 0), at(2026, 11, 28, 3, 17, 0)),  # the app's daily purge
        ("0 17 3 * * *", at(2026, 11, 28, 3, 17, 0), at(2026, 11, 29, 3, 17, 0)),  # strictly after
        ("0 17 3 * * *", at(2026, 11, 28, 3, 16, 59), at(2026, 11, 28, 3, 17, 0)),
        ("*/15 * * * * *", at(2026, 1, 1, 0, 0, 14), at(2026, 1, 1, 0, 0, 15)),
        ("5/20 * * * * *", at(2026, 1, 1, 0, 0, 26), at(2026, 1, 1, 0, 0, 45)),  # NCrontab: 5-59/20
        ("0 0 */2 * * *", at(2026, 1, 1, 1, 0, 0), at(2026, 1, 1, 2, 0, 0)),
        ("0 30 9 * * 1-5", at(2026, 11, 27, 10, 0, 0), at(2026, 11, 30, 9, 30, 0)),  # Friday -> Monday
        ("0 30 9 * * Mon-Fri", at(2026, 11, 27, 10, 0, 0), at(2026, 11, 30, 9, 30, 0)),
        ("0 0 12 * * Sunday", at(2026, 11, 27, 0, 0, 0), at(2026, 11, 29, 12, 0, 0)),
        ("0 0 0 1 Jan,Jul *", at(2026, 2, 1, 0, 0, 0), at(2026, 7, 1, 0, 0, 0)),
        ("0 0 9 13 * 5", at(2026, 1, 1, 0, 0, 0), at(2026, 2, 13, 9, 0, 0)),  # day AND weekday: Friday the 13th
        ("0 0 0 29 2 *", at(2026, 3, 1, 0, 0, 0), at(2028, 2, 29, 0, 0, 0)),  # the next leap day
        ("0 5,10 0 * * *", at(2026, 1, 1, 0, 5, 0), at(2026, 1, 1, 0, 10, 0)),
        ("59 59 23 31 12 *", at(2026, 12, 31, 23, 59, 58), at(2026, 12, 31, 23, 59, 59)),
    ],
)
def test_next_occurrence(schedule: str, after: datetime, expected: datetime) -> None:
    assert parse_schedule(schedule).next_after(after) == expected


def test_fractions_of_a_second_are_dropped() -> None:
    every_second = CronSchedule.parse("* * * * * *")
    assert every_second.next_after(at(2026, 1, 1, 0, 0, 0).replace(microsecond=999_000)) == at(2026, 1, 1, 0, 0, 1)


def test_a_timespan_schedule_counts_from_the_previous_occurrence() -> None:
    schedule = parse_schedule("00:05:00")
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.next_after(at(2026, 1, 1, 0, 0, 30)) == at(2026, 1, 1, 0, 5, 30)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("0 17 3 * *", "expected 6 fields"),  # five-field cron: the host refuses it too
        ("0 0 17 3 * * *", "expected 6 fields"),
        ("60 * * * * *", "outside 0-59"),
        ("0 0 24 * * *", "outside 0-23"),
        ("0 0 0 0 * *", "outside 1-31"),
        ("0 0 0 * 13 *", "outside 1-12"),
        ("0 0 0 * * 7", "outside 0-6"),
        ("0 0 0 * Foo *", "not a number"),
        ("0 10-5 * * * *", "runs backwards"),
        ("*/0 * * * * *", "positive number"),
        ("1,,2 * * * * *", "empty list item"),
        ("0 0 0 30 Feb *", "never occurs"),
        ("00:00:00", "at least 00:00:01"),
    ],
)
def test_what_the_host_refuses_is_refused(schedule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_schedule(schedule)
