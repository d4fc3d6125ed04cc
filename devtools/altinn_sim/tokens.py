"""The simulator's fake Maskinporten token endpoint and fake Altinn token exchange.

Every rule cites its source (the project's notes on the Altinn APIs, section 2):

- MP-FORM: ``POST`` form data, ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…``
  (docs.digdir.no "/token endpoint").
- MP-HEADER: ``alg`` RS256/RS384/RS512 and ``kid`` of a registered key (docs.digdir.no "JWT grant").
- MP-AUD: ``aud`` must be the issuer; the token URL is no longer accepted (docs.digdir.no "JWT grant",
  EV ``test/k6/src/config.js``).
- MP-CLAIMS: ``aud``, ``iss`` (client_id), ``scope``, ``iat``, ``exp`` required; claims outside the
  documented list give 400 "Invalid assertion" (docs.digdir.no "JWT grant").
- MP-TIME: ``iat`` within ±10 s of Maskinporten's clock and ``exp - iat`` <= 120 s (docs.digdir.no "JWT grant").
- MP-JTI: a grant cannot be reused (docs.digdir.no "JWT grant").
- MP-RESPONSE: ``access_token``, ``token_type``, ``expires_in``, ``scope`` (docs.digdir.no "/token endpoint").
- EX-AUTH: ``GET /authentication/api/v1/exchange/maskinporten`` with the Maskinporten token as bearer;
  401 when it is not valid; the body is the Altinn JWT as a string (AU ``AuthenticationController``,
  EV ``test/k6/src/api/authentication.js``).
- EX-ORG: the org claim is added only when the scope contains ``altinn:serviceowner``
  (AU ``AuthenticationController.HasServiceOwnerScope``).
- EX-LIFETIME: ``JwtValidityMinutes: 30`` (AU ``appsettings.json``).

Fault mode (not Maskinporten's documented behaviour): :meth:`TokenService.not_now` makes the next token
requests answer 429 or a 5xx, with or without ``Retry-After``. Maskinporten documents neither a 429 nor a
``Retry-After`` (docs.digdir.no troubleshooting lists none), but a gateway in front of it may answer one, and
a client must take it as "not now", never as a refused grant.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ALGORITHMS: Final = ("RS256", "RS384", "RS512")
#: MP-CLAIMS: the documented claims of a grant; anything else is refused.
GRANT_CLAIMS: Final = frozenset(
    {"aud", "iss", "scope", "iat", "exp", "jti", "resource", "client_amr", "consumer_org", "authorization_details"}
)
REQUIRED_CLAIMS: Final = ("aud", "iss", "scope", "iat", "exp")
MAX_GRANT_LIFETIME: Final = 120
CLOCK_SKEW: Final = 10
ALTINN_LIFETIME: Final = 30 * 60
SERVICE_OWNER_SCOPE: Final = "altinn:serviceowner"


class TokenRefused(Exception):
    """An OAuth-style refusal: ``error`` and ``error_description``, with an HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class Client:
    """A Maskinporten client registered in the simulator: its public key, its org and its allowed scopes."""

    client_id: str
    kid: str
    public_key: RSAPublicKey = field(repr=False)
    org_number: str = "991825827"
    org_code: str = "ttd"
    scopes: frozenset[str] = frozenset(
        {"altinn:events.subscribe", "altinn:events.publish", SERVICE_OWNER_SCOPE, "digdir:dialogporten.serviceprovider"}
    )


class TokenService:
    """Issues and checks the simulator's Maskinporten and Altinn tokens (signed with its own key)."""

    def __init__(
        self, issuer: str, platform: str, *, clock: Callable[[], float] = time.time, token_lifetime: int = 120
    ) -> None:
        self.issuer = issuer
        self.platform = platform.rstrip("/")
        self.clock = clock
        self.token_lifetime = token_lifetime
        self._signing_key: RSAPrivateKey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._clients: dict[str, Client] = {}
        self._used_jti: dict[str, float] = {}
        self._not_now: list[tuple[int, str | None]] = []
        self._lock = threading.Lock()
        #: Maskinporten tokens issued so far (tests count token requests with it).
        self.issued = 0

    def register(self, client: Client) -> None:
        with self._lock:
            self._clients[client.client_id] = client

    # --- Maskinporten ---------------------------------------------------------------------

    def not_now(self, *answers: tuple[int, str | None]) -> None:
        """Fault mode: the next token requests get these (status, Retry-After) answers, in order."""
        with self._lock:
            self._not_now.extend(answers)

    def next_not_now(self) -> tuple[int, str | None] | None:
        with self._lock:
            return self._not_now.pop(0) if self._not_now else None

    def token(self, form: dict[str, list[str]]) -> dict[str, Any]:  # noqa: PLR0915 - the rules, in the doc's order
        grant_type = (form.get("grant_type") or [""])[0]
        assertion = (form.get("assertion") or [""])[0]
        if grant_type != GRANT_TYPE:  # MP-FORM
            raise TokenRefused(400, "unsupported_grant_type", f"grant_type must be {GRANT_TYPE}")
        if not assertion:  # MP-FORM
            raise TokenRefused(400, "invalid_request", "assertion is missing")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(400, "invalid_grant", f"Invalid assertion: not a JWT ({exc})") from exc
        if header.get("alg") not in ALGORITHMS:  # MP-HEADER
            raise TokenRefused(400, "invalid_grant", f"Invalid assertion: alg must be one of {', '.join(ALGORITHMS)}")
        client = self._clients.get(str(unverified.get("iss", "")))
        if client is None:  # MP-CLAIMS: iss is the client_id
            raise TokenRefused(
                400, "invalid_client", f"Invalid assertion: unknown client (iss) {unverified.get('iss')!r}"
            )
        if header.get("kid") != client.kid:  # MP-HEADER
            raise TokenRefused(400, "invalid_grant", f"Invalid assertion: kid {header.get('kid')!r} is not registered")
        try:  # signature only here; the claims are checked one by one below with precise messages
            claims: dict[str, Any] = jwt.decode(
                assertion,
                client.public_key,
                algorithms=list(ALGORITHMS),
                options={"verify_exp": False, "verify_iat": False, "verify_aud": False, "verify_nbf": False},
            )
        except jwt.InvalidSignatureError as exc:
            raise TokenRefused(400, "invalid_grant", "Invalid assertion: signature does not verify") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(400, "invalid_grant", f"Invalid assertion: {exc}") from exc
        missing = [c for c in REQUIRED_CLAIMS if c not in claims]
        if missing:  # MP-CLAIMS
            raise TokenRefused(400, "invalid_grant", f"Invalid assertion: missing claim(s) {', '.join(missing)}")
        unknown = sorted(set(claims) - GRANT_CLAIMS)
        if unknown:  # MP-CLAIMS
            raise TokenRefused(400, "invalid_grant", f"Invalid assertion: unknown claim(s) {', '.join(unknown)}")
        if claims["aud"] != self.issuer:  # MP-AUD
            raise TokenRefused(
                400, "invalid_grant", f"Invalid assertion: aud must be {self.issuer}, got {claims['aud']!r}"
            )
        now = self.clock()
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise TokenRefused(400, "invalid_grant", "Invalid assertion: iat and exp must be numbers")
        if abs(iat - now) > CLOCK_SKEW:  # MP-TIME
            raise TokenRefused(
                400, "invalid_grant", f"Invalid assertion: iat is {iat - now:+.0f} s from our clock (±{CLOCK_SKEW})"
            )
        if exp - iat > MAX_GRANT_LIFETIME:  # MP-TIME
            raise TokenRefused(
                400, "invalid_grant", f"Invalid assertion: exp - iat is {exp - iat:.0f} s (max {MAX_GRANT_LIFETIME})"
            )
        if exp <= now:  # MP-TIME
            raise TokenRefused(400, "invalid_grant", "Invalid assertion: the grant has expired")
        requested = frozenset(str(claims["scope"]).split())
        if not requested or not requested <= client.scopes:
            denied = ", ".join(sorted(requested - client.scopes)) or "(none requested)"
            raise TokenRefused(400, "invalid_scope", f"scope not allowed for this client: {denied}")
        jti = claims.get("jti")
        with self._lock:  # MP-JTI
            self._used_jti = {k: v for k, v in self._used_jti.items() if v > now - 3600}
            if jti is not None:
                if jti in self._used_jti:
                    raise TokenRefused(400, "invalid_grant", "Invalid assertion: jti has been used before")
                self._used_jti[str(jti)] = now
        scope = " ".join(sorted(requested))
        access = jwt.encode(
            {
                "iss": self.issuer,
                "client_id": client.client_id,
                "scope": scope,
                "iat": int(now),
                "exp": int(now) + self.token_lifetime,
                "jti": str(uuid.uuid4()),
                "token_type": "Bearer",
                "consumer": {"authority": "iso6523-actorid-upis", "ID": f"0192:{client.org_number}"},
            },
            self._signing_key,
            algorithm="RS256",
            headers={"kid": "altinn-sim-maskinporten"},
        )
        with self._lock:
            self.issued += 1
        # MP-RESPONSE
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.token_lifetime, "scope": scope}

    def _verify(self, token: str, issuer: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._signing_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(401, "invalid_token", f"the token is not valid: {exc}") from exc
        if claims.get("iss") != issuer:
            raise TokenRefused(401, "invalid_token", f"the token was not issued by {issuer}")
        if float(claims.get("exp", 0)) <= self.clock():
            raise TokenRefused(401, "invalid_token", "the token has expired")
        return claims

    # --- the Altinn exchange -------------------------------------------------------------------

    @property
    def altinn_issuer(self) -> str:
        return f"{self.platform}/authentication/api/v1/openid/"

    def exchange(self, authorization: str | None) -> str:
        if not authorization or not authorization.lower().startswith("bearer "):  # EX-AUTH
            raise TokenRefused(401, "invalid_token", "an Authorization: Bearer <Maskinporten token> header is required")
        mp = self._verify(authorization.split(" ", 1)[1].strip(), self.issuer)
        now = int(self.clock())
        org_number = str(mp.get("consumer", {}).get("ID", "0192:")).split(":", 1)[1]
        client = self._clients.get(str(mp.get("client_id")))
        claims: dict[str, Any] = {
            "iss": self.altinn_issuer,
            "iat": now,
            "exp": now + ALTINN_LIFETIME,  # EX-LIFETIME
            "scope": mp.get("scope", ""),
            "urn:altinn:orgNumber": org_number,
            "client_id": mp.get("client_id"),
            "urn:altinn:authenticatemethod": "maskinporten",
            "urn:altinn:authlevel": 3,
        }
        if SERVICE_OWNER_SCOPE in str(mp.get("scope", "")).split() and client is not None:  # EX-ORG
            claims["urn:altinn:org"] = client.org_code
        return jwt.encode(claims, self._signing_key, algorithm="RS256", headers={"kid": "altinn-sim-platform"})

    def maskinporten_claims(self, token: str) -> dict[str, Any]:
        """The claims of a valid Maskinporten token (Dialogporten takes them directly, no exchange)."""
        return self._verify(token, self.issuer)

    def altinn_claims(self, authorization: str | None) -> dict[str, Any]:
        """The caller of the Events API: a valid Altinn token (EV ``Program.cs``: Altinn tokens only)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise TokenRefused(401, "invalid_token", "an Authorization: Bearer <Altinn token> header is required")
        return self._verify(authorization.split(" ", 1)[1].strip(), self.altinn_issuer)
