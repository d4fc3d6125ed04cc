"""The simulator's fake Maskinporten token endpoint and fake Altinn token exchange.

Maskinporten has no public code: its rules cite Digdir's documentation (the ``felleslosninger/docs``
repository), which names the error codes but not the HTTP statuses; the simulator answers them 400 with the
OAuth error code (RFC 6749 section 5.2). The exchange cites Altinn/altinn-authentication's code. Rules:

- MP-FORM: ``POST`` form data, ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…``:
  another grant type is ``unsupported_grant_type``, no assertion ``invalid_request``.
  felleslosninger/docs _docs/Maskinporten/maskinporten_protocol_token.md (Request)
- MP-HEADER: ``alg`` RS256, RS384 or RS512, and the ``kid`` of a key registered to the client.
  felleslosninger/docs _docs/Maskinporten/maskinporten_protocol_jwtgrant.md (Request)
- MP-CLIENT: ``iss`` is the client id; an unknown one is ``invalid_client`` ("Client not found").
  felleslosninger/docs _docs/Maskinporten/maskinporten_feilsoking.md (MP-100: Client not found)
- MP-SIGNATURE: the grant's signature verifies against the client's registered key, else ``invalid_grant``.
  felleslosninger/docs _docs/Maskinporten/maskinporten_feilsoking.md (MP-124: Invalid JWT signature)
- MP-CLAIMS: ``aud``, ``iss``, ``iat``, ``exp`` and ``scope`` are required.
  felleslosninger/docs _docs/Maskinporten/maskinporten_protocol_jwtgrant.md (Request)
- MP-AUD: ``aud`` is Maskinporten's issuer, else ``invalid_grant`` (MP-110).
  felleslosninger/docs _docs/Maskinporten/maskinporten_feilsoking.md (MP-110)
- MP-TIME: ``iat`` within 10 s of Maskinporten's clock, ``exp - iat`` at most 120 s, and not expired (MP-130).
  felleslosninger/docs _docs/Maskinporten/maskinporten_protocol_jwtgrant.md (Maximum 120 seconds allowed)
  felleslosninger/docs _docs/Maskinporten/maskinporten_feilsoking.md (MP-130: JWT is expired)
- MP-SCOPE: every requested scope must be registered to the client, else ``invalid_scope`` (MP-200).
  felleslosninger/docs _docs/Maskinporten/maskinporten_feilsoking.md (MP-200)
- MP-JTI: a grant cannot be reused (MP-012 "Grant is used before").
  felleslosninger/docs _docs/Maskinporten/maskinporten_feilsoking.md (MP-012: Grant is used before)
- MP-RESPONSE: ``access_token``, ``token_type``, ``expires_in``, ``scope``.
  felleslosninger/docs _docs/Maskinporten/maskinporten_protocol_token.md (Response)
- FAULT-NOT-NOW: fault mode, not Maskinporten's documented behaviour (it documents no 429 and no
  ``Retry-After``): :meth:`TokenService.not_now` makes the next token requests answer 429 or a 5xx, with or
  without ``Retry-After``, as a gateway in front of it might. A client must take it as "not now".
- AUTH-EXCHANGE-401: ``GET /authentication/api/v1/exchange/maskinporten``: no ``Bearer`` token, one that is
  not a JWT, a bad signature, an expired token (10 s skew), a wrong issuer, or no ``consumer`` claim: 401,
  with the ``[ApiController]`` problem body ``{"title":"Unauthorized","status":401}``.
  Altinn/altinn-authentication src/Authentication/Controllers/AuthenticationController.cs (AuthenticationController.ExchangeExternalSystemToken)
  Altinn/altinn-authentication src/Authentication/Controllers/AuthenticationController.cs (AuthenticationController.AuthenticateMaskinportenToken)
- AUTH-EXCHANGE-400: an unknown token provider in the path is 400, a plain-text message.
  Altinn/altinn-authentication src/Authentication/Controllers/AuthenticationController.cs (Invalid token provider)
- AUTH-EXCHANGE-200: the body is the Altinn JWT as a string: ``text/plain``, or a JSON string when the request
  asks for ``application/json`` alone (MVC content negotiation; ``return Ok(serializedToken)``).
  Altinn/altinn-authentication src/Authentication/Controllers/AuthenticationController.cs (AuthenticationController.AuthenticateMaskinportenToken)
- AUTH-EXCHANGE-CLAIMS: the new token carries every claim of the Maskinporten token but ``aud``, ``iss``,
  ``client_amr`` and ``sid``, plus ``urn:altinn:orgNumber``, ``urn:altinn:authenticatemethod``,
  ``urn:altinn:authlevel`` 3, a new ``iss`` and ``sid``.
  Altinn/altinn-authentication src/Authentication/Controllers/AuthenticationController.cs (claimTypesToRemove)
- AUTH-EXCHANGE-ORG: the org claim ``urn:altinn:org`` only when the ``scope`` string *contains*
  ``altinn:serviceowner`` (a substring test) and the organisation number is in Altinn's list of orgs.
  Altinn/altinn-authentication src/Authentication/Controllers/AuthenticationController.cs (AuthenticationController.HasServiceOwnerScope)
- AUTH-EXCHANGE-LIFETIME: the Altinn token lives ``JwtValidityMinutes``, 30.
  Altinn/altinn-authentication src/Authentication/appsettings.json (JwtValidityMinutes)
"""  # noqa: E501 - a citation stays on one line

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
REQUIRED_CLAIMS: Final = ("aud", "iss", "scope", "iat", "exp")
MAX_GRANT_LIFETIME: Final = 120
CLOCK_SKEW: Final = 10
ALTINN_LIFETIME: Final = 30 * 60
#: The clock skew each service allows a token (AUTH-EXCHANGE-401, DP-AUTH-401, EV-AUTH).
EXCHANGE_SKEW: Final = 10.0
DIALOGPORTEN_SKEW: Final = 2.0
EVENTS_SKEW: Final = 0.0
SERVICE_OWNER_SCOPE: Final = "altinn:serviceowner"
#: AUTH-EXCHANGE-CLAIMS: the Maskinporten claims the exchange does not carry over.
NOT_CARRIED: Final = ("aud", "iss", "client_amr", "sid")


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
        #: AUTH-EXCHANGE-ORG: Altinn's list of orgs, organisation number -> org code (the registered clients').
        self._orgs: dict[str, str] = {}
        self._used_jti: dict[str, float] = {}
        self._not_now: list[tuple[int, str | None]] = []
        self._lock = threading.Lock()
        #: Maskinporten tokens issued so far (tests count token requests with it).
        self.issued = 0

    def register(self, client: Client) -> None:
        with self._lock:
            self._clients[client.client_id] = client
            self._orgs[client.org_number] = client.org_code

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
        except jwt.InvalidTokenError as exc:  # MP-FORM
            raise TokenRefused(400, "invalid_grant", f"Invalid assertion: not a JWT ({exc})") from exc
        if header.get("alg") not in ALGORITHMS:  # MP-HEADER
            raise TokenRefused(400, "invalid_grant", f"Invalid assertion: alg must be one of {', '.join(ALGORITHMS)}")
        client = self._clients.get(str(unverified.get("iss", "")))
        if client is None:  # MP-CLIENT
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
        except jwt.InvalidSignatureError as exc:  # MP-SIGNATURE
            raise TokenRefused(400, "invalid_grant", "Invalid assertion: signature does not verify") from exc
        except jwt.InvalidTokenError as exc:  # MP-SIGNATURE
            raise TokenRefused(400, "invalid_grant", f"Invalid assertion: {exc}") from exc
        missing = [c for c in REQUIRED_CLAIMS if c not in claims]
        if missing:  # MP-CLAIMS
            raise TokenRefused(400, "invalid_grant", f"Invalid assertion: missing claim(s) {', '.join(missing)}")
        if claims["aud"] != self.issuer:  # MP-AUD
            raise TokenRefused(
                400, "invalid_grant", f"Invalid assertion: aud must be {self.issuer}, got {claims['aud']!r}"
            )
        now = self.clock()
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):  # MP-CLAIMS
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
        if not requested or not requested <= client.scopes:  # MP-SCOPE
            denied = ", ".join(sorted(requested - client.scopes)) or "(none requested)"
            raise TokenRefused(400, "invalid_scope", f"scope not allowed for this client: {denied}")
        jti = claims.get("jti")
        with self._lock:
            self._used_jti = {k: v for k, v in self._used_jti.items() if v > now - 3600}
            if jti is not None:
                if jti in self._used_jti:  # MP-JTI
                    raise TokenRefused(400, "invalid_grant", "Invalid assertion: jti has been used before")
                self._used_jti[str(jti)] = now
        scope = " ".join(sorted(requested))
        access = jwt.encode(
            {
                "iss": self.issuer,
                "client_id": client.client_id,
                "client_amr": "private_key_jwt",
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

    def _verify(self, token: str, issuer: str, skew: float) -> dict[str, Any]:
        """A token's claims if it is one of ours from ``issuer``, unexpired within ``skew`` s; else a 401.

        Each service validates with its own clock skew: the exchange 10 s, Dialogporten 2 s, Events 0 s.
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._signing_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_iat": False, "verify_exp": False},
            )
        except jwt.InvalidTokenError as exc:  # AUTH-EXCHANGE-401, EV-AUTH, EV-SUB-AUTH, DP-AUTH-401
            raise TokenRefused(401, "invalid_token", f"the token is not valid: {exc}") from exc
        if claims.get("iss") != issuer:  # AUTH-EXCHANGE-401, EV-AUTH, EV-SUB-AUTH, DP-AUTH-401
            raise TokenRefused(401, "invalid_token", f"the token was not issued by {issuer}")
        if float(claims.get("exp", 0)) + skew <= self.clock():  # AUTH-EXCHANGE-401, EV-AUTH, EV-SUB-AUTH, DP-AUTH-401
            raise TokenRefused(401, "invalid_token", "the token has expired")
        return claims

    # --- the Altinn exchange -------------------------------------------------------------------

    @property
    def altinn_issuer(self) -> str:
        return f"{self.platform}/authentication/api/v1/openid/"

    def exchange(self, authorization: str | None) -> str:
        """The Altinn token for a Maskinporten token (``Authorization: Bearer …``), or a 401."""
        token = authorization[7:].strip() if authorization and authorization.lower().startswith("bearer ") else ""
        if not token:  # AUTH-EXCHANGE-401
            raise TokenRefused(401, "invalid_token", "an Authorization: Bearer <Maskinporten token> header is required")
        mp = self._verify(token, self.issuer, EXCHANGE_SKEW)
        consumer = mp.get("consumer")
        authority = consumer.get("authority") if isinstance(consumer, dict) else None
        consumer_id = str(consumer.get("ID", "")) if isinstance(consumer, dict) else ""
        if authority != "iso6523-actorid-upis" or ":" not in consumer_id:  # AUTH-EXCHANGE-401
            raise TokenRefused(401, "invalid_token", "Invalid consumer claim")
        org_number = consumer_id.split(":")[1]
        now = int(self.clock())
        claims = {k: v for k, v in mp.items() if k not in NOT_CARRIED}  # AUTH-EXCHANGE-CLAIMS
        claims.update(
            {
                "iss": self.altinn_issuer,
                "sid": str(uuid.uuid4()),
                "nbf": now,
                "iat": now,
                "exp": now + ALTINN_LIFETIME,  # AUTH-EXCHANGE-LIFETIME
                "urn:altinn:orgNumber": org_number,
                "urn:altinn:authenticatemethod": "maskinporten",
                "urn:altinn:authlevel": 3,
            }
        )
        org = self._orgs.get(org_number)
        if SERVICE_OWNER_SCOPE in str(mp.get("scope", "")) and org:  # AUTH-EXCHANGE-ORG: a substring test
            claims["urn:altinn:org"] = org
        return jwt.encode(claims, self._signing_key, algorithm="RS256", headers={"kid": "altinn-sim-platform"})

    def dialogporten_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token Dialogporten takes: Maskinporten's or the exchange's, by its issuer (2 s skew)."""
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        expected = self.altinn_issuer if issuer == self.altinn_issuer else self.issuer
        return self._verify(token, expected, DIALOGPORTEN_SKEW)

    def altinn_claims(self, authorization: str | None) -> dict[str, Any]:
        """The caller of the Events API: a valid Altinn token (Maskinporten's are not; no skew)."""
        if not authorization or not authorization.lower().startswith("bearer "):  # EV-AUTH, EV-SUB-AUTH
            raise TokenRefused(401, "invalid_token", "an Authorization: Bearer <Altinn token> header is required")
        return self._verify(authorization.split(" ", 1)[1].strip(), self.altinn_issuer, EVENTS_SKEW)
