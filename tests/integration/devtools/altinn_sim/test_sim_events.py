"""The simulator's fake Altinn Events beyond the contract suite: who may delete a subscription, the validation
ping, delivery, retries and dead letters (the API's rules and the polling: ``test_contract.py``)."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from devtools.altinn_sim import Simulator
from devtools.altinn_sim.delivery import MAX_ATTEMPTS, RETRY_DELAYS
from devtools.samples import sample_event
from tests.sim_support import Receiver, altinn_token

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


# --- subscriptions (the rules of POST and GET are stated once, in test_contract.py) ----------------------


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
        assert request["headers"]["content-type"] == "application/json; charset=utf-8"  # DLV-POST
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


def test_an_event_the_consumer_may_not_see_is_not_pushed_either(sim: Simulator, receiver: Receiver) -> None:
    """DLV-AUTHORIZED: the PDP's decision that drops it from the events API keeps it from the push too."""
    _validated(sim, receiver)
    hidden, shown = sample_event("dialogporten.dialog.created.v1"), sample_event("dialogporten.dialog.created.v1")
    sim.events.invisible_ids = {hidden["id"]}
    _, _, answers = call(sim, "POST", "/sim/publish", [hidden, shown])
    assert answers == {"published": 2, "deliveries": 1}
    wait_until("the delivery", lambda: receiver.of_type(shown["type"]))
    assert [r["body"]["id"] for r in receiver.of_type(shown["type"])] == [shown["id"]]
    assert sim.state()["skipped"] == [{"subscriptionId": 1, "eventId": hidden["id"], "reason": "not authorized"}]


def test_publish_refuses_what_is_not_an_event(sim: Simulator) -> None:
    status, _, problem = call(sim, "POST", "/sim/publish", {"id": "x"})
    assert status == 400
    assert "lacks specversion, type, source, resource" in problem["detail"]
