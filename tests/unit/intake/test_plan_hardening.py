"""Hostile and real-world input at the webhook core: every refusal is a precise 4xx, nothing half-accepted.

Each test starts from a reproduction of a way the webhook used to answer 5xx,
accept an event that could never be processed, or echo a huge value back.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from devtools.samples import dotnet_time, sample_event
from shared.events import cloudevent, messages, rfc3339
from shared.events import models as events
from shared.events.cloudevent import CloudEvent
from shared.intake import plan as ingest
from shared.intake.plan import Policy, Routed
from shared.intake.problems import Problem
from tests.unit.intake.test_plan import RecordingSink, post, problem

BATCH = "application/cloudevents-batch+json"
MINIMAL = b'{"specversion":"1.0","id":"1","source":"s","type":"t"'


# ----------------------------------------------------------------------------- non-finite numbers, lone surrogates


@pytest.mark.parametrize(
    "body",
    [
        MINIMAL + b',"data":1e999}',
        MINIMAL + b',"data":-1e999}',
        MINIMAL + b',"data":{"deep":[1,2,1E400]}}',
        b'{"specversion":"1.0","id":"\\ud800","source":"s","type":"t"}',
        MINIMAL + b',"data":{"a":["ok","\\udfff"]}}',
        MINIMAL + b',"data":{"\\ud800":1}}',
    ],
    ids=["1e999", "-1e999", "nested-1E400", "id-lone-surrogate", "data-lone-surrogate", "key-lone-surrogate"],
)
def test_unrepresentable_json_is_400_not_500(body: bytes) -> None:
    response, sink = post(body)
    assert response.status == 400, response.body
    assert problem(response)["type"].endswith("invalid-json")
    assert sink.count == 0


def test_a_proper_surrogate_pair_is_a_character_and_accepted() -> None:
    response, sink = post(MINIMAL + b',"data":"\\ud83d\\ude00"}')
    assert response.status == 200, response.body
    assert json.loads(sink.queues["dialogporten-unrouted"][0])["data"] == "\U0001f600"


def test_a_batch_with_one_non_finite_member_is_refused_whole() -> None:
    good = json.dumps(sample_event("dialogporten.dialog.created.v1")).encode()
    bad = MINIMAL + b',"data":1e999}'
    response, sink = post(b"[" + good + b"," + bad + b"]", BATCH)
    assert response.status == 400
    assert sink.count == 0


def test_every_member_is_serialised_before_the_first_send() -> None:
    """A member JSON cannot carry (here built past the parser) refuses the request before anything is sent."""
    good = cloudevent.normalize(sample_event("dialogporten.dialog.created.v1"))
    unstorable = cloudevent.normalize({**sample_event("dialogporten.dialog.seen.v1"), "data": float("inf")})
    routed = [Routed(good, "dialogporten-dialog-created-v1", "accepted"), Routed(unstorable, "q", "accepted")]
    with pytest.raises(Problem) as caught:
        ingest.serialize_all(routed)
    assert caught.value.status == 400
    assert caught.value.errors[0].field == "[1]"


# ----------------------------------------------------------------------------- lengths and what is echoed


@pytest.mark.parametrize("name", ["id", "type", "source", "subject", "time", "ext"])
def test_a_70000_character_attribute_is_a_clear_400_and_not_echoed_whole(name: str) -> None:
    event = sample_event("dialogporten.dialog.created.v1")
    event[name] = "a" * 70_000
    response, sink = post(event)
    assert response.status == 400
    body = problem(response)
    (error,) = [e for e in body["errors"] if e["field"] == name]
    assert "at most" in error["rule"] or "RFC 3339" in error["rule"] or "URI" in error["rule"]
    assert len(error["value"]) <= 201
    assert len(response.body) < 2_000
    assert sink.count == 0


def test_limits_are_generous_for_real_events() -> None:
    event = sample_event("dialogporten.dialog.created.v1")
    event["subject"] = "urn:altinn:person:identifier-no:" + "9" * (cloudevent.MAX_ATTRIBUTE_CHARS - 32)
    event["source"] = "https://platform.altinn.no/" + "x" * (cloudevent.MAX_URI_CHARS - 27)
    assert len(event["subject"]) == cloudevent.MAX_ATTRIBUTE_CHARS
    assert len(event["source"]) == cloudevent.MAX_URI_CHARS
    assert post(event)[0].status == 200
    event["subject"] += "9"
    assert post(event)[0].status == 400


def test_a_huge_extension_name_is_not_echoed_whole() -> None:
    event = {**sample_event("dialogporten.dialog.created.v1"), "Bad-" + "n" * 50_000: "x"}
    response, _ = post(event)
    assert response.status == 400
    assert len(response.body) < 2_000


def test_a_huge_content_type_is_not_echoed_whole() -> None:
    response, _ = post(b"{}", content_type="application/" + "x" * 10_000)
    assert response.status == 415
    assert len(response.body) < 2_000


def test_the_largest_valid_claim_check_reference_fits_one_queue_message() -> None:
    """Every summary attribute at its limit, in 4-byte characters where the rules allow them."""
    wide = "\U0001f600" * cloudevent.MAX_ATTRIBUTE_CHARS
    event = {
        "specversion": "1.0",
        "id": wide,
        "type": wide,
        "source": "https://e.org/" + "x" * (cloudevent.MAX_URI_CHARS - 14),
        "time": "2026-03-16T11:43:32." + "1" * (cloudevent.MAX_ATTRIBUTE_CHARS - 21) + "Z",
        "subject": wide,
        "resource": wide,
        "resourceinstance": wide,
        "data": "x" * 100_000,
    }
    assert cloudevent.validate(event) == []
    queue = "dialogporten-" + "q" * 43  # the longest base name a queue may have (56)
    reference = messages.claim_check_message(event, messages.claim_check_blob_name(queue), 10**6)
    assert messages.fits_inline(reference), len(reference.encode())


# ----------------------------------------------------------------------------- full matches


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", "abc\n"),
        ("type", "dialogporten.dialog.created.v1\n"),
        ("source", "https://platform.altinn.no/x\n"),
        ("time", "2026-03-16T11:43:32.4136593Z\n"),
        ("dataschema", "https://example.org/schema\n"),
        ("datacontenttype", "application/json\n"),
        ("subject", "urn:altinn:person:identifier-no:1\n"),
        ("ext", "value\n"),
        ("id", "a\u0000b"),
        ("id", "a\ufffe"),
    ],
)
def test_a_trailing_newline_or_control_character_is_refused(name: str, value: str) -> None:
    event = {"specversion": "1.0", "id": "x", "type": "t", "source": "https://example.org", name: value}
    assert [e.field for e in cloudevent.validate(event)] == [name]
    response, sink = post(event)
    assert response.status == 400
    assert sink.count == 0


def test_an_extension_name_with_a_trailing_newline_is_refused() -> None:
    event = {"specversion": "1.0", "id": "x", "type": "t", "source": "https://example.org", "ext\n": "v"}
    assert [e.field for e in cloudevent.validate(event)] == ["ext\n"]


# ----------------------------------------------------------------------------- one RFC 3339 parser, leap seconds


def test_a_leap_second_means_the_same_to_validation_and_to_the_model() -> None:
    event = sample_event("dialogporten.dialog.created.v1", time="2016-12-31T23:59:60.5Z")
    assert cloudevent.validate(event) == []
    model = events.parse_event(event)
    assert model.time == datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert model.time_raw == "2016-12-31T23:59:60.5Z"
    # It sorts after every instant of second 59 and before the next day.
    assert events.time_key("2016-12-31T23:59:59.9999998Z") < model.time_key < events.time_key("2017-01-01T00:00:00Z")
    response, sink = post(event, policy=Policy(clock=lambda: datetime(2017, 1, 1, tzinfo=UTC)))
    assert response.status == 200, response.body
    assert sink.count == 1


@pytest.mark.parametrize("value", ["2016-12-31T12:00:60Z", "2016-12-31T23:58:60Z", "2016-12-31T23:59:61Z"])
def test_a_second_60_where_no_leap_second_can_be_is_refused_by_both(value: str) -> None:
    event = sample_event("dialogporten.dialog.created.v1", time=value)
    assert [e.field for e in cloudevent.validate(event)] == ["time"]
    with pytest.raises(events.EventError):
        events.parse_event(event)


def test_a_leap_second_in_another_offset_is_found_in_utc() -> None:
    assert rfc3339.parse("2017-01-01T00:59:60+01:00").utc == datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


# ----------------------------------------------------------------------------- clock skew


def test_an_event_dated_9999_is_refused() -> None:
    event = sample_event("dialogporten.dialog.updated.v1", time="9999-12-31T23:59:59.9999999Z")
    response, sink = post(event)
    assert response.status == 400
    (error,) = problem(response)["errors"]
    assert error["field"] == "time"
    assert "ahead of the receiver's clock" in error["rule"]
    assert sink.count == 0


def test_clock_skew_bound_is_the_policys() -> None:
    now = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
    policy = Policy(max_clock_skew=timedelta(seconds=300), clock=lambda: now)
    inside = sample_event("dialogporten.dialog.created.v1", time=dotnet_time(now + timedelta(seconds=299)))
    outside = sample_event("dialogporten.dialog.created.v1", time=dotnet_time(now + timedelta(seconds=301)))
    past = sample_event("dialogporten.dialog.created.v1", time="2001-01-01T00:00:00Z")
    assert post(inside, policy=policy)[0].status == 200
    assert post(past, policy=policy)[0].status == 200
    assert post(outside, policy=policy)[0].status == 400
    batch_response, sink = post([inside, outside], BATCH, policy=policy)
    assert batch_response.status == 400
    assert [e["field"] for e in problem(batch_response)["errors"]] == ["[1].time"]
    assert sink.count == 0


def test_an_unknown_type_from_the_future_is_refused_too() -> None:
    event = {**sample_event("dialogporten.dialog.created.v1"), "type": "x.y", "time": "2999-01-01T00:00:00Z"}
    assert post(event)[0].status == 400


# ----------------------------------------------------------------------------- the type's model at ingest


@pytest.mark.parametrize(
    ("event_type", "change", "field"),
    [
        ("dialogporten.dialog.created.v1", {"resourceinstance": "not-a-guid"}, "resourceinstance"),
        ("dialogporten.dialog.created.v1", {"time": None}, "time"),
        ("dialogporten.dialog.activity.signature-provided.v1", {"data": {"process": "p"}}, "data.activityId"),
        ("dialogporten.dialog.activity.form-saved.v1", {"data": None}, "data"),
        ("dialogporten.dialog.seen.v1", {"subject": None}, "subject"),
    ],
)
def test_a_catalog_event_its_model_refuses_is_400_with_the_field(
    event_type: str, change: dict[str, Any], field: str
) -> None:
    event = {k: v for k, v in {**sample_event(event_type), **change}.items() if v is not None}
    response, sink = post(event)
    assert response.status == 400, response.body
    body = problem(response)
    assert field in [e["field"] for e in body["errors"]], body
    assert sink.count == 0


def test_models_stay_lenient_about_new_attributes_and_fields() -> None:
    event = sample_event("dialogporten.dialog.activity.signature-provided.v1")
    event["newattribute"] = "v"
    event["data"]["brandNewField"] = {"x": [1]}
    response, sink = post(event)
    assert response.status == 200, response.body
    assert json.loads(next(iter(sink.queues.values()))[0]) == event


def test_a_batch_names_the_member_its_model_refuses() -> None:
    good = sample_event("dialogporten.dialog.created.v1")
    bad = {**sample_event("dialogporten.dialog.created.v1"), "resourceinstance": "nope"}
    response, sink = post([good, bad], BATCH)
    assert response.status == 400
    assert [e["field"] for e in problem(response)["errors"]] == ["[1].resourceinstance"]
    assert sink.count == 0


# ----------------------------------------------------------------------------- binary mode without Content-Type


def test_binary_mode_without_content_type_reads_json_as_data() -> None:
    """The Python CloudEvents SDK sends no Content-Type when datacontenttype is unset."""
    event = sample_event("dialogporten.dialog.activity.form-submitted.v1")
    attributes: dict[str, Any] = {k: v for k, v in event.items() if k not in ("data", "time")}
    message = ce_http.to_binary(SdkEvent(attributes=attributes, data=event["data"]), JSONFormat())
    headers = {k.lower(): v for k, v in message.headers.items()}
    assert "content-type" not in headers
    response, sink = post(message.body, content_type=None, headers={**headers, "ce-time": event["time"]})
    assert response.status == 200, response.body
    stored = json.loads(sink.queues["dialogporten-dialog-activity-form-submitted-v1"][0])
    assert stored["data"] == event["data"]
    assert "data_base64" not in stored
    assert "datacontenttype" not in stored


def test_binary_mode_without_content_type_keeps_other_bytes_as_base64() -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "b", "ce-type": "x.y", "ce-source": "https://e.org"}
    response, sink = post(b"\xff\x00not json", content_type=None, headers=headers)
    assert response.status == 200, response.body
    assert json.loads(sink.queues["dialogporten-unrouted"][0])["data_base64"] == "/wBub3QganNvbg=="


# ----------------------------------------------------------------------------- batch cap and concurrent sends


def _ping(i: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(i), "type": "x.unrouted", "source": "https://e.org"}


def test_a_batch_over_the_cap_is_413_and_nothing_is_sent() -> None:
    response, sink = post([_ping(i) for i in range(ingest.MAX_BATCH_EVENTS + 1)], BATCH)
    assert response.status == 413
    assert str(ingest.MAX_BATCH_EVENTS) in problem(response)["detail"]
    assert sink.count == 0


class SlowSink(RecordingSink):
    """Takes a while per put and records how many puts ran at once."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.fail_on = fail_on
        self.attempted: list[str] = []

    def put(self, queue: str, body: str, event: CloudEvent) -> None:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.attempted.append(event.id)
        try:
            time.sleep(0.02)
            if event.id == self.fail_on:
                raise ingest.StorageUnavailable("down")
            with self.lock:
                super().put(queue, body, event)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_a_full_batch_is_sent_concurrently_within_the_bound() -> None:
    sink = SlowSink()
    started = time.monotonic()
    response, _ = post([_ping(i) for i in range(ingest.MAX_BATCH_EVENTS)], BATCH, sink=sink)
    elapsed = time.monotonic() - started
    assert response.status == 200
    assert sink.count == ingest.MAX_BATCH_EVENTS
    assert 1 < sink.most <= ingest.SEND_CONCURRENCY
    serial = ingest.MAX_BATCH_EVENTS * 0.02
    print(f"\n{ingest.MAX_BATCH_EVENTS} puts of 20 ms: {elapsed:.2f} s concurrent vs {serial:.2f} s one by one")


def test_no_send_starts_after_the_first_failure() -> None:
    sink = SlowSink(fail_on="0")
    batch = [_ping(i) for i in range(ingest.MAX_BATCH_EVENTS)]
    response, _ = post(batch, BATCH, sink=sink)
    assert response.status == 503
    assert len(sink.attempted) <= 2 * ingest.SEND_CONCURRENCY


def test_the_503_detail_does_not_echo_a_long_id() -> None:
    event = sample_event("dialogporten.dialog.created.v1", event_id="i" * cloudevent.MAX_ATTRIBUTE_CHARS)
    response, _ = post(event, sink=RecordingSink(fail_after=0))
    assert response.status == 503
    assert len(problem(response)["detail"]) < 300


def test_a_too_large_event_from_storage_is_413_not_503() -> None:
    class RefusingSink(RecordingSink):
        def put(self, queue: str, body: str, event: CloudEvent) -> None:
            raise ingest.EventTooLarge("RequestBodyTooLarge")

    response, _ = post(sample_event("dialogporten.dialog.created.v1"), sink=RefusingSink())
    assert response.status == 413
    assert problem(response)["type"].endswith("event-too-large")


def test_the_skew_and_models_never_refuse_the_subscription_ping() -> None:
    ping = {"specversion": "1.0", "id": str(uuid.uuid4()), "type": "platform.events.validatesubscription",
            "source": "https://platform.altinn.no/events/api/v1/subscriptions/1"}  # fmt: skip
    assert post(ping)[0].status == 200


def test_the_rejected_log_line_carries_a_bounded_id(caplog: pytest.LogCaptureFixture) -> None:
    event = sample_event("dialogporten.dialog.created.v1", event_id="h" * 70_000)
    response, _ = post(event)
    assert response.status == 400
    (line,) = [r.message for r in caplog.records if '"outcome":"rejected"' in r.message]
    assert len(line) < 2_000
    assert json.loads(line.split(" ", 1)[1])["event_id"].startswith("hhh")


def test_a_model_error_does_not_echo_a_long_value_whole() -> None:
    event = {**sample_event("dialogporten.dialog.created.v1"), "resourceinstance": "g" * cloudevent.MAX_ATTRIBUTE_CHARS}
    response, _ = post(event)
    assert response.status == 400
    (error,) = problem(response)["errors"]
    assert error["field"] == "resourceinstance"
    assert len(error["rule"]) <= 201
    assert len(response.body) < 1_000


def test_a_claim_check_that_would_not_fit_is_refused_before_any_send() -> None:
    """Built past validation (whose bounds make this impossible for a valid event), checked anyway."""
    small = cloudevent.normalize(sample_event("dialogporten.dialog.created.v1"))
    huge = cloudevent.normalize({**sample_event("dialogporten.dialog.updated.v1"), "id": "i" * 70_000})
    routed = [Routed(small, "dialogporten-dialog-created-v1", "accepted"), Routed(huge, "q-updated", "accepted")]
    with pytest.raises(Problem) as caught:
        ingest.serialize_all(routed)
    assert caught.value.status == 413
    assert len(caught.value.detail) < 200
