"""dpctl's auth, subscriptions and send commands against the simulator (in-process) and a recording receiver."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization

from devtools.altinn_sim import Client, Simulator
from shared.altinn import maskinporten as mp
from tests.cli_support import dpctl
from tests.sim_support import CLIENT_ID, KEY, KID, Receiver

RESOURCE = "urn:altinn:resource:super-simple-service"
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def creds(sim: Simulator) -> dict[str, str]:
    return {
        "ALTINN_SIM_URL": sim.base_url,
        "MASKINPORTEN_CLIENT_ID": CLIENT_ID,
        "MASKINPORTEN_KID": KID,
        "MASKINPORTEN_KEY": PEM.decode(),
        "MASKINPORTEN_KEY_FILE": "",
    }


def test_keygen_then_auth_with_the_new_key_as_a_jwk_file(sim: Simulator, tmp_path: Path) -> None:
    made = dpctl("auth", "keygen", "--out", str(tmp_path / "mp"), "--kid", "key-2026")
    assert made.code == 0, made.err
    public = json.loads((tmp_path / "mp.jwk.json").read_text())
    assert (public["kid"], public["kty"], "d" in public) == ("key-2026", "RSA", False)
    assert (tmp_path / "mp.pem").stat().st_mode & 0o077 == 0  # private: owner only
    again = dpctl("auth", "keygen", "--out", str(tmp_path / "mp"), "--kid", "key-2026")
    assert again.code == 1
    assert "refusing to overwrite" in again.err

    key = mp.load_key(file=tmp_path / "mp.pem", kid="key-2026")
    sim.register(Client("new-client", "key-2026", key.key.public_key()))
    private_jwk = json.loads(__import__("jwt").algorithms.RSAAlgorithm.to_jwk(key.key))
    (tmp_path / "mp.private.jwk.json").write_text(json.dumps({**private_jwk, "kid": "key-2026"}))
    ran = dpctl(
        "--client-id",
        "new-client",
        "--key-file",
        str(tmp_path / "mp.private.jwk.json"),
        "auth",
        "--json",
        env={"ALTINN_SIM_URL": sim.base_url, "MASKINPORTEN_KEY": "", "MASKINPORTEN_KID": ""},
    )
    assert ran.code == 0, ran.err
    shown = ran.json()
    assert (shown["clientId"], shown["org"], shown["orgNumber"]) == ("new-client", "ttd", "991825827")
    assert shown["scope"] == "altinn:events.subscribe altinn:serviceowner"
    assert 0 < shown["altinnExpiresIn"] <= 1800
    token = dpctl("auth", "--print-token", env=creds(sim))
    assert token.out.strip().count(".") == 2


def test_auth_with_an_unregistered_client_says_what_maskinporten_said(sim: Simulator) -> None:
    ran = dpctl("--client-id", "nobody", "auth", env=creds(sim))
    assert ran.code == 1
    assert "refused the grant: 400 invalid_client" in ran.err
    assert "check the client id" in ran.err


def test_create_list_show_wait_delete(sim: Simulator, receiver: Receiver) -> None:
    env = creds(sim)
    created = dpctl("subscriptions", "create", "--endpoint", receiver.url, "--resource", RESOURCE, "--json", env=env)
    assert created.code == 0, created.err
    subscription = created.json()
    assert "up to an hour" in created.err
    assert (
        dpctl("subscriptions", "wait", str(subscription["id"]), "--timeout", "10", "--interval", "0.1", env=env).code
        == 0
    )
    listed = dpctl("subscriptions", "list", "--json", env=env).json()
    assert [s["id"] for s in listed["subscriptions"]] == [subscription["id"]]
    shown = dpctl("subscriptions", "show", str(subscription["id"]), "--json", env=env).json()
    assert shown["validated"] is True
    assert dpctl("subscriptions", "delete", str(subscription["id"]), env=env).code == 0
    missing = dpctl("subscriptions", "show", str(subscription["id"]), env=env)
    assert missing.code == 1
    assert "404" in missing.err


def test_wait_times_out_with_exit_4_and_says_what_to_check(sim: Simulator, receiver: Receiver) -> None:
    receiver.default = 401  # a wrong function key
    sim.delivery.time_scale = 1000
    env = creds(sim)
    created = dpctl("subscriptions", "create", "--endpoint", receiver.url, "--resource", RESOURCE, "--json", env=env)
    ran = dpctl("subscriptions", "wait", str(created.json()["id"]), "--timeout", "0.5", "--interval", "0.1", env=env)
    assert ran.code == 4
    assert "still not validated" in ran.err
    for hint in ("?code=<function key>", "20.100.24.41", "ALLOWED_SOURCE_HOSTS", "self-signed"):
        assert hint in ran.err


def test_the_simulator_refuses_what_the_cli_would_not_have_sent(sim: Simulator) -> None:
    env = creds(sim)
    ran = dpctl(
        "subscriptions", "create", "--endpoint", "http://example.no/api/events", "--resource", RESOURCE, env=env
    )
    assert ran.code == 1
    assert "must be an absolute https URL" in ran.err
    assert sim.subscriptions.all() == []  # refused before anything was sent


def test_send_posts_lifecycles_with_the_key_and_reports_statuses_and_percentiles(receiver: Receiver) -> None:
    receiver.statuses = [503] * 3
    ran = dpctl(
        "send",
        "--url",
        receiver.url,
        "--key",
        "secret",
        "--count",
        "40",
        "--concurrency",
        "4",
        "--duplicates",
        "0.25",
        "--seed",
        "5",
        "--json",
    )
    assert ran.code == 1  # three requests failed
    report = ran.json()
    assert report["statuses"] == {"200": 37, "503": 3}
    assert report["sent"] == 40
    assert report["duplicatesSent"] == 40 - report["uniqueEvents"] > 0
    assert set(report["latencyMs"]) == {"p50", "p90", "p99", "max"}
    assert report["latencyMs"]["p50"] <= report["latencyMs"]["p99"] <= report["latencyMs"]["max"]
    assert len(receiver.requests) == 40
    assert all(r["headers"]["content-type"] == "application/json" for r in receiver.requests)
    assert receiver.requests[0]["body"]["type"] == "dialogporten.dialog.created.v1"


def test_send_puts_the_function_key_in_the_query_and_never_prints_it(receiver: Receiver) -> None:
    ran = dpctl("send", "--url", receiver.url + "?x=1", "--key", "k y", "--count", "1", "--json")
    assert ran.code == 0
    assert ran.json()["url"] == receiver.url + "?x=1&code=***"  # the endpoint, its key redacted
    assert "k+y" not in ran.out
    [request] = receiver.requests
    assert parse_qs(urlsplit(request["path"]).query) == {"x": ["1"], "code": ["k y"]}


def test_send_for_a_duration_at_a_rate(receiver: Receiver) -> None:
    ran = dpctl("send", "--url", receiver.url, "--duration", "1", "--rate", "20", "--json")
    assert ran.code == 0
    assert 15 <= ran.json()["sent"] <= 20  # 20 slots in one second; never more than the rate allows
