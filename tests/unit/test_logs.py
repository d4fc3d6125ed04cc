"""The log contract the alert is written against: ``<kind> {"outcome":...}``, bounded and ASCII whatever the input."""

from __future__ import annotations

import json
import logging

import pytest

from shared import logs
from shared.logs import Outcome


def payload(line: str) -> dict[str, object]:
    kind, _, rest = line.partition(" ")
    assert kind.startswith("dialogporten.")
    result: dict[str, object] = json.loads(rest)
    return result


def test_outcome_is_the_first_key_without_spaces_so_the_alert_can_match_a_prefix() -> None:
    line = logs.event_line(logs.PROCESS, Outcome.POISONED, {"event_id": "a", "queue": "q", "outcome": "handled"})
    assert line.startswith('dialogporten.process {"outcome":"poisoned",')
    assert list(payload(line))[:4] == ["outcome", "event_id", "event_type", "dialog_id"]


@pytest.mark.parametrize("field", ["event_id", "event_type", "dialog_id", "source", "reason", "queue"])
def test_a_40000_character_field_gives_a_bounded_line_that_still_parses(field: str) -> None:
    line = logs.event_line(logs.PROCESS, Outcome.POISONED, {field: "x" * 40_000})
    assert len(line) < 32_768 // 2
    assert line.startswith('dialogporten.process {"outcome":"poisoned"')
    value = payload(line)[field]
    assert isinstance(value, str)
    assert value.startswith("x" * 100)
    assert value.endswith("chars]")


def test_non_ascii_and_control_characters_are_escaped() -> None:
    line = logs.event_line(logs.INGEST, Outcome.PARKED, {"event_id": "æ\u2028\n\x00\ud800🎉"})
    assert line.isascii()
    assert "\n" not in line
    assert payload(line)["event_id"] == "æ\u2028\n\x00\ud800🎉"


def test_many_fields_deep_nesting_and_long_lists_stay_bounded() -> None:
    nested: object = "🎉" * 600
    for _ in range(50):
        nested = {"k": [nested] * 40}
    fields = {f"f{n}": "🎉" * 600 for n in range(200)} | {"errors": nested, "event_id": "🎉" * 40_000}
    line = logs.event_line(logs.INGEST, Outcome.REJECTED, fields)
    assert len(line) <= logs.MAX_LINE_CHARS
    assert line.startswith('dialogporten.ingest {"outcome":"rejected"')
    assert line.isascii()
    assert payload(line)["outcome"] == "rejected"


def test_log_event_writes_the_bounded_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger=logs.LOGGER_NAME)
    logs.log_event(logs.PROCESS, Outcome.POISONED, logging.ERROR, event_id="i" * 40_000)
    [record] = caplog.records
    assert len(record.getMessage()) < 32_768
    assert record.levelname == "ERROR"


def test_the_outcomes_are_one_enum_of_strings() -> None:
    assert Outcome("parked") is Outcome.PARKED
    assert {"handled", "duplicate", "retry", "poisoned", "accepted", "parked", "rejected", "failed"} <= {
        o.value for o in Outcome
    }
    assert logs.ALERTING == {Outcome.POISONED, Outcome.PARKED}
    assert json.dumps({"outcome": Outcome.HANDLED}) == '{"outcome": "handled"}'
