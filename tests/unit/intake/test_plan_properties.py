"""Property tests: whatever arrives, the webhook core answers 2xx or a precise 4xx, and a refusal enqueues nothing."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from devtools.samples import sample_event
from shared.events import catalog
from shared.intake import plan as ingest
from shared.intake.plan import Policy, WebhookRequest
from tests.unit.intake.test_plan import RecordingSink

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "text/plain",
        "",
        "application/json; charset=latin-1",
        "multipart/form-data; boundary=x",
    ]
)
HEADER_NAMES = st.sampled_from(["ce-specversion", "ce-id", "ce-type", "ce-source", "ce-time", "ce-Bad.Name", "x-other"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
ATTRS = [
    "specversion",
    "id",
    "type",
    "source",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
]


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """A real event with some attributes replaced, removed or added: reaches deep into validation."""
    event: dict[str, Any] = sample_event(draw(st.sampled_from(catalog.CATALOG)))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*ATTRS, "resource", "ext", "Ext", "my.ext"]))
        if draw(st.booleans()):
            event.pop(key, None)
        else:
            event[key] = draw(json_values)
    return event


bodies = st.one_of(
    st.binary(max_size=512),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_events().map(lambda e: json.dumps(e).encode()),
    st.lists(mutated_events(), max_size=3).map(lambda b: json.dumps(b).encode()),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["POST", "POST", "POST", "GET", "OPTIONS", "DELETE"]),
    content_type=CONTENT_TYPES,
    extra=st.dictionaries(HEADER_NAMES, st.text(max_size=40), max_size=4),
    body=bodies,
    allow_list=st.booleans(),
)
def test_never_a_5xx_and_nothing_enqueued_when_refused(
    method: str, content_type: str, extra: dict[str, str], body: bytes, allow_list: bool
) -> None:
    headers = {**({"content-type": content_type} if content_type else {}), **{k.lower(): v for k, v in extra.items()}}
    sink = RecordingSink()
    policy = (
        Policy(allowed_resources=frozenset({"urn:altinn:resource:super-simple-service"})) if allow_list else Policy()
    )
    response = ingest.handle(WebhookRequest(method, headers, body), sink, policy)
    event(f"status {response.status}")
    assert response.status < 500
    if response.status >= 400:
        assert sink.count == 0
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert json.loads(response.body)["status"] == response.status
    elif method == "POST":
        assert response.status == 200
        accepted = json.loads(response.body)
        assert sink.count == sum(1 for e in accepted["events"] if e["queue"] is not None)


@settings(max_examples=150, deadline=None)
@given(sent=mutated_events())
def test_accepted_events_are_stored_exactly_as_sent(sent: dict[str, Any]) -> None:
    sink = RecordingSink()
    response = ingest.handle(
        WebhookRequest("POST", {"content-type": "application/json"}, json.dumps(sent).encode()), sink, Policy()
    )
    if response.status == 200 and sink.count:
        (stored,) = [json.loads(b) for bodies in sink.queues.values() for b in bodies]
        assert stored == {k: v for k, v in sent.items() if v is not None or k in ("data", "data_base64")}
