"""Typed events: every catalog type parses into its model with the parts a handler needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.events import models as events
from shared.events.catalog import BY_TYPE, CATALOG, EventType, Family
from shared.events.models import (
    ActivityEvent,
    ActivitySignatureProvided,
    DialogCreated,
    DialogEvent,
    EventError,
    TransmissionCreated,
    TransmissionEvent,
    parse_event,
    parse_time,
    time_key,
)
from tests.conftest import FIXTURE_DIALOG, FIXTURE_PARTY, FIXTURES, fixture_for, fixture_name, load_fixture


@pytest.mark.parametrize("row", CATALOG, ids=lambda r: r.type)
def test_every_catalog_type_parses_into_its_own_model(row: Any) -> None:
    obj = fixture_for(row.type)
    event = parse_event(obj)
    assert type(event) is events.MODELS[row.type]
    assert event.family is row.family
    assert event.id == obj["id"]
    assert event.dialog_id == "019ebbb5-ac51-75ab-a98b-786e3581350e"
    assert event.party == "urn:altinn:person:identifier-no:23905497111"
    assert event.service_resource == "super-simple-service"
    assert event.time_raw == obj["time"]
    if row.family is Family.ACTIVITY:
        assert isinstance(event, ActivityEvent)
        assert event.activity_id == obj["data"]["activityId"] == obj["source"].rsplit("/", 1)[1]
    if row.family is Family.TRANSMISSION:
        assert isinstance(event, TransmissionEvent)
        assert event.transmission_id == obj["source"].rsplit("/", 1)[1]
        assert event.data is not None
        assert event.data.sender_type == "ServiceOwner"


def test_a_real_tt02_event_without_data_parses() -> None:
    event = parse_event(load_fixture("tt02-dialog-created.json"))
    assert isinstance(event, DialogCreated)
    assert event.data is None
    assert event.time == datetime(2026, 3, 16, 11, 43, 32, 413659, tzinfo=UTC)
    assert event.time_key == "2026-03-16T11:43:32.4136593Z"


def test_the_seed_examples_parse_despite_their_typos() -> None:
    created = parse_event(load_fixture("seed-created.json"))
    assert isinstance(created, DialogEvent)
    assert created.data is not None
    assert (created.data.process, created.data.preceding_process) == (
        "urn:some:process:id",
        "urn:some:preceding:process:id",
    )
    assert created.party == "urn:altinn:organization:identifier-no::991825827"  # kept as received
    signed = parse_event(load_fixture("seed-activity-signature-provided.json"))
    assert isinstance(signed, ActivitySignatureProvided)
    assert signed.activity_id == "21241c7e-819f-462b-b8a4-d5d32352311a"
    assert signed.data.extended_activity_type == "additional-info-received"


def test_unknown_attributes_and_data_fields_are_kept_and_round_trip() -> None:
    obj = load_fixture("transmission-created.json")
    obj["data"]["transmissionId"] = "7e1e7a5b-0000-4000-8000-000000000001"
    obj["data"]["futureField"] = {"nested": [1, 2]}
    obj["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = parse_event(obj)
    assert isinstance(event, TransmissionCreated)
    assert event.model_extra == {"traceparent": obj["traceparent"]}
    assert event.data is not None
    assert event.data.model_extra is not None
    assert event.data.model_extra["futureField"] == {"nested": [1, 2]}
    assert event.transmission_id == "7e1e7a5b-0000-4000-8000-000000000001"  # data wins over source
    dumped = event.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["data"] == obj["data"]
    assert dumped["traceparent"] == obj["traceparent"]


@pytest.mark.parametrize(
    ("raw", "key", "micro"),
    [
        ("2026-03-16T11:43:32.4136593Z", "2026-03-16T11:43:32.4136593Z", 413659),
        ("2026-03-16T11:43:32Z", "2026-03-16T11:43:32.0000000Z", 0),
        ("2026-03-16T11:43:32.5z", "2026-03-16T11:43:32.5000000Z", 500000),
        ("2026-03-16T12:43:32.123456789+01:00", "2026-03-16T11:43:32.1234567Z", 123456),
        ("2026-03-16T00:13:32.1-02:30", "2026-03-16T02:43:32.1000000Z", 100000),
    ],
)
def test_time_accepts_dotnet_precision_and_offsets(raw: str, key: str, micro: int) -> None:
    assert time_key(raw) == key
    assert parse_time(raw).microsecond == micro
    assert parse_time(raw).tzinfo is UTC


def test_time_key_orders_events_that_datetime_cannot_tell_apart() -> None:
    first, second = "2026-03-16T11:43:32.4136593Z", "2026-03-16T11:43:32.4136594Z"
    assert parse_time(first) == parse_time(second)
    assert time_key(first) < time_key(second)


@pytest.mark.parametrize("bad", ["2018-04-05T18:31Z", "2026-03-16 11:43:32Z", "2026-03-16T11:43:32", "yesterday"])
def test_time_that_is_not_rfc3339_is_rejected(bad: str) -> None:
    obj = load_fixture("dialog-created.json") | {"time": bad}
    with pytest.raises(EventError, match="time"):
        parse_event(obj)


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda o: o.update(resourceinstance="not-a-guid"), "resourceinstance"),
        (lambda o: o["data"].pop("activityId"), "activityId"),
        (lambda o: o.pop("data"), "data"),
        (lambda o: o.pop("time"), "time"),
        (lambda o: o.pop("subject"), "subject"),
        (lambda o: o.update(specversion="0.3"), "specversion"),
        (lambda o: o.update(type="dialogporten.dialog.activity.nope.v1"), "unknown event type"),
    ],
    ids=[
        "non-guid-dialog",
        "activity-without-activityId",
        "activity-without-data",
        "no-time",
        "no-subject",
        "specversion",
        "unknown-type",
    ],
)
def test_events_that_can_never_match_their_model_are_refused(mutate: Any, complaint: str) -> None:
    obj = load_fixture("activity-payment-made.json")
    mutate(obj)
    with pytest.raises(EventError, match=complaint):
        parse_event(obj)


def test_an_event_on_the_wrong_queue_is_refused() -> None:
    with pytest.raises(EventError, match="does not belong"):
        parse_event(load_fixture("dialog-created.json"), expected_type="dialogporten.dialog.deleted.v1")


def test_the_catalog_and_the_models_agree_both_ways() -> None:
    assert set(events.MODELS) == {row.type for row in CATALOG}
    defined = {
        name
        for name, value in vars(events).items()
        if isinstance(value, type)
        and issubclass(value, events.DialogportenEvent)
        and value not in (events.DialogportenEvent, events.DialogEvent, events.TransmissionEvent, events.ActivityEvent)
    }
    assert defined == {row.model_name for row in CATALOG}


def test_events_are_immutable() -> None:
    event = parse_event(load_fixture("dialog-created.json"))
    with pytest.raises(ValueError, match="frozen"):
        event.id = "other"


def test_every_per_type_fixture_file_is_of_a_catalog_type() -> None:
    # A file the loader's naming rule does not reach would silently stop being tested.
    examples = {"tt02-dialog-created.json", "validate-subscription.json"}
    per_type = {p.name for p in FIXTURES.glob("*.json") if p.name not in examples and not p.name.startswith("seed-")}
    assert per_type <= {fixture_name(row.type) for row in CATALOG}
    for name in per_type:
        assert load_fixture(name)["type"] in BY_TYPE


def test_a_type_with_no_recording_gets_a_sample_of_the_same_dialog(monkeypatch: pytest.MonkeyPatch) -> None:
    new_type = "dialogporten.dialog.activity.not-recorded.v1"
    assert not (FIXTURES / fixture_name(new_type)).exists()
    monkeypatch.setitem(BY_TYPE, new_type, EventType(new_type, Family.ACTIVITY, "ActivityCreated", "x"))
    sample = fixture_for(new_type)
    assert sample["id"] == fixture_for(new_type)["id"]  # the same id each time: a test can rely on it
    assert sample["type"] == new_type
    event = events.ActivityEvent.model_validate(sample)
    assert event.dialog_id == FIXTURE_DIALOG
    assert event.party == FIXTURE_PARTY
    assert event.service_resource == "super-simple-service"
