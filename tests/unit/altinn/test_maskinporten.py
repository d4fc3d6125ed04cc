"""The token provider: the grant's claims, key formats, caching by expires_in, one refresh at a time, the exchange."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.altinn import maskinporten as mp
from shared.altinn.maskinporten import AltinnExchange, AuthError, HttpResponse, MaskinportenClient, SigningKey
from shared.errors import PermanentError, TokenRefused, TokenUnavailable, Unreachable

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
SIGNING = SigningKey(KEY, "kid-1")
SCOPE = "altinn:events.subscribe altinn:serviceowner"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeMaskinporten:
    """Answers like the /token endpoint; records the grants it got."""

    def __init__(self, expires_in: int = 120, status: int = 200) -> None:
        self.expires_in = expires_in
        self.status = status
        self.grants: list[str] = []
        self.lock = threading.Lock()

    def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
        max_bytes: int = 0,
    ) -> HttpResponse:
        assert method == "POST"
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        form = parse_qs((body or b"").decode())
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        with self.lock:
            self.grants.append(form["assertion"][0])
            n = len(self.grants)
        time.sleep(0.01)  # a slow network widens any race between refreshers
        if self.status != 200:
            return HttpResponse(
                self.status,
                {},
                json.dumps({"error": "invalid_grant", "error_description": "Invalid assertion"}).encode(),
            )
        return HttpResponse(
            200,
            {},
            json.dumps(
                {"access_token": f"mp-{n}", "token_type": "Bearer", "expires_in": self.expires_in, "scope": SCOPE}
            ).encode(),
        )


def _client(transport: Any, clock: Clock, margin: float = 30) -> MaskinportenClient:
    return MaskinportenClient("client-1", SIGNING, SCOPE, mp.TT02, transport=transport, clock=clock, margin=margin)


def test_the_grant_has_exactly_the_documented_claims_and_header() -> None:
    fake, clock = FakeMaskinporten(), Clock()
    _client(fake, clock).token()
    [grant] = fake.grants
    header = jwt.get_unverified_header(grant)
    assert (header["alg"], header["kid"]) == ("RS256", "kid-1")
    claims = jwt.decode(
        grant,
        KEY.public_key(),
        algorithms=["RS256"],
        audience="https://test.maskinporten.no/",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert set(claims) == {"aud", "iss", "scope", "iat", "exp", "jti"}  # anything else: 400 "Invalid assertion"
    assert claims["aud"] == "https://test.maskinporten.no/"  # the issuer, not the token URL
    assert claims["iss"] == "client-1"
    assert claims["scope"] == SCOPE
    assert claims["iat"] == int(clock.now)
    assert 0 < claims["exp"] - claims["iat"] <= 120


def test_prod_grants_name_the_prod_issuer_and_every_grant_has_a_fresh_jti() -> None:
    fake, clock = FakeMaskinporten(expires_in=10), Clock()
    client = MaskinportenClient("c", SIGNING, "s", mp.PROD, transport=fake, clock=clock, margin=0)
    for _ in range(3):
        client.token()
        clock.now += 11
    claims = [jwt.decode(g, options={"verify_signature": False}) for g in fake.grants]
    assert {c["aud"] for c in claims} == {"https://maskinporten.no/"}
    assert len({c["jti"] for c in claims}) == 3


def test_a_grant_may_not_live_longer_than_120_seconds() -> None:
    with pytest.raises(ValueError, match="at most 120"):
        mp.grant_claims("c", "s", "https://test.maskinporten.no/", 0, lifetime=121)


def test_tokens_are_cached_until_shortly_before_expires_in() -> None:
    fake, clock = FakeMaskinporten(expires_in=120), Clock()
    client = _client(fake, clock, margin=30)
    first = client.token()
    clock.now += 89
    assert client.token() is first  # 31 s left: still good
    clock.now += 1
    second = client.token()  # 30 s left: refreshed
    assert (first.access_token, second.access_token, len(fake.grants)) == ("mp-1", "mp-2", 2)
    assert second.expires_at == clock.now + 120


def test_concurrent_callers_cause_one_refresh() -> None:
    fake, clock = FakeMaskinporten(), Clock()
    client = _client(fake, clock)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(client.token().access_token)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tokens == ["mp-1"] * 16
    assert len(fake.grants) == 1


def test_a_refused_grant_is_an_auth_error_with_maskinportens_reason() -> None:
    with pytest.raises(AuthError, match=r"refused the grant: 400 invalid_grant: Invalid assertion") as caught:
        _client(FakeMaskinporten(status=400), Clock()).token()
    assert caught.value.status == 400


def test_an_unreachable_endpoint_is_an_auth_error() -> None:
    def down(method: str, url: str, **_: Any) -> HttpResponse:
        raise Unreachable("POST https://test.maskinporten.no/token: ConnectionRefusedError: refused")

    with pytest.raises(AuthError, match="could not be reached"):
        _client(down, Clock()).token()


@pytest.mark.parametrize("form", ["pem", "jwk"])
def test_keys_load_as_pem_or_jwk_from_a_file_or_an_environment_variable(form: str, tmp_path: Path) -> None:
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY)), "kid": "from-jwk"}
    text = PEM.decode() if form == "pem" else json.dumps(jwk)
    path = tmp_path / "key"
    path.write_text(text)
    from_file = mp.load_key(file=path, kid="given" if form == "pem" else None)
    from_env = mp.load_key(env_var="MP_KEY", environ={"MP_KEY": text}, kid="given" if form == "pem" else None)
    for key in (from_file, from_env):
        assert key.key.private_numbers() == KEY.private_numbers()
        assert key.kid == ("given" if form == "pem" else "from-jwk")


def test_bad_keys_are_refused_precisely(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="no key id"):
        mp.parse_key(PEM.decode())
    with pytest.raises(AuthError, match="private RSA key"):
        mp.parse_key(json.dumps(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))), "k")
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(AuthError, match="must be an RSA private key"):
        mp.parse_key(ec_pem.decode(), "k")
    with pytest.raises(AuthError, match="neither a JWK nor"):
        mp.parse_key("hello", "k")
    with pytest.raises(AuthError, match="cannot read the key file"):
        mp.load_key(file=tmp_path / "missing.pem", kid="k")
    with pytest.raises(AuthError, match="set MP_KEY"):
        mp.load_key(env_var="MP_KEY", environ={})


def test_the_public_jwk_carries_kid_and_verifies_the_grant() -> None:
    jwk = mp.public_jwk(SIGNING)
    assert (jwk["kid"], jwk["alg"], jwk["use"], jwk["kty"]) == ("kid-1", "RS256", "sig", "RSA")
    assert "d" not in jwk
    grant = mp.make_grant(SIGNING, "c", "s", "https://test.maskinporten.no/", time.time())
    jwt.decode(grant, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience="https://test.maskinporten.no/")


def _altinn_jwt(exp: float) -> str:
    return jwt.encode({"exp": int(exp), "scope": SCOPE, "urn:altinn:org": "ttd"}, KEY, algorithm="RS256")


@pytest.mark.parametrize("quoted", [True, False])
def test_the_exchange_strips_json_quotes_and_caches_by_the_altinn_tokens_exp(quoted: bool) -> None:
    clock = Clock()
    calls: list[dict[str, str]] = []

    def platform(
        method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float, max_bytes: int = 0
    ) -> HttpResponse:
        if url.endswith("/token"):
            return FakeMaskinporten(expires_in=3600)(method, url, headers=headers, body=body, timeout=timeout)
        assert (method, url) == ("GET", "https://platform.tt02.altinn.no/authentication/api/v1/exchange/maskinporten")
        calls.append(dict(headers))
        token = _altinn_jwt(clock.now + 1800)
        return HttpResponse(200, {}, (json.dumps(token) if quoted else token).encode())

    exchange = AltinnExchange(_client(platform, clock), transport=platform, clock=clock, margin=30)
    first = exchange.token()
    assert first.access_token.count(".") == 2
    assert not first.access_token.startswith('"')
    assert calls[0]["Authorization"] == "Bearer mp-1"
    clock.now += 1769
    assert exchange.token() is first
    clock.now += 1
    assert exchange.token() is not first
    assert len(calls) == 2


def test_an_exchange_401_gets_one_fresh_token_and_a_second_401_is_a_refusal() -> None:
    clock = Clock()
    fake = FakeMaskinporten(expires_in=3600)
    exchanged: list[str] = []

    def platform(method: str, url: str, **kwargs: Any) -> HttpResponse:
        if url.endswith("/token"):
            return fake(method, url, **kwargs)
        exchanged.append(kwargs["headers"]["Authorization"])
        return HttpResponse(401, {}, b"")

    client = _client(platform, clock)
    with pytest.raises(TokenRefused, match=r"exchange .* refused a fresh Maskinporten token: 401"):
        AltinnExchange(client, transport=platform, clock=clock).token()
    assert exchanged == ["Bearer mp-1", "Bearer mp-2"]  # the cached token, then a fresh one
    assert isinstance(TokenRefused("x"), PermanentError)
    client.token()
    assert len(fake.grants) == 3  # neither refused token was reused


def test_an_exchange_401_then_200_is_a_token() -> None:
    clock = Clock()
    fake = FakeMaskinporten(expires_in=3600)
    answers = [HttpResponse(401, {}, b""), HttpResponse(200, {}, _altinn_jwt(clock.now + 1800).encode())]

    def platform(method: str, url: str, **kwargs: Any) -> HttpResponse:
        return fake(method, url, **kwargs) if url.endswith("/token") else answers.pop(0)

    assert (
        AltinnExchange(_client(platform, clock), transport=platform, clock=clock).token().access_token.count(".") == 2
    )
    assert len(fake.grants) == 2


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (400, {"error": "invalid_grant", "error_description": "MP-100 Invalid assertion"}, {}, "refused"),
        (400, {"error": "invalid_scope", "error_description": "MP-200"}, {}, "refused"),
        (401, {"error": "invalid_client"}, {}, "refused"),
        (403, {"error_description": "MP-250 Consumer has not been granted access to the scope"}, {}, "refused"),
        (429, {"error": "temporarily_unavailable"}, {}, "not now"),
        (429, {}, {"Retry-After": "120"}, "not now, at"),
        (503, {}, {"Retry-After": "Thu, 03 Dec 2026 12:00:00 GMT"}, "not now, at"),
        (500, {}, {}, "not now"),
    ],
)
def test_maskinporten_answers_are_refused_grants_or_not_now(
    status: int, body: dict[str, str], headers: dict[str, str], kind: str
) -> None:
    def answer(method: str, url: str, **kwargs: Any) -> HttpResponse:
        return HttpResponse(status, headers, json.dumps(body).encode())

    with pytest.raises(AuthError) as caught:
        _client(answer, Clock()).token()
    if kind == "refused":
        assert isinstance(caught.value, TokenRefused)
        assert isinstance(caught.value, PermanentError)
        assert "refused the grant" in str(caught.value)
    else:
        assert isinstance(caught.value, TokenUnavailable)
        assert not isinstance(caught.value, PermanentError)
        assert (caught.value.retry_at is not None) is kind.endswith("at")


def test_strip_quotes() -> None:
    assert mp.strip_quotes('"a.b.c"') == "a.b.c"
    assert mp.strip_quotes("a.b.c\n") == "a.b.c"
    assert mp.strip_quotes('"a\\"b"') == 'a"b'
