"""The simulator's fake Altinn Events: every subscription rule and status, validation, delivery, retries, polling."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from devtools.altinn_sim import Client, Options, Simulator
from devtools.altinn_sim.delivery import MAX_ATTEMPTS, RETRY_DELAYS
from devtools.samples import sample_event
from tests.sim_support import CLIENT_ID, KEY, KID, Receiver, altinn_token

RESOURCE = "urn:altinn:resource:super-simple-service"
SUBJECT = "urn:altinn:organization:identifier-no:991825827"


def call(
    sim: Simulator, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(sim.base_url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, dict(response.headers.items()), json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, dict(error.headers.items()), json.loads(raw) if raw else None


def wait_until(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def subscribe(sim: Simulator, token: str, **fields: Any) -> tuple[int, dict[str, str], Any]:
    return call(sim, "POST", "/events/api/v1/subscriptions", {"resourceFilter": RESOURCE, **fields}, token)


# --- the rules of POST /subscriptions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"endPoint": "http://example.no/api/events"}, "absolute https URL"),
        ({"endPoint": "/api/events"}, "absolute https URL"),
        ({"endPoint": "https://example.no/x", "resourceFilter": None}, "Resource filter is required"),
        ({"endPoint": "https://example.no/x", "resourceFilter": "super-simple-service"}, "valid URN"),
        (
            {"endPoint": "https://example.no/x", "sourceFilter": "https://platform.altinn.no/x"},
            "Source filter is not supported",
        ),
        (
            {"endPoint": "https://example.no/x", "alternativeSubjectFilter": "/org/1"},
            "AlternativeSubject is not supported",
        ),
        ({"endPoint": "https://example.no/x", "includeSubunits": True}, "includeSubunits requires a subject filter"),
        ({"endPoint": "https://example.no/x", "typeFilter": ["a", "b"]}, "single string"),
    ],
)
def test_refused_with_400(fields: dict[str, Any], detail: str) -> None:
    with Simulator(Options(port=0)) as sim:  # https required: no loopback exception here
        sim.register(Client(CLIENT_ID, KID, KEY.public_key()))
        status, _, problem = subscribe(sim, altinn_token(sim), **fields)
    assert status == 400
    assert detail in problem["detail"]


def test_no_token_401_and_no_subscribe_scope_403(sim: Simulator) -> None:
    assert subscribe(sim, "", endPoint="https://example.no/x")[0] == 401
    assert subscribe(sim, "not-a-jwt", endPoint="https://example.no/x")[0] == 401
    status, _, problem = subscribe(sim, altinn_token(sim, scope="altinn:serviceowner"), endPoint="https://example.no/x")
    assert (status, problem["detail"]) == (403, "The token lacks the scope altinn:events.subscribe")


def test_subject_filter_is_required_without_altinn_serviceowner(sim: Simulator) -> None:
    token = altinn_token(sim, scope="altinn:events.subscribe")
    status, _, problem = subscribe(sim, token, endPoint="https://example.no/x")
    assert (status, problem["detail"]) == (400, "A valid subject to the authenticated identity is required")
    status, _, created = subscribe(sim, token, endPoint="https://example.no/x", subjectFilter=SUBJECT)
    assert status == 201
    assert created["consumer"] == "/organisation/991825827"  # no org claim without altinn:serviceowner


def test_created_201_unvalidated_with_a_singular_location_and_identical_returns_the_same(sim: Simulator) -> None:
    token = altinn_token(sim)
    status, headers, first = subscribe(sim, token, endPoint="https://unreachable.invalid/x")
    assert status == 201
    assert headers["Location"] == f"/events/api/v1/subscription/{first['id']}"
    assert (first["validated"], first["consumer"], first["createdBy"]) == (False, "/org/ttd", "/org/ttd")
    status, _, again = subscribe(sim, token, endPoint="https://unreachable.invalid/x")
    assert (status, again["id"]) == (201, first["id"])
    status, _, listing = call(sim, "GET", "/events/api/v1/subscriptions", token=token)
    assert (status, listing["count"], listing["subscriptions"][0]["validated"]) == (200, 1, False)


def test_get_and_delete_only_by_the_creator_404_for_unknown(sim: Simulator) -> None:
    owner = altinn_token(sim)
    other = altinn_token(sim, scope="altinn:events.subscribe")  # /organisation/… instead of /org/ttd
    _, _, created = subscribe(sim, owner, endPoint="https://unreachable.invalid/x")
    path = f"/events/api/v1/subscriptions/{created['id']}"
    assert call(sim, "GET", path, token=other)[0] == 403
    assert call(sim, "DELETE", path, token=other)[0] == 403
    assert call(sim, "GET", path, token=owner)[0] == 200
    assert call(sim, "DELETE", path, token=owner)[0] == 200
    assert call(sim, "GET", path, token=owner)[0] == 404
    assert call(sim, "DELETE", path, token=owner)[0] == 404


# --- validation and delivery --------------------------------------------------------------------


def test_a_2xx_to_the_ping_validates_and_events_then_arrive_one_post_each_as_application_json(
    sim: Simulator, receiver: Receiver
) -> None:
    receiver.statuses = [202]  # any 2xx validates
    token = altinn_token(sim)
    _, _, created = subscribe(sim, token, endPoint=receiver.url)
    [ping] = wait_until("the ping", lambda: receiver.of_type("platform.events.validatesubscription"))
    assert ping["body"]["source"] == f"https://platform.tt02.altinn.no/events/api/v1/subscriptions/{created['id']}"
    assert set(ping["body"]) == {"id", "source", "type", "specversion"}
    wait_until(
        "validated",
        lambda: call(sim, "GET", f"/events/api/v1/subscriptions/{created['id']}", token=token)[2]["validated"],
    )
    events = [sample_event("dialogporten.dialog.created.v1") for _ in range(3)]
    for event in events:
        assert call(sim, "POST", "/sim/publish", event)[0] == 200
    got = wait_until(
        "three deliveries",
        lambda: (
            len(receiver.of_type("dialogporten.dialog.created.v1")) == 3
            and receiver.of_type("dialogporten.dialog.created.v1")
        ),
    )
    assert sorted(r["body"]["id"] for r in got) == sorted(e["id"] for e in events)
    for request in got:
        assert request["headers"]["content-type"] == "application/json"
        assert "authorization" not in request["headers"]  # Altinn sends no auth header


def test_a_non_2xx_ping_leaves_it_unvalidated_and_it_receives_nothing(sim: Simulator, receiver: Receiver) -> None:
    receiver.default = 401  # e.g. a wrong function key
    sim.delivery.time_scale = 1000  # the ping's retries would come much later
    token = altinn_token(sim)
    _, _, created = subscribe(sim, token, endPoint=receiver.url)
    wait_until("the ping", lambda: receiver.of_type("platform.events.validatesubscription"))
    event = sample_event("dialogporten.dialog.created.v1")
    _, _, published = call(sim, "POST", "/sim/publish", event)
    assert published == {"published": 1, "deliveries": 0}
    time.sleep(0.2)
    assert receiver.of_type("dialogporten.dialog.created.v1") == []
    assert call(sim, "GET", f"/events/api/v1/subscriptions/{created['id']}", token=token)[2]["validated"] is False
    assert sim.state()["skipped"] == [
        {"subscriptionId": created["id"], "eventId": event["id"], "reason": "subscription not validated"}
    ]


def _validated(sim: Simulator, receiver: Receiver, **fields: Any) -> int:
    token = altinn_token(sim)
    _, _, created = subscribe(sim, token, endPoint=receiver.url, **fields)
    wait_until(
        "validated",
        lambda: call(sim, "GET", f"/events/api/v1/subscriptions/{created['id']}", token=token)[2]["validated"],
    )
    return int(created["id"])


def test_failures_are_retried_on_altinns_schedule_until_one_succeeds(sim: Simulator, receiver: Receiver) -> None:
    sim.delivery.time_scale = 0.001
    _validated(sim, receiver)
    receiver.statuses = [503, 500, 404]  # then the default 200
    event = sample_event("dialogporten.dialog.seen.v1")
    call(sim, "POST", "/sim/publish", event)
    wait_until("the fourth attempt", lambda: len(receiver.of_type(event["type"])) == 4)
    attempts = [a for a in sim.delivery.attempts if a.event_id == event["id"]]
    assert [(a.attempt, a.status) for a in attempts] == [(1, 503), (2, 500), (3, 404), (4, 200)]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    for gap, delay in zip(gaps, RETRY_DELAYS, strict=False):
        assert gap >= delay * 0.001 * 0.9  # never earlier than the (scaled) schedule
    assert sim.state()["delivered"][-1] == {"subscriptionId": 1, "eventId": event["id"], "attempt": 4}


def test_after_twelve_attempts_the_event_is_dead_lettered(sim: Simulator, receiver: Receiver) -> None:
    sim.delivery.time_scale = 0.00002  # the day and a half in about 3 s
    _validated(sim, receiver)
    receiver.default = 503
    event = sample_event("dialogporten.dialog.updated.v1")
    call(sim, "POST", "/sim/publish", event)
    [dead] = wait_until("the dead letter", lambda: sim.state()["deadLetters"], timeout=20)
    assert (dead["event"]["id"], dead["attempts"], dead["lastStatus"]) == (event["id"], MAX_ATTEMPTS, 503)
    assert MAX_ATTEMPTS == 12
    assert len(receiver.of_type(event["type"])) == 12


def test_filters_match_exactly_and_an_empty_type_filter_matches_nothing(sim: Simulator, receiver: Receiver) -> None:
    _validated(sim, receiver, typeFilter="dialogporten.dialog.seen.v1")
    _validated(sim, receiver, typeFilter="")
    _validated(sim, receiver, subjectFilter="urn:altinn:person:identifier-no:01018012345")
    seen = sample_event("dialogporten.dialog.seen.v1")
    other = sample_event("dialogporten.dialog.created.v1")
    elsewhere = sample_event("dialogporten.dialog.seen.v1", resource="urn:altinn:resource:other")
    _, _, answers = call(sim, "POST", "/sim/publish", [seen, other, elsewhere])
    assert answers == {"published": 3, "deliveries": 1}  # seen, to the first subscription only
    wait_until("the delivery", lambda: receiver.of_type(seen["type"]))


def test_publish_refuses_what_is_not_an_event(sim: Simulator) -> None:
    status, _, problem = call(sim, "POST", "/sim/publish", {"id": "x"})
    assert status == 400
    assert "lacks specversion, type, source, resource" in problem["detail"]


# --- polling ---------------------------------------------------------------------------------------


def test_the_events_api_needs_resource_and_after_and_pages_with_the_next_header(sim: Simulator) -> None:
    token = altinn_token(sim)
    events = [sample_event("dialogporten.dialog.created.v1") for _ in range(5)]
    call(
        sim,
        "POST",
        "/sim/publish",
        [*events, sample_event("dialogporten.dialog.seen.v1", resource="urn:altinn:resource:other")],
    )
    assert call(sim, "GET", "/events/api/v1/events?resource=" + RESOURCE, token=token)[0] == 400
    assert call(sim, "GET", "/events/api/v1/events?after=0", token=token)[0] == 400
    assert call(sim, "GET", f"/events/api/v1/events?resource={RESOURCE}&after=0")[0] == 401
    status, headers, page = call(sim, "GET", f"/events/api/v1/events?resource={RESOURCE}&after=0&size=2", token=token)
    assert (status, [e["id"] for e in page]) == (200, [e["id"] for e in events[:2]])
    seen: list[str] = [e["id"] for e in page]
    url = headers["next"]
    while True:
        status, headers, page = call(sim, "GET", url.removeprefix(sim.base_url), token=token)
        if not page:
            break
        seen += [e["id"] for e in page]
        url = headers["next"]
    assert seen == [e["id"] for e in events]  # in order, only this resource, each once
    assert "after=" + events[-1]["id"] in url


def test_size_below_1_is_50_and_above_1000_is_1000_and_next_copies_the_query_raw(sim: Simulator) -> None:
    """EV ``EventsController.Get`` clamps ``size``; ``SetNextLink`` copies the other parameters as sent."""
    token = altinn_token(sim)
    call(sim, "POST", "/sim/publish", [sample_event("dialogporten.dialog.created.v1") for _ in range(1060)])
    for asked, served in (("0", 50), ("-3", 50), ("5000", 1000), ("7", 7)):
        status, headers, page = call(
            sim, "GET", f"/events/api/v1/events?resource={RESOURCE}&after=0&size={asked}", token=token
        )
        assert (status, len(page)) == (200, served)
        assert (
            headers["next"]
            == f"{sim.base_url}/events/api/v1/events?after={page[-1]['id']}&resource={RESOURCE}&size={asked}"
        )
        assert headers["Content-Type"] == "application/cloudevents+json"
    assert call(sim, "GET", f"/events/api/v1/events?resource={RESOURCE}&after=0&size=x", token=token)[0] == 400


def test_an_unknown_after_restarts_from_the_oldest_event(sim: Simulator) -> None:
    """EV ``getevents_v2``: an id the database does not know gives sequence number 0."""
    token = altinn_token(sim)
    events = [sample_event("dialogporten.dialog.created.v1") for _ in range(3)]
    call(sim, "POST", "/sim/publish", events)
    status, _, page = call(sim, "GET", f"/events/api/v1/events?resource={RESOURCE}&after=no-such-id", token=token)
    assert (status, [e["id"] for e in page]) == (200, [e["id"] for e in events])


def test_a_resource_that_is_not_an_altinn_resource_urn_is_400(sim: Simulator) -> None:
    status, _, problem = call(
        sim, "GET", "/events/api/v1/events?resource=super-simple-service&after=0", token=altinn_token(sim)
    )
    assert (status, problem["detail"]) == (400, "The 'resource' parameter must begin with `urn:altinn:resource:`")


def test_invisible_events_are_dropped_after_the_limit_so_a_short_page_comes_mid_stream(sim: Simulator) -> None:
    """EV ``EventsService.GetEvents``: ``size`` events are read, then ``AuthorizeEvents`` drops some."""
    token = altinn_token(sim)
    events = [sample_event("dialogporten.dialog.created.v1") for _ in range(6)]
    call(sim, "POST", "/sim/publish", events)
    sim.events.invisible_ids = {events[1]["id"], events[2]["id"]}
    status, headers, page = call(sim, "GET", f"/events/api/v1/events?resource={RESOURCE}&after=0&size=3", token=token)
    assert (status, [e["id"] for e in page]) == (200, [events[0]["id"]])  # short, and not the end
    assert f"after={events[0]['id']}" in headers["next"]  # after the last event returned
    # The next read starts after the last event *returned*: the two invisible ones are read again, and dropped.
    _, headers, page = call(sim, "GET", headers["next"].removeprefix(sim.base_url), token=token)
    assert [e["id"] for e in page] == [events[3]["id"]]
    _, headers, page = call(sim, "GET", headers["next"].removeprefix(sim.base_url), token=token)
    assert [e["id"] for e in page] == [events[4]["id"], events[5]["id"]]
    _, headers, page = call(sim, "GET", headers["next"].removeprefix(sim.base_url), token=token)
    assert (page, "next" in headers) == ([], False)  # the end is an empty page, without next
