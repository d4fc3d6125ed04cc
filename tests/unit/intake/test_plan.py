"""The webhook core without I/O: what is accepted, where it goes, and every refusal's status and body."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from devtools.samples import sample_event
from shared.events import catalog
from shared.events.cloudevent import CloudEvent
from shared.intake import plan as ingest
from shared.intake.plan import Policy, WebhookRequest, WebhookResponse
from tests.conftest import CONFORMANCE, load_fixture

ALTINN_CT = "application/json; charset=utf-8"


class RecordingSink:
    """The EventSink protocol with the queues kept in a dict: the unit tests' stand-in for storage."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.queues: dict[str, list[str]] = {}
        self.fail_after = fail_after

    def put(self, queue: str, body: str, event: CloudEvent) -> None:
        if self.fail_after is not None and self.count >= self.fail_after:
            raise ingest.StorageUnavailable("storage is down")
        self.queues.setdefault(queue, []).append(body)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.queues.values())


def post(
    body: bytes | str | Any,
    content_type: str | None = ALTINN_CT,
    sink: RecordingSink | None = None,
    policy: Policy | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[WebhookResponse, RecordingSink]:
    sink = sink or RecordingSink()
    if not isinstance(body, bytes | str):
        body = json.dumps(body)
    raw = body.encode() if isinstance(body, str) else body
    h = {**({"content-type": content_type} if content_type else {}), **(headers or {})}
    return ingest.handle(WebhookRequest("POST", h, raw, "http://localhost/api/events"), sink, policy or Policy()), sink


def problem(response: WebhookResponse) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = json.loads(response.body)
    assert body["status"] == response.status
    assert body["type"].startswith("urn:dialogporten-receiver:problem:")
    assert body["title"]
    assert body["detail"]
    return dict(body)


# ----------------------------------------------------------------------------- routing


@pytest.mark.parametrize("row", catalog.CATALOG, ids=lambda r: r.type)
def test_every_catalog_type_goes_to_its_own_queue(row: catalog.EventType) -> None:
    event = sample_event(row)
    response, sink = post(event)
    assert response.status == 200
    assert list(sink.queues) == [row.queue]
    assert json.loads(sink.queues[row.queue][0]) == event


@pytest.mark.parametrize(
    "fixture", ["seed-created.json", "seed-activity-signature-provided.json", "tt02-dialog-created.json"]
)
def test_seed_and_real_examples_are_accepted_byte_for_byte(fixture: str) -> None:
    event = load_fixture(fixture)
    response, sink = post(event)
    assert response.status == 200, response.body
    (queue,) = sink.queues
    assert queue == catalog.queue_name_for(event["type"])
    stored = sink.queues[queue][0]
    assert json.loads(stored) == event
    assert '"time":"' + event["time"] + '"' in stored  # the 7th fractional digit survives


def test_subscription_validation_gets_200_and_nothing_is_enqueued(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="dialogporten")
    response, sink = post(load_fixture("validate-subscription.json"))
    assert response.status == 200
    assert sink.queues == {}
    assert json.loads(response.body)["events"][0]["outcome"] == "validated"
    assert any('"outcome":"validated"' in r.message and "694caa35" in r.message for r in caplog.records)


def test_unknown_type_is_parked_never_dropped() -> None:
    event = {**sample_event("dialogporten.dialog.created.v1"), "type": "dialogporten.dialog.archived.v2"}
    response, sink = post(event)
    assert response.status == 200
    assert list(sink.queues) == [catalog.UNROUTED_QUEUE]
    assert json.loads(sink.queues[catalog.UNROUTED_QUEUE][0]) == event


def test_unknown_data_fields_and_extension_attributes_are_kept() -> None:
    event = sample_event("dialogporten.dialog.updated.v1")
    event["data"]["somethingNew"] = {"nested": [1, 2, 3]}
    event["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response, sink = post(event)
    assert response.status == 200
    assert json.loads(next(iter(sink.queues.values()))[0]) == event


def test_every_accepted_event_is_logged_with_ids(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="dialogporten")
    event = sample_event("dialogporten.dialog.seen.v1")
    post(event)
    (line,) = [r.message for r in caplog.records if r.message.startswith("dialogporten.ingest")]
    fields = json.loads(line.split(" ", 1)[1])
    assert fields == {
        "outcome": "accepted",
        "event_id": event["id"],
        "event_type": event["type"],
        "dialog_id": event["resourceinstance"],
        "queue": "dialogporten-dialog-seen-v1",
        "source": event["source"],
    }


# ----------------------------------------------------------------------------- content modes


def test_structured_cloudevents_json_is_accepted() -> None:
    response, sink = post(sample_event("dialogporten.dialog.created.v1"), "application/cloudevents+json")
    assert response.status == 200
    assert sink.count == 1


def test_batch_routes_each_member() -> None:
    events = [sample_event(row) for row in catalog.CATALOG[:4]]
    response, sink = post(events, "application/cloudevents-batch+json")
    assert response.status == 200
    assert json.loads(response.body)["accepted"] == 4
    assert sorted(sink.queues) == sorted(row.queue for row in catalog.CATALOG[:4])


def test_batch_is_all_or_nothing() -> None:
    good = sample_event("dialogporten.dialog.created.v1")
    bad = {**sample_event("dialogporten.dialog.deleted.v1"), "time": "2018-04-05T18:31Z"}
    response, sink = post([good, good, bad], "application/cloudevents-batch+json")
    assert response.status == 400
    assert sink.count == 0
    assert [e["field"] for e in problem(response)["errors"]] == ["[2].time"]


def test_batch_body_must_be_an_array() -> None:
    response, sink = post(sample_event("dialogporten.dialog.created.v1"), "application/cloudevents-batch+json")
    assert response.status == 400
    assert problem(response)["type"].endswith("invalid-batch")
    assert sink.count == 0


def _sdk_binary(event: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    attributes: dict[str, Any] = {k: v for k, v in event.items() if k != "data"}
    # The SDK wants a datetime (and so keeps microseconds only): the 7th digit is gone on this path.
    attributes["time"] = datetime.fromisoformat(event["time"][:26] + "+00:00")
    message = ce_http.to_binary(SdkEvent(attributes=attributes, data=event.get("data")), JSONFormat())
    return {k.lower(): v for k, v in message.headers.items()}, message.body


def test_binary_mode_from_the_cloudevents_sdk_is_accepted() -> None:
    event = {**sample_event("dialogporten.dialog.transmission.created.v1"), "datacontenttype": "application/json"}
    event["subject"] = "urn:altinn:person:identifier-no:23905497111"
    headers, body = _sdk_binary(event)
    assert "ce-specversion" in headers
    response, sink = post(body, content_type=None, headers=headers)
    assert response.status == 200, response.body
    stored = json.loads(sink.queues["dialogporten-dialog-transmission-created-v1"][0])
    assert stored["data"] == event["data"]
    for key in ("id", "type", "source", "subject", "resource", "resourceinstance"):
        assert stored[key] == event[key]


def test_binary_mode_keeps_time_text_and_decodes_percent_encoding() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "b1",
        "ce-type": "dialogporten.dialog.seen.v1",
        "ce-source": "https://platform.altinn.no/dialogporten/api/v1/enduser/dialogs/x",
        "ce-time": "2026-03-16T11:43:32.4136593Z",
        "ce-subject": "urn%3Aaltinn%3Aperson%3Aidentifier-no%3A23905497111",
        "ce-resource": "urn%3Aaltinn%3Aresource%3Asuper-simple-service",
        "ce-resourceinstance": "019ebbb5-ac51-75ab-a98b-786e3581350e",
        "content-type": "application/octet-stream",
    }
    response, sink = post(b"\x00\x01binary", content_type=None, headers=headers)
    assert response.status == 200, response.body
    stored = json.loads(sink.queues["dialogporten-dialog-seen-v1"][0])
    assert stored["time"] == "2026-03-16T11:43:32.4136593Z"
    assert stored["subject"] == "urn:altinn:person:identifier-no:23905497111"
    assert stored["data_base64"] == "AAFiaW5hcnk="
    assert stored["datacontenttype"] == "application/octet-stream"


def test_binary_mode_with_invalid_attributes_is_400() -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "b1", "ce-type": "t", "ce-source": "s", "ce-time": "yesterday"}
    response, sink = post(b"", content_type=None, headers=headers)
    assert response.status == 400
    assert [e["field"] for e in problem(response)["errors"]] == ["time"]
    assert sink.count == 0


# ----------------------------------------------------------------------------- conformance through the core


def _conformance(filename: str) -> list[Any]:
    path = CONFORMANCE / filename
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"conformance vectors not present at {CONFORMANCE}"))]
    return [pytest.param(t, id=t["id"]) for t in json.loads(path.read_text(encoding="utf-8-sig"))["tests"]]


@pytest.mark.parametrize("vector", _conformance("valid-events.json"))
def test_valid_conformance_event_is_enqueued(vector: dict[str, Any]) -> None:
    response, sink = post(vector["event"], "application/cloudevents+json")
    assert response.status == 200, response.body
    assert sink.queues == {catalog.UNROUTED_QUEUE: [sink.queues[catalog.UNROUTED_QUEUE][0]]}


@pytest.mark.parametrize("vector", _conformance("invalid-events.json"))
def test_invalid_conformance_event_is_400_and_nothing_enqueued(vector: dict[str, Any]) -> None:
    response, sink = post(vector["event"], "application/cloudevents+json")
    assert response.status == 400
    assert problem(response)["errors"]
    assert sink.count == 0


@pytest.mark.parametrize("vector", _conformance("valid-batches.json"))
def test_valid_conformance_batch_is_enqueued(vector: dict[str, Any]) -> None:
    response, sink = post(vector["batch"], "application/cloudevents-batch+json")
    assert response.status == 200, response.body
    assert sink.count == len(vector["batch"])


@pytest.mark.parametrize("vector", _conformance("invalid-batches.json"))
def test_invalid_conformance_batch_is_400_and_nothing_enqueued(vector: dict[str, Any]) -> None:
    response, sink = post(vector["batch"], "application/cloudevents-batch+json")
    assert response.status == 400
    assert sink.count == 0


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        (b"", "empty-body"),
        (b"   ", "empty-body"),
        (b"\xff\xfe{}", "invalid-utf8"),
        (b"{", "invalid-json"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid-json"),
        (b"1" * 5000, "invalid-json"),
        (b'{"id": NaN}', "invalid-json"),
        (b'{"type":"a","type":"b"}', "invalid-json"),
        (b"42", "invalid-cloudevent"),
        (b'"a string"', "invalid-cloudevent"),
        (b"null", "invalid-cloudevent"),
        (b"[]", "invalid-cloudevent"),
        (b'{"specversion":"1.0","id":"x","type":"t","source":"s","ext":123456789012345678901234567890}',
         "invalid-cloudevent"),
    ],
)  # fmt: skip
def test_bad_bodies_are_400_with_a_problem(body: bytes, slug: str) -> None:
    response, sink = post(body)
    assert response.status == 400
    assert problem(response)["type"].endswith(slug)
    assert sink.count == 0


def test_400_names_field_value_and_rule() -> None:
    event = {**sample_event("dialogporten.dialog.created.v1"), "time": "2018-04-05T18:31Z"}
    body = problem(post(event)[0])
    assert body["errors"] == [
        {"field": "time", "value": "2018-04-05T18:31Z", "rule": body["errors"][0]["rule"]},
    ]
    assert "RFC 3339" in body["errors"][0]["rule"]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD"])
def test_wrong_method_is_405_with_allow(method: str) -> None:
    sink = RecordingSink()
    response = ingest.handle(WebhookRequest(method, {}, b""), sink, Policy())
    assert response.status == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    problem(response)


def test_over_one_mebibyte_is_413() -> None:
    event = sample_event("dialogporten.dialog.created.v1")
    event["data"]["padding"] = "x" * (1024 * 1024)
    response, sink = post(event)
    assert response.status == 413
    problem(response)
    assert sink.count == 0


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/xml", "application/json; charset=latin-1",
     "application/cloudevents+json; charset=utf-16"],
)  # fmt: skip
def test_unsupported_content_types_are_415(content_type: str | None) -> None:
    response, sink = post(sample_event("dialogporten.dialog.created.v1"), content_type)
    assert response.status == 415
    detail = problem(response)["detail"]
    assert "application/json" in detail or "Only UTF-8" in detail
    assert sink.count == 0


def test_options_answers_the_webhook_abuse_protection_handshake() -> None:
    request = WebhookRequest("OPTIONS", {"webhook-request-origin": "eventemitter.example.com"}, b"")
    response = ingest.handle(request, RecordingSink(), Policy())
    assert response.status == 200
    assert response.headers["WebHook-Allowed-Origin"] == "eventemitter.example.com"
    assert response.headers["Allow"] == "POST, OPTIONS"


def test_storage_failure_is_503_with_retry_after_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    event = sample_event("dialogporten.dialog.created.v1")
    response, _ = post(event, sink=RecordingSink(fail_after=0))
    assert response.status == 503
    assert int(response.headers["Retry-After"]) > 0
    problem(response)
    assert any('"outcome":"failed"' in r.message and event["id"] in r.message for r in caplog.records)


# ----------------------------------------------------------------------------- allow-lists


def test_resource_allow_list() -> None:
    policy = Policy(allowed_resources=frozenset({"urn:altinn:resource:super-simple-service"}))
    ok, sink = post(sample_event("dialogporten.dialog.created.v1"), policy=policy)
    assert ok.status == 200
    other = sample_event("dialogporten.dialog.created.v1", resource="urn:altinn:resource:other")
    refused, sink = post(other, policy=policy)
    assert refused.status == 403
    assert problem(refused)["errors"][0]["field"] == "resource"
    assert sink.count == 0


def test_source_host_allow_list_and_the_validation_ping() -> None:
    policy = Policy(
        allowed_source_hosts=frozenset({"platform.altinn.no"}),
        allowed_resources=frozenset({"urn:altinn:resource:super-simple-service"}),
    )
    tt02 = sample_event("dialogporten.dialog.created.v1")  # platform.tt02.altinn.no
    refused, sink = post(tt02, policy=policy)
    assert refused.status == 403
    assert problem(refused)["errors"][0]["field"] == "source"
    assert sink.count == 0
    # The ping has no resource; it must still validate the subscription.
    assert post(load_fixture("validate-subscription.json"), policy=policy)[0].status == 200
    spoofed = {**load_fixture("validate-subscription.json"), "source": "https://evil.example/x"}
    assert post(spoofed, policy=policy)[0].status == 403


def test_one_refused_member_refuses_the_whole_batch() -> None:
    policy = Policy(allowed_resources=frozenset({"urn:altinn:resource:super-simple-service"}))
    batch = [
        sample_event("dialogporten.dialog.created.v1"),
        sample_event("dialogporten.dialog.created.v1", resource="urn:altinn:resource:other"),
    ]
    response, sink = post(batch, "application/cloudevents-batch+json", policy=policy)
    assert response.status == 403
    assert problem(response)["errors"][0]["field"] == "[1].resource"
    assert sink.count == 0


def test_binary_mode_with_a_form_content_type_names_the_content_type_and_the_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What ``curl -d`` and urllib send: the data becomes data_base64 and the model finds no ``data``."""
    caplog.set_level("INFO", logger="dialogporten")
    event = sample_event("dialogporten.dialog.activity.created.v1")  # its model needs data.activityId
    headers = {f"ce-{k}": str(v) for k, v in event.items() if k != "data"}
    response, sink = post(json.dumps(event["data"]), "application/x-www-form-urlencoded", headers=headers)
    assert response.status == 400
    found = problem(response)
    assert "data_base64" in found["detail"]
    assert "application/x-www-form-urlencoded" in found["detail"]
    assert "Content-Type: application/json" in found["detail"]
    fields = [e["field"] for e in found["errors"]]
    assert "data" in fields  # the model's own complaint stays
    assert "datacontenttype" in fields
    assert sink.count == 0
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dialogporten.ingest ")]
    logged = json.loads(line.partition(" ")[2])
    assert (logged["outcome"], logged["event_id"], logged["event_type"]) == ("rejected", event["id"], event["type"])
    assert logged["dialog_id"] == event["resourceinstance"]
