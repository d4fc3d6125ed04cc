"""The contract of the Altinn side, stated once: each behaviour is a request and the answer's properties.

Every test runs against the simulator (``devtools/altinn_sim/``, whose rules cite the services' code), and the
read-only ones also against TT02 when credentials are in the environment, so that the simulator can be
checked against the real thing:

    MASKINPORTEN_CLIENT_ID, MASKINPORTEN_KID,     dpctl's Maskinporten settings: a TT02 client with the scope
    MASKINPORTEN_KEY_FILE (or MASKINPORTEN_KEY)   altinn:events.subscribe
    CONTRACT_RESOURCE                             a resource whose events that client may read
    CONTRACT_DIALOG_ID                            optional: a dialog of the client's organisation; the client then
                                                  needs digdir:dialogporten.serviceprovider too

    make contract-tt02

Against TT02 nothing is written: token requests and GETs only (no subscription is created, no dialog read with
``endUserId``). No token is printed: assertions never name a token, and failures show statuses, headers of
answers and the bodies of refusals. What cannot be provoked on TT02 (a maintenance window, a 429, events the
caller may not see, a POST) is marked simulator-only and skipped there with the reason.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cached_property
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from devtools.altinn_sim.dialogporten import sample_dialog
from devtools.samples import sample_event
from shared.altinn import maskinporten as mp
from shared.altinn.dialogporten import DialogportenClient
from shared.altinn.events_api import EVENTS_PATH, EventsApi
from shared.altinn.http import HttpClient, HttpResponse, parse_http_time, same_endpoint
from shared.errors import EventsApiError, TokenUnavailable
from tests.http_support import Trap

pytestmark = pytest.mark.contract

EVENTS_SCOPE: Final = "altinn:events.subscribe"
DIALOGPORTEN_SCOPE: Final = "digdir:dialogporten.serviceprovider"
SERVICE_OWNER_SCOPE: Final = "altinn:serviceowner"
SIM_RESOURCE: Final = "urn:altinn:resource:super-simple-service"
SIM_ORG: Final = "991825827"
SIM_EVENTS: Final = 60
CREDENTIALS: Final = ("MASKINPORTEN_CLIENT_ID", "MASKINPORTEN_KID", "CONTRACT_RESOURCE")
NO_CREDENTIALS: Final = "TT02: no credentials: {missing} not set (docs/cli.md: 'The contract suite against TT02')"
NO_DIALOG: Final = (
    "TT02: set CONTRACT_DIALOG_ID (a dialog of your organisation; scope digdir:dialogporten.serviceprovider)"
)
SUBSCRIPTIONS: Final = "/events/api/v1/subscriptions"


@dataclass(frozen=True, slots=True, repr=False)
class Seen(HttpResponse):
    """An answer whose repr shows no body: an assertion's message may show it, and a body may hold a token."""

    def __repr__(self) -> str:
        return f"<HTTP {self.status}, {len(self.body)} bytes>"


class QuietHttp:
    """The app's HTTP client, answering :class:`Seen`."""

    def __init__(self) -> None:
        self._client = HttpClient(pool_size=2)

    def __call__(self, method: str, url: str, *, headers: dict[str, str], body: bytes | None, timeout: float) -> Seen:
        answer = self._client(method, url, headers=headers, body=body, timeout=timeout)
        return Seen(answer.status, answer.headers, answer.body)


def sim_only(reason: str) -> pytest.MarkDecorator:
    """A behaviour that cannot be provoked on TT02 (or only by writing there): skipped there, with ``reason``."""
    return pytest.mark.sim_only(reason=reason)


@dataclass
class Target:
    """Where the contract is checked: the simulator, or TT02. Token providers are cached per scope."""

    name: str
    environment: mp.Environment
    client_id: str
    key: mp.SigningKey
    resource: str
    dialog_id: str | None
    sim: Simulator | None = None
    http: QuietHttp = field(default_factory=QuietHttp, repr=False)
    _clients: dict[str, mp.MaskinportenClient] = field(default_factory=dict)
    _exchanges: dict[str, mp.AltinnExchange] = field(default_factory=dict)

    @property
    def platform(self) -> str:
        return self.environment.platform.rstrip("/")

    @property
    def dialogporten(self) -> str:
        return self.platform + "/dialogporten"

    def maskinporten(self, scope: str = EVENTS_SCOPE) -> mp.MaskinportenClient:
        if scope not in self._clients:
            self._clients[scope] = mp.MaskinportenClient(self.client_id, self.key, scope, self.environment)
        return self._clients[scope]

    def altinn(self, scope: str = EVENTS_SCOPE) -> mp.AltinnExchange:
        if scope not in self._exchanges:
            self._exchanges[scope] = mp.AltinnExchange(self.maskinporten(scope))
        return self._exchanges[scope]

    def mp_token(self, scope: str = EVENTS_SCOPE) -> str:
        return self.maskinporten(scope).token().access_token

    def altinn_token(self, scope: str = EVENTS_SCOPE) -> str:
        return self.altinn(scope).token().access_token

    def get(self, url: str, token: str | None = None, **headers: str) -> HttpResponse:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return self.http("GET", url, headers=sent, body=None, timeout=30)

    def events(self, token: str | None = None, **query: str) -> HttpResponse:
        text = "&".join(f"{k}={quote(v, safe=':')}" for k, v in query.items())
        return self.get(f"{self.platform}{EVENTS_PATH}?{text}", token)

    @cached_property
    def stream(self) -> list[dict[str, Any]]:
        """The first page of up to 1000 of the resource's events (what the events tests reason about)."""
        page = self.events(self.altinn_token(), resource=self.resource, after="0", size="1000")
        assert page.status == 200, page.body[:300]
        events: list[dict[str, Any]] = page.json()
        return events


def _tt02() -> Target:
    env = os.environ
    missing = [name for name in CREDENTIALS if not env.get(name)]
    if not (env.get("MASKINPORTEN_KEY_FILE") or env.get("MASKINPORTEN_KEY")):
        missing.append("MASKINPORTEN_KEY_FILE or MASKINPORTEN_KEY")
    if missing:
        pytest.skip(NO_CREDENTIALS.format(missing=", ".join(missing)))
    key = mp.load_key(
        file=env.get("MASKINPORTEN_KEY_FILE") or None, env_var="MASKINPORTEN_KEY", kid=env["MASKINPORTEN_KID"]
    )
    client_id, resource = env["MASKINPORTEN_CLIENT_ID"], env["CONTRACT_RESOURCE"]
    return Target("tt02", mp.TT02, client_id, key, resource, env.get("CONTRACT_DIALOG_ID") or None)


@pytest.fixture(scope="module")
def tt02_target() -> Target:
    return _tt02()


def _sim_target(sim: Simulator) -> Target:
    """The simulator with what TT02 has by nature: a client, events kept since a minute ago, a dialog of ours."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sim.register(Client("contract-client", "contract-kid", private.public_key(), org_number=SIM_ORG))
    earlier = time.time() - 60
    types = ("dialogporten.dialog.created.v1", "dialogporten.dialog.updated.v1", "dialogporten.dialog.seen.v1")
    for i in range(SIM_EVENTS):
        sim.events.append(sample_event(types[i % 3], resource=SIM_RESOURCE), registered=earlier)
    dialog = sample_dialog()
    sim.dialogporten.put(dialog, org_number=SIM_ORG)
    key = mp.SigningKey(private, "contract-kid")
    return Target("sim", mp.simulated(sim.base_url), "contract-client", key, SIM_RESOURCE, str(dialog["id"]), sim)


@pytest.fixture(params=["sim", "tt02"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "tt02":
        chosen = request.getfixturevalue("tt02_target")
        marker = request.node.get_closest_marker("sim_only")
        if marker is not None:
            pytest.skip(f"simulator only: {marker.kwargs['reason']}")
        yield chosen
        return
    # The real rules and defaults; Altinn's delays (retries, the events API's 30 s hold-back) a hundred times shorter.
    with Simulator(Options(port=0, time_scale=0.01)) as sim:
        yield _sim_target(sim)


def the_sim(target: Target) -> Simulator:
    assert target.sim is not None
    return target.sim


def looks_like_jwt(text: str) -> bool:
    """Three base64url parts whose first is a JSON header (the token itself never reaches an assertion)."""
    try:
        return text.count(".") == 2 and isinstance(jwt.get_unverified_header(text), dict)
    except jwt.InvalidTokenError:
        return False


def problem(response: HttpResponse) -> dict[str, Any]:
    assert (response.header("Content-Type") or "").startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    return body


# --- Maskinporten ----------------------------------------------------------------------------------


def test_maskinporten_answers_a_grant_with_a_bearer_token_for_the_scope(target: Target) -> None:
    """MP-RESPONSE, through the app's own client: access_token, token_type, expires_in, scope."""
    token = target.maskinporten(EVENTS_SCOPE).token()
    now = time.time()
    issued = looks_like_jwt(token.access_token)
    assert issued, "Maskinporten's access_token is not a JWT"
    assert (token.token_type, EVENTS_SCOPE in token.scopes) == ("Bearer", True)
    assert 0 < token.expires_in(now) <= 24 * 3600


def test_maskinporten_refuses_a_grant_used_before(target: Target) -> None:
    """MP-JTI: "A JWT cannot be reused" (MP-012): the same grant a second time is refused as a grant."""
    grant = mp.make_grant(target.key, target.client_id, EVENTS_SCOPE, target.environment.issuer, time.time())
    form = f"grant_type={quote(mp.GRANT_TYPE)}&assertion={grant}".encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    first = target.http("POST", target.environment.token_url, headers=headers, body=form, timeout=30)
    again = target.http("POST", target.environment.token_url, headers=headers, body=form, timeout=30)
    assert first.status == 200
    refusal = again.json() if again.status != 200 else {}  # a 200 body holds a token: never shown
    assert (again.status, refusal.get("error")) == (400, "invalid_grant"), refusal


@sim_only("Maskinporten documents no 429; only a gateway might answer one (FAULT-NOT-NOW)")
def test_a_429_with_retry_after_from_the_token_endpoint_is_not_now_for_the_client(target: Target) -> None:
    the_sim(target).tokens.not_now((429, "7"))
    with pytest.raises(TokenUnavailable) as caught:
        target.maskinporten().token()
    assert (caught.value.status, caught.value.retry_at is not None) == (429, True)
    assert target.maskinporten().token().access_token  # the next request is answered


# --- the Altinn exchange ------------------------------------------------------------------------------


def test_the_exchange_answers_the_altinn_token_as_plain_text_with_the_maskinporten_claims(target: Target) -> None:
    """AUTH-EXCHANGE-200 and -CLAIMS: the raw JWT, text/plain; consumer and scope carried over, org number added."""
    answer = target.get(target.environment.exchange_url, target.mp_token())
    assert answer.status == 200
    assert (answer.header("Content-Type") or "").startswith("text/plain")
    text = answer.body.decode()
    plain = looks_like_jwt(text)
    assert plain, "the exchange's body is not a bare JWT"
    claims = jwt.decode(text, options={"verify_signature": False})
    assert claims["urn:altinn:authenticatemethod"] == "maskinporten"
    assert str(claims["urn:altinn:authlevel"]) == "3"
    consumer = claims["consumer"]
    consumer = json.loads(consumer) if isinstance(consumer, str) else consumer  # a JSON claim, however serialised
    assert consumer["ID"].endswith(":" + claims["urn:altinn:orgNumber"])
    assert EVENTS_SCOPE in claims["scope"].split()
    assert "aud" not in claims
    assert claims["exp"] > time.time()


def test_the_exchange_answers_a_json_string_to_accept_application_json(target: Target) -> None:
    """AUTH-EXCHANGE-200: content negotiation; the app's client strips the quotes either way."""
    answer = target.get(target.environment.exchange_url, target.mp_token(), Accept="application/json")
    assert answer.status == 200
    decoded = json.loads(answer.body)
    quoted = isinstance(decoded, str) and looks_like_jwt(decoded)
    assert quoted, "with Accept: application/json the body is not a JSON string holding the JWT"
    stripped = looks_like_jwt(mp.strip_quotes(answer.body.decode()))
    assert stripped


def test_the_exchange_refuses_a_missing_or_unreadable_token_with_401(target: Target) -> None:
    """AUTH-EXCHANGE-401: every failure is 401 (a transient one too)."""
    assert target.get(target.environment.exchange_url).status == 401
    assert target.get(target.environment.exchange_url, "not-a-jwt").status == 401


def test_the_exchange_answers_an_unknown_provider_with_400(target: Target) -> None:
    """AUTH-EXCHANGE-400: the provider is checked after the token is read."""
    url = target.environment.exchange_url.replace("/maskinporten", "/nosuchprovider")
    answer = target.get(url, target.mp_token())
    assert (answer.status, b"Invalid token provider: nosuchprovider" in answer.body) == (400, True)


def test_the_exchange_adds_no_org_claim_without_altinn_serviceowner(target: Target) -> None:
    """AUTH-EXCHANGE-ORG: the token of a scope without the substring altinn:serviceowner has no org."""
    claims = mp.unverified_claims(target.altinn_token(EVENTS_SCOPE))
    assert "urn:altinn:org" not in claims


@sim_only("needs a client with altinn:serviceowner whose organisation is a service owner")
def test_the_exchange_adds_the_org_claim_when_the_scope_contains_altinn_serviceowner(target: Target) -> None:
    claims = mp.unverified_claims(target.altinn_token(f"{EVENTS_SCOPE} {SERVICE_OWNER_SCOPE}"))
    assert claims["urn:altinn:org"] == "ttd"


# --- the events API -----------------------------------------------------------------------------------


def test_the_events_api_wants_an_altinn_token(target: Target) -> None:
    """EV-AUTH: no token, or a Maskinporten token (not exchanged): 401."""
    assert target.events(resource=target.resource, after="0").status == 401
    assert target.events(target.mp_token(), resource=target.resource, after="0").status == 401


def test_the_events_api_wants_the_events_scope(target: Target) -> None:
    """EV-AUTH: an Altinn token without altinn:events.subscribe: 403."""
    if target.dialog_id is None:
        pytest.skip(NO_DIALOG)  # the only other scope this suite may ask for
    answer = target.events(target.altinn_token(DIALOGPORTEN_SCOPE), resource=target.resource, after="0")
    assert answer.status == 403


def test_a_page_is_cloudevents_json_and_next_points_after_its_last_event_on_the_same_endpoint(target: Target) -> None:
    """EV-MEDIA and EV-NEXT: the client follows ``next`` only on its own scheme, host, port and path."""
    answer = target.events(target.altinn_token(), resource=target.resource, after="0", size="5")
    assert answer.status == 200
    assert (answer.header("Content-Type") or "").startswith("application/cloudevents+json")
    page = answer.json()
    assert isinstance(page, list)
    if not page:
        assert answer.header("next") is None
        pytest.skip(f"{target.name}: {target.resource} has no events to page through")
    link = answer.header("next") or ""
    request = f"{target.platform}{EVENTS_PATH}?resource={target.resource}&after=0&size=5"
    assert same_endpoint(link, request), f"next is {link!r}: the app's client would refuse to follow it"
    query = parse_qsl(urlsplit(link).query)
    assert query[0] == ("after", page[-1]["id"])
    assert dict(query[1:]) == {"resource": target.resource, "size": "5"}


def test_size_below_one_is_fifty_and_above_a_thousand_is_a_thousand(target: Target) -> None:
    """EV-SIZE."""
    token = target.altinn_token()
    default = target.events(token, resource=target.resource, after="0", size="0").json()
    most = target.events(token, resource=target.resource, after="0", size="5000").json()
    assert len(default) == min(50, len(target.stream))
    assert len(most) == min(1000, len(target.stream)) <= 1000


def test_a_resource_that_is_not_an_altinn_resource_urn_and_a_missing_after_are_400(target: Target) -> None:
    """EV-RESOURCE (the controller's own checks, in order) and EV-BINDING (a missing resource)."""
    token = target.altinn_token()
    wrong = problem(target.events(token, resource="super-simple-service", after="0"))
    assert (wrong["status"], wrong["detail"]) == (
        400,
        "The 'resource' parameter must begin with `urn:altinn:resource:`",
    )
    no_after = problem(target.events(token, resource=target.resource))
    assert (no_after["status"], no_after["detail"]) == (400, "The 'after' parameter must be defined.")
    no_resource = problem(target.events(token, after="0"))
    assert (no_resource["status"], list(no_resource["errors"])) == (400, ["resource"])


def test_an_unknown_after_reads_from_the_oldest_event(target: Target) -> None:
    """EV-AFTER: an id the database does not know is sequence number 0."""
    token = target.altinn_token()
    unknown = target.events(token, resource=target.resource, after=str(uuid.uuid4()), size="5").json()
    assert [e["id"] for e in unknown] == [e["id"] for e in target.stream[:5]]


def test_type_is_matched_with_sql_like(target: Target) -> None:
    """EV-FILTERS: ``%`` is a wildcard; a type without one is an exact match."""
    if not target.stream:
        pytest.skip(f"{target.name}: {target.resource} has no events")
    token = target.altinn_token()
    oldest = target.stream[0]
    exact = target.events(token, resource=target.resource, after="0", size="1000", type=oldest["type"]).json()
    assert {e["type"] for e in exact} == {oldest["type"]}
    prefix = oldest["type"].rsplit(".", 2)[0] + ".%"
    like = target.events(token, resource=target.resource, after="0", size="1000", type=prefix).json()
    assert all(e["type"].startswith(prefix[:-1]) for e in like)
    assert exact[0]["id"] == like[0]["id"] == oldest["id"]  # the oldest event matches both


@sim_only("needs an event registered now: publishing to TT02 is a write")
def test_an_event_registered_less_than_30_s_ago_is_held_back(target: Target) -> None:
    """EV-HOLDBACK: 30 s, here times the simulator's time scale (0.01: 0.3 s)."""
    sim = the_sim(target)
    fresh = sample_event("dialogporten.dialog.created.v1", resource=target.resource)
    sim.events.append(fresh)
    token = target.altinn_token()
    now = [e["id"] for e in target.events(token, resource=target.resource, after="0", size="1000").json()]
    assert fresh["id"] not in now
    time.sleep(sim.events.hold_back + 0.05)
    later = target.events(token, resource=target.resource, after="0", size="1000").json()
    assert later[-1]["id"] == fresh["id"]


@sim_only("which events a caller may not see is Altinn's authorisation; TT02 cannot be made to hide some")
def test_invisible_events_are_dropped_after_the_limit_so_a_short_page_comes_mid_stream(target: Target) -> None:
    """EV-LIMIT: ``size`` events are read, then those the caller may not see are dropped."""
    sim = the_sim(target)
    stream = sim.events.all()
    sim.events.invisible_ids = {stream[1]["id"], stream[2]["id"]}
    answer = target.events(target.altinn_token(), resource=target.resource, after="0", size="4")
    assert [e["id"] for e in answer.json()] == [stream[0]["id"], stream[3]["id"]]  # short, and not the end
    assert f"after={stream[3]['id']}&" in (answer.header("next") or "")


@sim_only("which events a caller may not see is Altinn's authorisation; TT02 cannot be made to hide some")
def test_a_run_of_size_invisible_events_is_an_empty_page_without_next_the_limit_of_every_client(
    target: Target,
) -> None:
    """EV-LIMIT (EV-POLL-ALL-UNAUTHORIZED): were ``size`` events in a row invisible, Altinn would answer ``[]``
    and no ``next``, exactly as at the end of the stream: no client can tell the two apart, and ``after`` cannot
    move past them. Only a larger ``size`` reads on. So the simulator's invisible events must never fill a page
    (the e2e and catch-up tests choose them so)."""
    sim = the_sim(target)
    stream = sim.events.all()
    sim.events.invisible_ids = {e["id"] for e in stream[2:7]}  # five in a row
    small = EventsApi(target.platform, target.altinn(), size=5)
    first = small.page(target.resource, "0")
    assert [e["id"] for e in first.events] == [stream[0]["id"], stream[1]["id"]]
    stuck = target.events(target.altinn_token(), resource=target.resource, after=stream[1]["id"], size="5")
    assert (stuck.json(), stuck.header("next")) == ([], None)  # as the end of the stream looks
    larger = EventsApi(target.platform, target.altinn(), size=10).page(target.resource, stream[1]["id"])
    assert [e["id"] for e in larger.events] == [e["id"] for e in stream[7:12]]


@sim_only("a fault mode: a next link to another origin (FAULT-NEXT-BASE)")
def test_the_client_reports_a_next_link_to_another_origin_and_follows_nothing(target: Target) -> None:
    with Trap() as trap:
        the_sim(target).events.next_base = trap.url
        page = EventsApi(target.platform, target.altinn(), size=5).page(target.resource, "0")
        assert (len(page.events), (page.foreign_next or "").startswith(trap.url)) == (5, True)
        assert trap.requests == []


@sim_only("a fault mode: an answer scripted per resource (FAULT-SCRIPT)")
def test_a_scripted_outage_of_the_events_api_reaches_the_client_as_an_error(target: Target) -> None:
    the_sim(target).events.script[target.resource] = [(503, b"Service Unavailable")]
    with pytest.raises(EventsApiError, match="503 Service Unavailable"):
        EventsApi(target.platform, target.altinn()).page(target.resource, "0")


# --- subscriptions ----------------------------------------------------------------------------------------


def test_the_subscription_list_is_the_callers_with_its_count(target: Target) -> None:
    """EV-SUB-LIST: 200 ``{count, subscriptions}``, validated or not; EV-SUB-AUTH: no token, 401."""
    assert target.get(target.platform + SUBSCRIPTIONS).status == 401
    answer = target.get(target.platform + SUBSCRIPTIONS, target.altinn_token())
    assert answer.status == 200
    listing = answer.json()
    assert listing["count"] == len(listing["subscriptions"] or [])
    for subscription in listing["subscriptions"] or []:
        assert {"id", "endPoint", "resourceFilter", "consumer", "createdBy", "validated"} <= set(subscription)
        assert subscription["consumer"] == subscription["createdBy"]


def test_a_subscription_id_that_is_unknown_is_404_and_one_that_is_no_integer_400(target: Target) -> None:
    """EV-SUB-BY-ID (empty body) and EV-SUB-BINDING."""
    token = target.altinn_token()
    unknown = target.get(f"{target.platform}{SUBSCRIPTIONS}/2147483647", token)
    assert (unknown.status, unknown.body) == (404, b"")
    assert target.get(f"{target.platform}{SUBSCRIPTIONS}/abc", token).status == 400


def post_subscription(target: Target, token: str, **fields: Any) -> HttpResponse:
    body = {"endPoint": "https://127.0.0.1:1/api/events", "resourceFilter": target.resource, **fields}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return target.http(
        "POST", target.platform + SUBSCRIPTIONS, headers=headers, body=json.dumps(body).encode(), timeout=30
    )


@sim_only("a POST to TT02 could create a subscription: the suite never writes there")
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"endPoint": "http://example.no/api/events"}, "Missing or invalid endpoint to push events towards"),
        ({"endPoint": "/api/events"}, "Missing or invalid endpoint to push events towards"),
        ({"sourceFilter": "http://example.no"}, "SourceFilter must be an absolute URL with the https scheme."),
        ({"resourceFilter": "super-simple-service"}, "Resource filter must be a valid urn"),
        ({"resourceFilter": "urn:altinn:resource:Super-Simple"}, "Resource filter must be a valid urn"),
        ({"resourceFilter": None}, "Resource filter is required."),
        ({"sourceFilter": "https://example.no"}, "Source filter is not supported for subscriptions on this resource."),
        (
            {"alternativeSubjectFilter": "/org/1"},
            "AlternativeSubject filter is not supported for subscriptions on this resource.",
        ),
        ({"includeSubunits": True}, "IncludeSubunits requires a subject filter."),
    ],
)
def test_a_subscription_that_breaks_a_rule_is_400_with_the_message_as_a_json_string(
    target: Target, fields: dict[str, Any], message: str
) -> None:
    """EV-SUB-ENDPOINT, -SOURCEFILTER, -URN, -GENERIC, in the controller's order; EV-SUB-ERRBODY."""
    answer = post_subscription(target, target.altinn_token(f"{EVENTS_SCOPE} {SERVICE_OWNER_SCOPE}"), **fields)
    assert (answer.status, answer.json()) == (400, message)
    assert (answer.header("Content-Type") or "").startswith("application/json")


@sim_only("a POST to TT02 could create a subscription: the suite never writes there")
def test_without_the_events_scope_a_subscription_is_403_after_the_endpoint_check(target: Target) -> None:
    """EV-SUB-SCOPE: empty body; the endpoint's 400 comes first."""
    token = target.altinn_token(SERVICE_OWNER_SCOPE)
    assert (post_subscription(target, token).status, post_subscription(target, token).body) == (403, b"")
    assert post_subscription(target, token, endPoint="http://example.no").status == 400


@sim_only("a POST to TT02 could create a subscription: the suite never writes there")
def test_without_subject_filter_the_policy_decides_there_is_no_400(target: Target) -> None:
    """EV-SUB-PDP: no party in the request; the simulator's stand-in policy refuses a non-owner: 403."""
    answer = post_subscription(target, target.altinn_token(EVENTS_SCOPE))
    assert (answer.status, answer.json()) == (
        403,
        f"Not authorized to create a subscription for resource {target.resource}.",
    )
    own = post_subscription(
        target, target.altinn_token(EVENTS_SCOPE), subjectFilter=f"urn:altinn:organization:identifier-no:{SIM_ORG}"
    )
    assert (own.status, own.json()["consumer"]) == (201, f"/organisation/{SIM_ORG}")


@sim_only("a POST to TT02 could create a subscription: the suite never writes there")
def test_a_subscription_is_201_unvalidated_with_a_singular_location_and_an_identical_one_is_the_same(
    target: Target,
) -> None:
    """EV-SUB-201, -STORED, -IDENTITY, -IDEMPOTENT (the ping again); EV-SUB-BY-ID for another creator."""
    sim = the_sim(target)
    owner = target.altinn_token(f"{EVENTS_SCOPE} {SERVICE_OWNER_SCOPE}")
    created = post_subscription(target, owner)
    body = created.json()
    assert (created.status, created.header("Location")) == (201, f"/events/api/v1/subscription/{body['id']}")
    assert (body["validated"], body["consumer"], body["createdBy"]) == (False, "/org/ttd", "/org/ttd")
    assert "subjectFilter" not in body  # null fields are left out
    again = post_subscription(target, owner)
    assert (again.status, again.json()["id"]) == (201, body["id"])
    assert wait_for_pings(sim, body["id"], 2) == 2  # one ping per POST
    other = target.altinn_token(EVENTS_SCOPE)  # /organisation/…, not /org/ttd
    refused = target.get(f"{target.platform}{SUBSCRIPTIONS}/{body['id']}", other)
    assert (refused.status, refused.body) == (403, b"")


def wait_for_pings(sim: Simulator, subscription_id: int, count: int) -> int:
    def first_attempts() -> int:
        return sum(
            a.subscription_id == subscription_id
            and a.event_type == "platform.events.validatesubscription"
            and a.attempt == 1
            for a in sim.delivery.attempts
        )

    deadline = time.monotonic() + 10
    while first_attempts() < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return first_attempts()


# --- Dialogporten's service-owner GET ------------------------------------------------------------------------


def dialog_url(target: Target, dialog_id: str) -> str:
    return f"{target.dialogporten}/api/v1/serviceowner/dialogs/{dialog_id}"


def test_a_dialog_of_ours_is_200_with_its_revision_as_an_unquoted_etag(target: Target) -> None:
    """DP-SO-OK and DP-SO-ETAG; the app's client types it."""
    if target.dialog_id is None:
        pytest.skip(NO_DIALOG)
    answer = target.get(dialog_url(target, target.dialog_id), target.mp_token(DIALOGPORTEN_SCOPE))
    assert answer.status == 200, answer.body[:300]
    body = answer.json()
    assert (answer.header("ETag"), body["id"]) == (body["revision"], target.dialog_id)
    assert not any(value is None for value in body.values())  # null fields are left out
    dialog = DialogportenClient(target.dialogporten, target.maskinporten(DIALOGPORTEN_SCOPE)).get_dialog(
        target.dialog_id
    )
    assert str(dialog.id) == target.dialog_id


def test_an_unknown_dialog_is_404_problem_json_naming_the_id(target: Target) -> None:
    """DP-SO-404 (another organisation's dialog answers the same); DP-SO-BADID for an id that is no GUID."""
    if target.dialog_id is None:
        pytest.skip(NO_DIALOG)
    token = target.mp_token(DIALOGPORTEN_SCOPE)
    unknown = str(uuid.uuid4())
    body = problem(target.get(dialog_url(target, unknown), token))
    assert (body["status"], body["title"]) == (404, "Resource not found.")
    assert unknown in body["errors"]["DialogEntity"][0]
    assert problem(target.get(dialog_url(target, "not-a-guid"), token))["status"] == 400


def test_dialogporten_wants_a_token_with_its_scope(target: Target) -> None:
    """DP-AUTH-401 (a Bearer challenge) and DP-AUTH-403 (a token without the scope), empty bodies."""
    url = dialog_url(target, str(uuid.uuid4()))
    missing = target.get(url)
    assert (missing.status, (missing.header("WWW-Authenticate") or "").startswith("Bearer")) == (401, True)
    assert target.get(url, "not-a-jwt").status == 401
    without = target.get(url, target.mp_token(EVENTS_SCOPE))
    assert (without.status, without.body) == (403, b"")


@sim_only("needs a dialog of another organisation, a deleted one and one not visible yet: making them is a write")
def test_deleted_and_not_yet_visible_dialogs_are_200_and_another_organisations_404(target: Target) -> None:
    """DP-SO-OK (the service-owner API has no 410, no 404 with Expires) and DP-SO-404."""
    sim = the_sim(target)
    now = datetime.now(UTC)
    deleted = sample_dialog(deleted_at=now - timedelta(minutes=1))
    hidden = sample_dialog(visible_from=now + timedelta(days=1))
    theirs = sample_dialog()
    for dialog, org in ((deleted, SIM_ORG), (hidden, SIM_ORG), (theirs, "310778737")):
        sim.dialogporten.put(dialog, org_number=org)
    token = target.mp_token(DIALOGPORTEN_SCOPE)
    got = target.get(dialog_url(target, deleted["id"]), token)
    assert (got.status, "deletedAt" in got.json()) == (200, True)
    got = target.get(dialog_url(target, hidden["id"]), token)
    assert (got.status, got.header("Expires")) == (200, None)
    assert target.get(dialog_url(target, theirs["id"]), token).status == 404


@sim_only("maintenance mode is Dialogporten's configuration: it cannot be switched on from here")
def test_in_maintenance_every_request_is_503_text_with_retry_after_as_an_rfc_1123_date(target: Target) -> None:
    """DP-MAINT: before authentication; ``Retry-After`` only when a RetryAt is configured."""
    sim = the_sim(target)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    sim.dialogporten.maintenance(until)
    answer = target.get(dialog_url(target, str(uuid.uuid4())))  # no token at all
    assert (answer.status, answer.header("Content-Type"), answer.body) == (503, "text/plain", b"Service Unavailable")
    assert answer.header("Retry-After") == format_datetime(until, usegmt=True)
    assert parse_http_time(answer.header("Retry-After"), time.time()) == until
    sim.dialogporten.maintenance(until, announce=False)
    assert target.get(dialog_url(target, str(uuid.uuid4()))).header("Retry-After") is None


# --- fault modes: the clients' refusals ----------------------------------------------------------------------


@sim_only("a fault mode: a redirect (FAULT-REDIRECT)")
@pytest.mark.parametrize("path", ["/maskinporten/token", "/authentication/api/v1/exchange", EVENTS_PATH])
def test_a_redirect_is_never_followed_with_a_token(target: Target, path: str) -> None:
    """The clients' refusal, shown against the simulator (every client: tests/integration/altinn/test_http.py)."""
    with Trap() as trap:
        the_sim(target).redirects[path] = (307, trap.url + path)
        with pytest.raises(EventsApiError, match=r"307 redirect to .* not followed"):
            EventsApi(target.platform, target.altinn()).page(target.resource, "0")
        assert trap.requests == []
