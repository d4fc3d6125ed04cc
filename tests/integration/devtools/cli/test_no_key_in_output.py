"""No dpctl output shows a function key: every command that prints a URL with one, in every format.

Against the local fakes: the Altinn simulator (subscriptions), a recording receiver (the webhook), the fake
Azure Resource Manager of tests/infra (``subscriptions create --app`` reads the key there). The key is a
distinctive string that must appear nowhere in stdout or stderr, while a URL that carried it is printed with
``code=***`` (the operator still sees which endpoint it is, and that it has a key).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization

from devtools.altinn_sim import Simulator
from devtools.azurite import free_port
from devtools.cli import azure
from tests.cli_support import Ran, dpctl
from tests.infra.fake_arm import APP, RESOURCE_GROUP, SITE, SUBSCRIPTION, FakeAzure, serve
from tests.sim_support import CLIENT_ID, KEY, KID, Receiver

SECRET = "SECRET-FUNCTION-KEY-123"
REDACTED = "code=***"
RESOURCE = "urn:altinn:resource:super-simple-service"
FORMATS = pytest.mark.parametrize(
    "formats",
    [
        (),
        ("--json",),
        ("-o", "jsonc"),
        ("-o", "tsv", "--query", "subscriptions || [@]"),
        ("-o", "yaml"),
        ("--query", "url || endPoint || subscriptions[0].endPoint"),
    ],
    ids=["table", "json", "jsonc", "tsv", "yaml", "queried"],
)


def creds(sim: Simulator) -> dict[str, str]:
    pem = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {
        "ALTINN_SIM_URL": sim.base_url,
        "MASKINPORTEN_CLIENT_ID": CLIENT_ID,
        "MASKINPORTEN_KID": KID,
        "MASKINPORTEN_KEY": pem.decode(),
        "MASKINPORTEN_KEY_FILE": "",
        "FUNCTION_KEY": "",
    }


def shows_the_url_but_not_the_key(ran: Ran, where: str = "out") -> None:
    assert SECRET not in ran.out, ran.out
    assert SECRET not in ran.err, ran.err
    assert REDACTED in (ran.out if where == "out" else ran.err), (ran.out, ran.err)


@FORMATS
def test_subscriptions_show_the_endpoint_with_its_key_redacted(
    sim: Simulator, receiver: Receiver, formats: tuple[str, ...]
) -> None:
    env = creds(sim)
    endpoint = f"{receiver.url}?code={SECRET}"
    created = dpctl("subscriptions", "create", "--endpoint", endpoint, "--resource", RESOURCE, *formats, env=env)
    assert created.code == 0, created.err
    shows_the_url_but_not_the_key(created)
    [subscription] = sim.subscriptions.all()
    assert subscription.end_point == endpoint  # Altinn got the key; only the output hides it

    waited = dpctl("subscriptions", "wait", str(subscription.id), "--timeout", "10", "--interval", "0.1", env=env)
    assert waited.code == 0, waited.err
    shows_the_url_but_not_the_key(waited)
    assert f"{receiver.url}?{REDACTED}" in waited.out
    assert receiver.requests[0]["path"] == f"/api/events?code={SECRET}"  # the ping went to the real URL

    for ran in (
        dpctl("subscriptions", "list", *formats, env=env),
        dpctl("subscriptions", "show", str(subscription.id), *formats, env=env),
    ):
        assert ran.code == 0, ran.err
        shows_the_url_but_not_the_key(ran)


def test_a_refused_endpoint_is_quoted_with_its_key_redacted(sim: Simulator) -> None:
    ran = dpctl(
        "subscriptions",
        "create",
        "--endpoint",
        f"http://example.no/api/events?code={SECRET}",
        "--resource",
        RESOURCE,
        env=creds(sim),
    )
    assert ran.code == 1
    assert "must be an absolute https URL" in ran.err
    shows_the_url_but_not_the_key(ran, where="err")
    assert sim.subscriptions.all() == []


@pytest.fixture
def arm_with_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzure]:
    """The fake ARM, with the webhook's key the distinctive one; ``--app`` reads it there with a fixed token."""
    closed = free_port()  # the app's host: Altinn's validation ping to it fails at once, offline
    responses = {
        ("GET", SITE): {"id": SITE, "name": APP, "properties": {"defaultHostName": f"127.0.0.1:{closed}"}},
        ("POST", f"{SITE}/functions/webhook/listkeys"): {"default": SECRET},
    }
    with serve(FakeAzure(responses)) as fake:
        monkeypatch.setattr(azure, "webhook_url", functools.partial(azure.webhook_url, arm=fake.base, token="arm"))
        yield fake


@FORMATS
def test_create_from_the_app_never_prints_the_key_it_read_from_arm(
    sim: Simulator, arm_with_key: FakeAzure, formats: tuple[str, ...]
) -> None:
    ran = dpctl(
        "subscriptions",
        "create",
        "--app",
        APP,
        "--resource-group",
        RESOURCE_GROUP,
        "--azure-subscription",
        SUBSCRIPTION,
        "--resource",
        RESOURCE,
        *formats,
        env=creds(sim),
    )
    assert ran.code == 0, ran.err
    shows_the_url_but_not_the_key(ran)
    assert [s.end_point.endswith(f"/api/events?code={SECRET}") for s in sim.subscriptions.all()] == [True]
    assert ("POST", f"{SITE}/functions/webhook/listkeys") in [(m, p) for m, p, _, _ in arm_with_key.requests]


@FORMATS
@pytest.mark.parametrize("given", ["--key", "FUNCTION_KEY", "in the URL"])
def test_send_reports_the_url_with_its_key_redacted(receiver: Receiver, formats: tuple[str, ...], given: str) -> None:
    url, args, env = receiver.url, ["--count", "3", "--seed", "1", *formats], {"FUNCTION_KEY": ""}
    if given == "--key":
        args += ["--key", SECRET]
    elif given == "FUNCTION_KEY":
        env["FUNCTION_KEY"] = SECRET
    else:
        url += f"?code={SECRET}"
    ran = dpctl("send", "--url", url, *args, env=env)
    assert ran.code == 0, ran.err
    shows_the_url_but_not_the_key(ran)
    assert f"{receiver.url}?{REDACTED}" in ran.out
    assert {r["path"] for r in receiver.requests} == {f"/api/events?code={SECRET}"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"ftp://127.0.0.1/api/events?code={SECRET}", "--url must be http(s)"),
        # http.client refuses a space; its exception quotes the whole path, key and all.
        (f"http://127.0.0.1:9/api/events?code={SECRET}&note=a b", "must not hold spaces"),
    ],
    ids=["wrong scheme", "a space"],
)
def test_send_refuses_a_bad_url_without_quoting_its_key(url: str, message: str) -> None:
    ran = dpctl("send", "--url", url, "--count", "2", env={"FUNCTION_KEY": ""})
    assert ran.code == 1
    assert message in ran.err
    assert SECRET not in ran.out + ran.err
