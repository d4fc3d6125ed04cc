"""Maskinporten tokens from a JWT grant, and the Altinn token exchange; both cached and thread-safe.

The contracts, with their sources (see the project's notes on the Altinn APIs):

- Token endpoint: ``POST https://{test.}maskinporten.no/token`` with the form
  ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<grant>``
  (docs.digdir.no "/token endpoint").
- The grant (docs.digdir.no "JWT grant"): header ``alg`` RS256 and ``kid`` of a
  registered key; claims ``aud`` = the *issuer* (``https://{test.}maskinporten.no/``,
  the token URL is no longer accepted), ``iss`` = the client id, ``scope``
  (space-separated), ``iat``, ``exp`` with ``exp - iat`` <= 120 s, and a fresh
  ``jti`` (a grant cannot be reused). Claims outside the documented list are refused
  with 400 "Invalid assertion", so none are added.
- The response carries ``expires_in``, which varies by scope: cache by it.
- Altinn exchange: ``GET https://platform.{tt02.}altinn.no/authentication/api/v1/exchange/maskinporten``
  with the Maskinporten token as bearer; the body is the Altinn JWT as a string,
  JSON-quoted or not depending on ``Accept`` (AltinnAuthentication
  ``AuthenticationController``). The Events API accepts only Altinn tokens.

No ``azure.functions`` import: the app reuses this for Dialogporten, which takes
Maskinporten tokens directly. Every call goes through the one outbound client
(:mod:`shared.altinn.http`: no redirects, TLS only, bounded); HTTP and the clock
can be injected.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from shared.altinn.http import HttpClient, HttpResponse, Transport, parse_http_time
from shared.errors import AuthError, InvalidValue, OutboundError, TokenRefused, TokenUnavailable

__all__ = [
    "PROD",
    "TT02",
    "AltinnExchange",
    "AuthError",
    "Environment",
    "HttpResponse",
    "MaskinportenClient",
    "SigningKey",
    "Token",
    "TokenRefused",
    "TokenSource",
    "TokenUnavailable",
    "Transport",
    "load_key",
    "parse_key",
    "public_jwk",
    "simulated",
    "strip_quotes",
    "unverified_claims",
]

GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: docs.digdir.no "JWT grant": ``exp - iat`` may be at most 120 seconds.
MAX_GRANT_LIFETIME: Final = 120
#: Refresh this long before ``expires_in`` runs out, so a token is never sent as it expires.
DEFAULT_REFRESH_MARGIN: Final = 30.0
EXCHANGE_PATH: Final = "/authentication/api/v1/exchange/maskinporten"
#: AltinnAuthentication appsettings ``JwtValidityMinutes``; used only when the token has no readable ``exp``.
FALLBACK_ALTINN_LIFETIME: Final = 30 * 60
HTTP_TIMEOUT: Final = 30.0
#: A token answer is a few KiB.
MAX_TOKEN_BYTES: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class Environment:
    """Where to authenticate: Maskinporten's issuer and token URL, and the Altinn platform base."""

    name: str
    issuer: str
    token_url: str
    platform: str

    @property
    def exchange_url(self) -> str:
        return self.platform.rstrip("/") + EXCHANGE_PATH


#: Sources: EV ``test/k6/src/config.js``; DOCS ``altinn-studio/v8/guides/shared/api/base-urls.md``.
TT02: Final = Environment(
    "tt02", "https://test.maskinporten.no/", "https://test.maskinporten.no/token", "https://platform.tt02.altinn.no"
)
PROD: Final = Environment(
    "prod", "https://maskinporten.no/", "https://maskinporten.no/token", "https://platform.altinn.no"
)


def simulated(base_url: str) -> Environment:
    """The local Altinn simulator at ``base_url`` (dev only): same paths, its own issuer."""
    base = base_url.rstrip("/")
    return Environment("local", f"{base}/maskinporten/", f"{base}/maskinporten/token", base)


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A private RSA key and the ``kid`` it is registered under at Maskinporten."""

    key: RSAPrivateKey = field(repr=False)
    kid: str


def parse_key(text: str, kid: str | None = None) -> SigningKey:
    """A private key as PEM or as a JWK (JSON). A JWK's own ``kid`` is used unless ``kid`` is given."""
    stripped = text.strip()
    key: object
    if stripped.startswith("{"):
        try:
            jwk = json.loads(stripped)
        except ValueError as exc:
            raise TokenRefused(f"the key looks like a JWK but is not JSON: {exc}") from exc
        if jwk.get("kty") != "RSA" or "d" not in jwk:
            raise TokenRefused("the JWK must be a private RSA key (kty RSA with a 'd' member)")
        key = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
        kid = kid or jwk.get("kid")
    else:
        try:
            key = serialization.load_pem_private_key(stripped.encode("utf-8"), password=None)
        except (ValueError, TypeError) as exc:
            raise TokenRefused(f"the key is neither a JWK nor an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, RSAPrivateKey):
        raise TokenRefused("the key must be an RSA private key (Maskinporten grants are RS256)")
    if not kid:
        raise TokenRefused("no key id: give the kid the key is registered under (a JWK may carry it as 'kid')")
    return SigningKey(key, kid)


def load_key(
    *,
    file: str | os.PathLike[str] | None = None,
    env_var: str | None = None,
    kid: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> SigningKey:
    """The key from a file, or else from an environment variable holding the PEM or JWK text."""
    if file:
        path = Path(file)
        try:
            return parse_key(path.read_text(encoding="utf-8"), kid)
        except OSError as exc:
            raise TokenRefused(f"cannot read the key file {path}: {exc.strerror}") from exc
    environ = os.environ if environ is None else environ
    if env_var and environ.get(env_var):
        return parse_key(environ[env_var], kid)
    raise TokenRefused(f"no key: give a key file, or set {env_var or 'an environment variable'} to the PEM or JWK")


def public_jwk(key: SigningKey) -> dict[str, Any]:
    """The public half as a JWK with ``kid``, ``alg`` and ``use``: what one registers at Maskinporten."""
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.key.public_key()))
    return {**jwk, "kid": key.kid, "alg": "RS256", "use": "sig"}


# --- the grant and the tokens ----------------------------------------------------------------------


def grant_claims(
    client_id: str,
    scope: str,
    issuer: str,
    now: float,
    *,
    lifetime: int = MAX_GRANT_LIFETIME,
    resource: str | None = None,
) -> dict[str, Any]:
    if not 0 < lifetime <= MAX_GRANT_LIFETIME:
        raise InvalidValue(f"a grant lives at most {MAX_GRANT_LIFETIME} s, asked for {lifetime}")
    iat = int(now)
    claims: dict[str, Any] = {
        "aud": issuer,
        "iss": client_id,
        "scope": scope,
        "iat": iat,
        "exp": iat + lifetime,
        "jti": str(uuid.uuid4()),
    }
    if resource:
        claims["resource"] = resource
    return claims


def make_grant(
    key: SigningKey, client_id: str, scope: str, issuer: str, now: float, *, resource: str | None = None
) -> str:
    return jwt.encode(
        grant_claims(client_id, scope, issuer, now, resource=resource),
        key.key,
        algorithm="RS256",
        headers={"kid": key.kid},
    )


@dataclass(frozen=True, slots=True)
class Token:
    access_token: str = field(repr=False)
    expires_at: float
    scope: str = ""
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret

    def expires_in(self, now: float) -> float:
        return self.expires_at - now

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


class TokenSource(Protocol):
    """A cached token provider: :class:`MaskinportenClient` or :class:`AltinnExchange`."""

    def token(self) -> Token: ...

    def invalidate(self) -> None: ...


def _error_text(response: HttpResponse) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.body[:300].decode("utf-8", "replace")
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "error_description", "title", "detail") if body.get(k)]
        if parts:
            return ": ".join(parts)
    return json.dumps(body)[:300]


class _Cached(ABC):
    """One refresh at a time; callers in between get the cached token."""

    def __init__(self, clock: Callable[[], float], margin: float) -> None:
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()
        self._token: Token | None = None
        self.fetches = 0

    @abstractmethod
    def _fetch(self) -> Token:
        """A fresh token from the issuer."""

    def token(self) -> Token:
        with self._lock:
            current = self._token
            if current is None or current.expires_in(self._clock()) <= self._margin:
                current = self._token = self._fetch()
                self.fetches += 1
            return current

    def invalidate(self) -> None:
        with self._lock:
            self._token = None


class MaskinportenClient(_Cached):
    """Maskinporten access tokens for one client and scope, cached until ``margin`` s before ``expires_in``."""

    def __init__(
        self,
        client_id: str,
        key: SigningKey,
        scope: str,
        environment: Environment,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        margin: float = DEFAULT_REFRESH_MARGIN,
        resource: str | None = None,
    ) -> None:
        super().__init__(clock, margin)
        if not client_id or not scope.strip():
            raise TokenRefused("a Maskinporten client needs a client id and at least one scope")
        self.client_id = client_id
        self.scope = " ".join(scope.split())
        self.environment = environment
        self._key = key
        self._transport: Transport = transport or HttpClient(pool_size=2)
        self._resource = resource

    def _fetch(self) -> Token:
        now = self._clock()
        grant = make_grant(self._key, self.client_id, self.scope, self.environment.issuer, now, resource=self._resource)
        form = urllib.parse.urlencode({"grant_type": GRANT_TYPE, "assertion": grant}).encode("ascii")
        url = self.environment.token_url
        try:
            response = self._transport(
                "POST",
                url,
                body=form,
                timeout=HTTP_TIMEOUT,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
                max_bytes=MAX_TOKEN_BYTES,
            )
        except OutboundError as exc:
            raise TokenUnavailable(f"Maskinporten ({url}) could not be reached: {exc}") from exc
        if response.status != 200:
            raise _refusal(f"Maskinporten ({url})", response, now)
        try:
            body = response.json()
            access = str(body["access_token"])
            expires_in = float(body["expires_in"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenUnavailable(f"Maskinporten ({url}) answered 200 without access_token/expires_in") from exc
        return Token(
            access, now + expires_in, str(body.get("scope", self.scope)), str(body.get("token_type", "Bearer"))
        )


def strip_quotes(text: str) -> str:
    """The exchange answers the JWT as a plain string or as a JSON string, depending on ``Accept``."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            decoded = json.loads(text)
        except ValueError:
            return text[1:-1]
        return decoded if isinstance(decoded, str) else text
    return text


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT we were just handed over TLS by its issuer; used only to read ``exp`` and ``scope``."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return {}
    return claims


class AltinnExchange(_Cached):
    """Altinn tokens for the Events API: a cached Maskinporten token exchanged, cached by the Altinn JWT's ``exp``."""

    def __init__(
        self,
        maskinporten: MaskinportenClient,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        margin: float = DEFAULT_REFRESH_MARGIN,
        test_org_mapping: bool = False,
    ) -> None:
        super().__init__(clock, margin)
        self.maskinporten = maskinporten
        self._transport: Transport = transport or HttpClient(pool_size=2)
        self._test = test_org_mapping

    def _fetch(self) -> Token:
        url = self.maskinporten.environment.exchange_url + ("?test=true" if self._test else "")
        for attempt in (1, 2):
            mp = self.maskinporten.token()
            now = self._clock()
            try:
                response = self._transport(
                    "GET",
                    url,
                    body=None,
                    timeout=HTTP_TIMEOUT,
                    headers={"Authorization": f"Bearer {mp.access_token}"},
                    max_bytes=MAX_TOKEN_BYTES,
                )
            except OutboundError as exc:
                raise TokenUnavailable(f"the Altinn exchange ({url}) could not be reached: {exc}") from exc
            if response.status == 401 and attempt == 1:
                # A cached Maskinporten token revoked or clock-skewed: one fresh token, one more try.
                self.maskinporten.invalidate()
                continue
            break
        if response.status == 401:
            self.maskinporten.invalidate()  # never reuse a token the exchange refused
            raise TokenRefused(
                f"the Altinn exchange ({url}) refused a fresh Maskinporten token: 401 {_error_text(response)}", 401
            )
        if response.status != 200:
            raise _refusal(f"the Altinn exchange ({url})", response, now)
        altinn = strip_quotes(response.body.decode("utf-8"))
        claims = unverified_claims(altinn)
        if not claims:
            raise TokenUnavailable(f"the Altinn exchange ({url}) answered 200 with something that is not a JWT")
        exp = claims.get("exp")
        expires_at = float(exp) if isinstance(exp, int | float) else now + FALLBACK_ALTINN_LIFETIME
        return Token(altinn, expires_at, str(claims.get("scope", mp.scope)))


#: OAuth 2.0 error codes (RFC 6749 section 5.2) by which Maskinporten refuses a grant for good: the client, the
#: key, the audience or the scope is wrong (docs.digdir.no, Maskinporten troubleshooting: MP-1xx, MP-2xx).
REFUSED_GRANT: Final = frozenset({"invalid_client", "invalid_grant", "invalid_scope", "unauthorized_client"})


def _error_code(response: HttpResponse) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _refusal(where: str, response: HttpResponse, now: float) -> AuthError:
    """What a non-200 from Maskinporten or the exchange means: a refused grant, or "not now".

    Only a refused grant is permanent (its OAuth error code, or a 403: no access to the scope); a 429 or a
    5xx is never a refusal, and names its ``Retry-After`` moment when it gives one. Neither Maskinporten nor
    the exchange documents a 429, but a gateway in front of them may answer one.
    """
    status = response.status
    answer = f"{status} {_error_text(response)}".rstrip()
    retry_at = parse_http_time(response.header("Retry-After"), now)
    if status == 429 or status >= 500:
        later = f" (Retry-After {retry_at.isoformat()})" if retry_at else ""
        return TokenUnavailable(f"{where} said not now: {answer}{later}", status, retry_at)
    if _error_code(response) in REFUSED_GRANT or status in (401, 403):
        return TokenRefused(f"{where} refused the grant: {answer}", status)
    if 400 <= status < 500:  # a request the service refuses as made: the same again would be refused too
        return TokenRefused(f"{where} refused: {answer}", status)
    return TokenUnavailable(f"{where} gave an answer the token protocol does not: {answer}", status, retry_at)
