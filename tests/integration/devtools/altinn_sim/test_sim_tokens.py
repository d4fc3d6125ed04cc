"""The simulator's fake Maskinporten and exchange: each documented rule of the grant, pinned."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Simulator
from devtools.altinn_sim.tokens import Client, TokenRefused, TokenService
from tests.sim_support import CLIENT_ID, KEY, KID, altinn_token

ISSUER = "http://sim/maskinporten/"
NOW = 1_800_000_000


@pytest.fixture
def service() -> TokenService:
    tokens = TokenService(ISSUER, "http://sim", clock=lambda: NOW)
    tokens.register(Client(CLIENT_ID, KID, KEY.public_key()))
    return tokens


def grant(
    key: Any = KEY, headers: dict[str, Any] | None = None, drop: tuple[str, ...] = (), **claims: Any
) -> dict[str, list[str]]:
    body = {
        "aud": ISSUER,
        "iss": CLIENT_ID,
        "scope": "altinn:events.subscribe",
        "iat": NOW,
        "exp": NOW + 120,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    for name in drop:
        body.pop(name)
    assertion = jwt.encode(body, key, algorithm="RS256", headers={"kid": KID, **(headers or {})})
    return {"grant_type": ["urn:ietf:params:oauth:grant-type:jwt-bearer"], "assertion": [assertion]}


def refusal(service: TokenService, form: dict[str, list[str]]) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        service.token(form)
    return caught.value


def test_a_good_grant_gets_a_token_with_expires_in_and_scope(service: TokenService) -> None:
    answer = service.token(grant())
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope"}
    assert (answer["token_type"], answer["expires_in"], answer["scope"]) == ("Bearer", 120, "altinn:events.subscribe")


def test_wrong_grant_type(service: TokenService) -> None:
    form = {**grant(), "grant_type": ["client_credentials"]}
    assert refusal(service, form).error == "unsupported_grant_type"


def test_signature_must_verify_against_the_registered_key(service: TokenService) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = refusal(service, grant(key=other))
    assert (refused.status, refused.description) == (400, "Invalid assertion: signature does not verify")


def test_unregistered_kid_and_client(service: TokenService) -> None:
    assert "kid 'other' is not registered" in refusal(service, grant(headers={"kid": "other"})).description
    assert refusal(service, grant(iss="someone-else")).error == "invalid_client"


def test_aud_must_be_the_issuer_not_the_token_url(service: TokenService) -> None:
    assert "aud must be" in refusal(service, grant(aud=ISSUER + "token")).description


def test_a_missing_required_claim_is_refused_and_a_documented_optional_one_taken(service: TokenService) -> None:
    assert "missing claim(s) scope" in refusal(service, grant(drop=("scope",))).description
    assert service.token(grant(pid="12345678901"))["access_token"]  # pid is in the grant's documented claims


def test_exp_minus_iat_at_most_120_seconds(service: TokenService) -> None:
    assert "exp - iat is 121 s" in refusal(service, grant(exp=NOW + 121)).description


def test_an_expired_grant(service: TokenService) -> None:
    refused = refusal(service, grant(iat=NOW - 10, exp=NOW - 1))
    assert refused.description == "Invalid assertion: the grant has expired"


def test_iat_outside_ten_seconds_of_the_clock(service: TokenService) -> None:
    assert "iat is -11 s from our clock" in refusal(service, grant(iat=NOW - 11, exp=NOW + 60)).description
    assert "iat is +11 s" in refusal(service, grant(iat=NOW + 11, exp=NOW + 60)).description


def test_a_reused_jti(service: TokenService) -> None:
    form = grant()
    service.token(form)
    assert refusal(service, form).description == "Invalid assertion: jti has been used before"


def test_a_scope_the_client_may_not_use(service: TokenService) -> None:
    refused = refusal(service, grant(scope="altinn:events.subscribe skatteetaten:secret"))
    assert (refused.error, refused.description) == (
        "invalid_scope",
        "scope not allowed for this client: skatteetaten:secret",
    )


def test_the_exchange_adds_the_org_claim_only_with_altinn_serviceowner(service: TokenService) -> None:
    owner = service.exchange(
        "Bearer " + service.token(grant(scope="altinn:serviceowner altinn:events.subscribe"))["access_token"]
    )
    plain = service.exchange("Bearer " + service.token(grant())["access_token"])
    owner_claims = jwt.decode(owner, options={"verify_signature": False})
    plain_claims = jwt.decode(plain, options={"verify_signature": False})
    assert owner_claims["urn:altinn:org"] == "ttd"
    assert "urn:altinn:org" not in plain_claims
    assert plain_claims["exp"] - plain_claims["iat"] == 30 * 60


def test_the_exchange_refuses_a_missing_forged_or_expired_token(service: TokenService) -> None:
    assert refusal_of(lambda: service.exchange(None)).status == 401
    forged = jwt.encode({"iss": ISSUER, "exp": NOW + 60}, KEY, algorithm="RS256")
    assert refusal_of(lambda: service.exchange(f"Bearer {forged}")).status == 401
    token = service.token(grant())["access_token"]  # expires at NOW + 120
    within_skew = TokenService(ISSUER, "http://sim", clock=lambda: NOW + 129)
    within_skew._signing_key = service._signing_key  # the same issuer, later
    assert within_skew.exchange(f"Bearer {token}")  # AUTH-EXCHANGE-401: 10 s of clock skew
    later = TokenService(ISSUER, "http://sim", clock=lambda: NOW + 131)
    later._signing_key = service._signing_key
    assert "expired" in refusal_of(lambda: later.exchange(f"Bearer {token}")).description


def refusal_of(call: Any) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        call()
    return caught.value


def test_over_http_the_token_endpoint_answers_oauth_errors_and_the_exchange_json_quotes_on_request(
    sim: Simulator,
) -> None:
    request = urllib.request.Request(
        f"{sim.base_url}/maskinporten/token", data=b"grant_type=x&assertion=y", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["error"] == "unsupported_grant_type"
    token = altinn_token(sim)  # through shared.altinn.maskinporten: grant, token, exchange
    assert jwt.decode(token, options={"verify_signature": False})["urn:altinn:org"] == "ttd"
