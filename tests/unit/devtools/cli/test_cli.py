"""The operator CLI's pure parts: subscription rules, generated traffic, percentiles, times, the ARM lookup."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.cli import catchup, send, traffic
from devtools.cli.azure import webhook_url
from devtools.cli.subscriptions import rule_errors
from shared.altinn.maskinporten import HttpResponse
from shared.events.catalog import BY_TYPE, Family
from shared.intake import plan as ingest
from shared.intake.catchup import parse_since
from shared.intake.plan import Policy, WebhookRequest
from tests.cli_support import dpctl
from tests.conftest import ROOT

OWNER = frozenset({"altinn:events.subscribe", "altinn:serviceowner"})
GOOD: dict[str, Any] = {
    "endpoint": "https://func-x.azurewebsites.net/api/events?code=k",
    "resource": "urn:altinn:resource:super-simple-service",
    "subject": None,
    "type_filter": None,
    "include_subunits": False,
    "scopes": OWNER,
}


def errors(**changes: Any) -> list[str]:
    return rule_errors(**{**GOOD, **changes})


def test_a_good_request_breaks_no_rule() -> None:
    assert errors() == []
    assert (
        errors(type_filter="dialogporten.dialog.created.v1", subject="urn:altinn:organization:identifier-no:991825827")
        == []
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint": "http://func-x.azurewebsites.net/api/events"}, "must be an absolute https URL"),
        ({"endpoint": "func-x.azurewebsites.net/api/events"}, "must be an absolute https URL"),
        ({"endpoint": "http://localhost:7071/api/events"}, "must be an absolute https URL"),
        ({"resource": None}, "--resource is required"),
        ({"resource": "super-simple-service"}, "must be a URN"),
        ({"resource": "urn:altinn resource"}, "must be a URN"),
        ({"type_filter": ""}, "--type must not be empty"),
        ({"type_filter": "dialogporten.dialog.*"}, "one exact type"),
        ({"type_filter": "dialogporten.dialog.created.v1,dialogporten.dialog.seen.v1"}, "one exact type"),
        ({"type_filter": "dialogporten.dialog.create.v1"}, "not a Dialogporten event type"),
        ({"subject": ""}, "--subject must not be empty"),
        (
            {"scopes": frozenset({"altinn:events.subscribe"})},
            "--subject is required unless the token carries altinn:serviceowner",
        ),
        ({"include_subunits": True}, "--include-subunits needs --subject"),
    ],
)
def test_each_rule(changes: dict[str, Any], message: str) -> None:
    found = errors(**changes)
    assert len(found) == 1
    assert message in found[0]


def test_http_loopback_only_for_the_local_simulator() -> None:
    assert errors(endpoint="http://localhost:7071/api/events", allow_http_loopback=True) == []
    assert errors(endpoint="http://example.no/api/events", allow_http_loopback=True) != []


def test_create_refuses_a_source_or_alternative_subject_filter_since_it_has_no_such_option() -> None:
    ran = dpctl(
        "subscriptions",
        "create",
        "--resource",
        "urn:altinn:resource:x",
        "--endpoint",
        "https://x/",
        "--source-filter",
        "y",
    )
    assert ran.code == 2  # a usage error: Dialogporten subscriptions take neither filter
    assert "No such option" in ran.err


def test_create_without_endpoint_or_app_says_so() -> None:
    ran = dpctl("subscriptions", "create", "--resource", "urn:altinn:resource:x")
    assert ran.code == 1
    assert "give exactly one of --endpoint URL or --app NAME" in ran.err


@pytest.mark.parametrize("seed", range(20))
def test_organisation_numbers_pass_mod_11(seed: int) -> None:
    number = traffic.org_number(random.Random(seed))
    assert len(number) == 9
    assert number[0] in "89"
    weights = (3, 2, 7, 6, 5, 4, 3, 2)
    remainder = sum(int(d) * w for d, w in zip(number[:8], weights, strict=True)) % 11
    assert int(number[8]) == (11 - remainder) % 11


def test_known_organisation_number_control_digits() -> None:
    assert traffic.mod11("99182582", traffic.ORG_WEIGHTS) == 7  # 991825827, the sample party
    assert traffic.mod11("40000000", traffic.ORG_WEIGHTS) is None  # 12: remainder 1 -> 10: no valid number


@pytest.mark.parametrize("seed", range(20))
def test_person_numbers_are_synthetic_with_both_control_digits(seed: int) -> None:
    pid = traffic.synthetic_person_number(random.Random(seed))
    assert len(pid) == 11
    assert 81 <= int(pid[2:4]) <= 92  # month + 80: a synthetic number, never a real person's
    assert traffic.mod11(pid[:9], traffic.PID_WEIGHTS_1) == int(pid[9])
    assert traffic.mod11(pid[:10], traffic.PID_WEIGHTS_2) == int(pid[10])


@pytest.mark.parametrize("source_env", ["tt02", "prod"])
def test_lifecycles_are_valid_dialogporten_events_the_webhook_accepts(source_env: str) -> None:
    rng = random.Random(1)
    events = [e for _ in range(30) for e in traffic.lifecycle(rng, source_env=source_env)]
    host = {
        "tt02": "https://platform.tt02.altinn.no/dialogporten/api/v1/enduser/dialogs/",
        "prod": "https://platform.altinn.no/dialogporten/api/v1/enduser/dialogs/",
    }[source_env]
    assert {e["type"] for e in events} >= {
        "dialogporten.dialog.created.v1",
        "dialogporten.dialog.transmission.created.v1",
        "dialogporten.dialog.seen.v1",
        "dialogporten.dialog.deleted.v1",
        "dialogporten.dialog.restored.v1",
    }
    assert len({e["type"] for e in events if BY_TYPE[e["type"]].family is Family.ACTIVITY}) >= 10
    for event in events:
        assert event["source"].startswith(host + event["resourceinstance"])
        assert event["resourceinstance"][14] == "7"  # UUIDv7
        assert len(event["time"].split(".")[1]) == 8  # 7 digits and Z
        if BY_TYPE[event["type"]].family is Family.ACTIVITY:
            assert event["source"].endswith("/activities/" + event["data"]["activityId"])
        request = WebhookRequest("POST", {"content-type": "application/json"}, json.dumps(event).encode())
        [routed] = ingest.plan(request, Policy())
        assert routed.queue == BY_TYPE[event["type"]].queue
    dialog = events[0]["resourceinstance"]
    times = [e["time"] for e in events if e["resourceinstance"] == dialog]
    assert times == sorted(times)
    assert events[0]["type"] == "dialogporten.dialog.created.v1"


def test_the_stream_sends_duplicates_and_shuffles_on_request() -> None:
    plain = [e["id"] for _, e in zip(range(300), traffic.stream(random.Random(2)), strict=False)]
    assert len(set(plain)) == 300
    dups = [e["id"] for _, e in zip(range(300), traffic.stream(random.Random(2), duplicates=0.2), strict=False)]
    assert 30 <= 300 - len(set(dups)) <= 90
    shuffled = list(zip(range(300), traffic.stream(random.Random(2), shuffle=True), strict=False))
    first_of: dict[str, str] = {}
    out_of_order = 0
    for _, event in shuffled:
        dialog = event["resourceinstance"]
        if dialog in first_of and event["time"] < first_of[dialog]:
            out_of_order += 1
        first_of[dialog] = max(first_of.get(dialog, ""), event["time"])
    assert out_of_order > 10


def test_percentiles_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (send.percentile(values, 0.5), send.percentile(values, 0.9), send.percentile(values, 0.99)) == (
        50.0,
        90.0,
        99.0,
    )
    assert send.percentile([], 0.5) == 0.0
    assert send.percentile([7.0], 0.99) == 7.0


def test_since_is_a_time_by_the_one_rfc3339_parser_or_a_cursor() -> None:
    moment = parse_since("2026-03-16T11:43:32.4136593Z")
    assert moment is not None
    assert (moment.year, moment.microsecond, moment.utcoffset()) == (2026, 413659, timedelta(0))
    assert parse_since("2026-03-16T13:43:32+02:00") == datetime(2026, 3, 16, 11, 43, 32, tzinfo=UTC)
    assert parse_since("2016-12-31T23:59:60Z") is not None  # a leap second, as shared.events.rfc3339 reads it
    assert parse_since("0") is None
    assert parse_since("6b4cb242-4a23-4596-a217-beaddbc496cb") is None
    # What the old parser let through, and shared.events.rfc3339 refuses: no seconds, no offset.
    assert parse_since("2026-03-16T11:43Z") is None
    assert parse_since("2026-03-16T11:43:32") is None
    assert catchup.looks_like_a_time("2026-03-16T11:43Z")
    assert not catchup.looks_like_a_time("6b4cb242-4a23-4596-a217-beaddbc496cb")


def test_the_webhook_url_comes_from_arm_with_the_altinn_key_first() -> None:
    calls: list[tuple[str, str]] = []

    def arm(
        method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float, max_bytes: int = 0
    ) -> HttpResponse:
        assert headers["Authorization"] == "Bearer arm-token"
        calls.append((method, url.split("?", maxsplit=1)[0]))
        if method == "GET":
            return HttpResponse(
                200, {}, json.dumps({"properties": {"defaultHostName": "func-x.azurewebsites.net"}}).encode()
            )
        return HttpResponse(200, {}, json.dumps({"default": "d-key", "altinn": "a-key"}).encode())

    url = webhook_url("func-x", "rg", "sub", arm="https://arm", token="arm-token", transport=arm)
    assert url == "https://func-x.azurewebsites.net/api/events?code=a-key"
    site = "https://arm/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Web/sites/func-x"
    assert calls == [("GET", site), ("POST", site + "/functions/webhook/listkeys")]


# --- nothing that did nothing may look like success ---------------------------------------------------------


def _closed_port() -> int:
    from devtools.azurite import free_port

    return free_port()  # nothing listens there


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("yesterday", "reads as a time"),
        ("2h", "reads as a time"),
        ("3 days ago", "reads as a time"),
        ("11:43", "reads as a time"),
        ("now", "reads as a time"),
        ("", "neither a time nor a cursor"),
        ("a b", "neither a time nor a cursor"),
        ("2026-03-16 11:43", "is not an RFC 3339 time"),
    ],
)
def test_catch_up_refuses_a_since_that_is_neither_a_time_nor_a_cursor_before_any_call(since: str, message: str) -> None:
    sim = f"http://127.0.0.1:{_closed_port()}"
    ran = dpctl(
        "--sim-url", sim, "catch-up", "--resource", "urn:altinn:resource:super-simple-service", "--since", since,
        env={"AzureWebJobsStorage": "UseDevelopmentStorage=true"},
    )  # fmt: skip
    assert ran.code == 1
    assert message in ran.err
    assert "resume with" not in ran.err + ran.out  # refused before any call: nothing to resume
    assert "could not be reached" not in ran.err


@pytest.mark.parametrize(
    ("since", "noted"),
    [("0", False), ("01a23b92-90f6-78f1-91b7-584a2265b1f5", False), ("A2FB8E3C-1F2B-4C8A-9A77-0D3E1F2A3B4C", False),
     ("my-publishers-id-42", True), ("12345", True)],
)  # fmt: skip
def test_a_cursor_is_0_or_an_event_id_and_a_non_guid_id_is_taken_with_a_note(
    since: str, noted: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert catchup.check_since(since) == (None, since)
    assert ("is not a GUID" in capsys.readouterr().err) is noted


def test_subscriptions_create_checks_the_rules_with_the_network_down() -> None:
    sim = f"http://127.0.0.1:{_closed_port()}"  # Maskinporten (the simulator) cannot be reached
    ran = dpctl(
        "--sim-url", sim, "--client-id", "someone", "--kid", "k", "subscriptions", "create",
        "--endpoint", "http://func-x.azurewebsites.net/api/events", "--resource", "super-simple-service",
        "--type", "dialogporten.dialog.*",
        env={"MASKINPORTEN_KEY": _pem()},
    )  # fmt: skip
    assert ran.code == 1
    assert "would be refused or match nothing" in ran.err
    assert "must be an absolute https URL" in ran.err
    assert "--resource must be a URN urn:altinn:resource:<id>" in ran.err
    assert "one exact type" in ran.err
    assert "could not be reached" not in ran.err


def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_a_resource_that_is_not_a_resource_urn_is_refused_by_every_command_before_any_call() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api/events"
    sent = dpctl("send", "--url", url, "--resource", "super-simple-service", "--count", "1")
    assert sent.code == 1
    assert "--resource: a resource is urn:altinn:resource:<id>" in sent.err
    assert "nothing is listening" not in sent.err  # refused before any call
    assert errors(resource="urn:altinn:party:123") != []  # a URN, but not a resource's: would match nothing
    caught = dpctl("catch-up", "--resource", "super-simple-service", "--since", "0")
    assert caught.code == 1
    assert "--resource: a resource is urn:altinn:resource:<id>" in caught.err


def test_send_to_an_app_that_is_not_running_says_nothing_listens_there() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api/events"
    ran = dpctl("send", "--url", url, "--count", "5", "--key", "SECRET-KEY-1")
    assert ran.code == 1
    assert f"nothing is listening at {url}?code=*** (connection refused); no event was sent" in ran.err
    assert "make run" in ran.err
    assert "SECRET-KEY-1" not in ran.out + ran.err
    assert ran.out == ""  # no report of a run that never happened


def test_altinns_own_refusals_are_shown_as_their_text_not_as_a_json_string(capsys: pytest.CaptureFixture[str]) -> None:
    """EV-SUB-ERRBODY: the subscriptions API answers StatusCode(400, "message"): a JSON string literal."""
    import typer

    from devtools.cli.subscriptions import _ok

    with pytest.raises(typer.Exit):
        _ok(HttpResponse(400, {}, b'"Missing or invalid endpoint to push events towards"'), "create")
    err = capsys.readouterr().err
    assert "create: 400 Missing or invalid endpoint to push events towards" in err
    assert '"Missing' not in err


def test_dpctl_starts_without_the_event_models() -> None:
    """Every dpctl command loads the CLI; pydantic and the 33 models (tens of ms) load only where a command needs
    them (``dpctl poison`` diagnosing a message with no recorded reason)."""
    probe = "import sys, devtools.cli.app; print('pydantic' in sys.modules, 'shared.events.models' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
