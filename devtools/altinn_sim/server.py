"""The simulator's HTTP server: fake Maskinporten, fake Altinn exchange, fake Altinn Events, fake Dialogporten.

Routes (the rules are in the module that enforces each: ``tokens.py``, ``subscriptions.py``, ``events.py``,
``delivery.py``, ``dialogporten.py``; ``devtools/checks/sim_rules.py`` holds every rule to its citation):

    POST   /maskinporten/token                              Maskinporten token endpoint (JWT grant)
    GET    /authentication/api/v1/exchange/{provider}       the Altinn exchange (maskinporten)
    POST   /events/api/v1/subscriptions                     create (201)
    GET    /events/api/v1/subscriptions                     {count, subscriptions}
    GET    /events/api/v1/subscriptions/{id}                200 / 403 / 404
    DELETE /events/api/v1/subscriptions/{id}                200 / 403 / 404
    GET    /events/api/v1/events?resource=&after=&size=     polling, ``next`` header
    GET    /dialogporten/api/v1/serviceowner/dialogs/{id}   Dialogporten's service-owner GET
    POST   /sim/publish                                     simulator only: publish one event (or an array)
    GET    /sim/state                                       simulator only: deliveries, dead letters, skipped

Rules of the server itself:

- SIM-ROUTES: simulator only: ``/sim/publish`` registers events as Altinn's own ``POST /events/api/v1/events``
  would (it refuses what lacks ``id``, ``specversion``, ``type``, ``source`` or ``resource``) and queues them
  for delivery; ``/sim/state`` shows deliveries; any other route is 404 (405 for another method).
- FAULT-REDIRECT: fault mode, not a behaviour of the services: :attr:`Simulator.redirects` answers a path
  prefix with a 3xx to another place, so that the clients' refusal to follow one can be shown.

Events are kept for the simulator's lifetime (Altinn keeps them 90 days).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from devtools.altinn_sim import dialogporten, events, subscriptions
from devtools.altinn_sim.delivery import DELIVERY_TIMEOUT, Deliverer
from devtools.altinn_sim.tokens import Client, TokenRefused, TokenService

SUBSCRIPTIONS: Final = "/events/api/v1/subscriptions"
EXCHANGE: Final = "/authentication/api/v1/exchange/"
REQUIRED_EVENT_FIELDS: Final = ("id", "specversion", "type", "source", "resource")
PROBLEM: Final = "application/problem+json; charset=utf-8"


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 7072
    #: Multiplies every delay of Altinn's: delivery retries, validation retries, the events API's hold-back.
    time_scale: float = 1.0
    delivery_timeout: float = DELIVERY_TIMEOUT
    allow_http_loopback: bool = False
    #: The platform host Altinn puts in the validation ping's ``source`` (prod: platform.altinn.no).
    ping_source_base: str = "https://platform.tt02.altinn.no"
    token_lifetime: int = 120
    #: EV-HOLDBACK: seconds a new event stays out of the events API, before the time scale (Altinn: 30).
    #: A test that reads what it just registered says so with 0.
    events_hold_back: float = events.HOLD_BACK


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections under a concurrent `dpctl send` (a 1 s SYN retry).
    request_queue_size = 128
    daemon_threads = True


class Simulator:
    """The whole fake Altinn side, in one object; ``start()`` serves it on a thread."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.server = _Server((self.options.host, self.options.port), _Handler)
        self.server.simulator = self  # type: ignore[attr-defined]
        self.port = int(self.server.server_address[1])
        self.base_url = f"http://{self.options.host}:{self.port}"
        self.tokens = TokenService(
            f"{self.base_url}/maskinporten/", self.base_url, token_lifetime=self.options.token_lifetime
        )
        self.subscriptions = subscriptions.SubscriptionStore()
        self.events = events.EventsApi(self.base_url, hold_back=self.options.events_hold_back * self.options.time_scale)
        #: FAULT-REDIRECT: a path prefix answered with (status, Location) instead of its route.
        self.redirects: dict[str, tuple[int, str]] = {}
        self.dialogporten = dialogporten.DialogStore(self.tokens.dialogporten_claims, self.events.clock)
        self.delivery = Deliverer(
            self.subscriptions,
            time_scale=self.options.time_scale,
            timeout=self.options.delivery_timeout,
            ping_source_base=self.options.ping_source_base,
            permitted=self.events.visible,
        )
        self._thread: threading.Thread | None = None

    def register(self, client: Client) -> None:
        self.tokens.register(client)

    def publish(self, event: dict[str, Any]) -> int:
        self.events.append(event)
        return self.delivery.publish(event)

    def state(self) -> dict[str, Any]:
        return {
            "subscriptions": [s.to_json() for s in self.subscriptions.all()],
            "delivered": list(self.delivery.delivered),
            "deadLetters": list(self.delivery.dead_letters),
            "skipped": list(self.delivery.skipped),
            "attempts": [a.to_json() for a in self.delivery.attempts],
            "pending": self.delivery.pending(),
        }

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), name="altinn-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.delivery.stop()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _validation_problem(errors: dict[str, list[str]]) -> dict[str, Any]:
    """``[ApiController]``'s automatic 400 for a request that does not bind."""
    return {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": errors,
        "traceId": dialogporten.trace_id(),
    }


def _problem(status: int, title: str, detail: str | None = None) -> dict[str, Any]:
    """ASP.NET Core's ``ProblemDetails`` (``Problem(...)`` and the ``[ApiController]`` client errors)."""
    body: dict[str, Any] = {
        "type": f"https://tools.ietf.org/html/rfc9110#section-15.5.{status - 399}",
        "title": title,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    body["traceId"] = dialogporten.trace_id()
    return body


class _Handler(BaseHTTPRequestHandler):
    server_version = "altinn-sim"

    @property
    def sim(self) -> Simulator:
        sim: Simulator = self.server.simulator  # type: ignore[attr-defined]
        return sim

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests and `make run` read their own logs

    def _send(
        self,
        status: int,
        payload: Any = None,
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        body = b"" if payload is None else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _caller(self) -> tuple[str, frozenset[str]]:
        """The Altinn token's consumer and scopes (raises the 401 of EV-AUTH / EV-SUB-AUTH)."""
        claims = self.sim.tokens.altinn_claims(self.headers.get("Authorization"))
        return subscriptions.consumer_of(claims), frozenset(str(claims.get("scope", "")).split())

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if self._redirected(path):
            return
        try:
            if path == "/maskinporten/token" and method == "POST":
                self._token()
            elif path.startswith(EXCHANGE) and method == "GET":
                self._exchange(path[len(EXCHANGE) :])
            elif path == SUBSCRIPTIONS or path.startswith(SUBSCRIPTIONS + "/"):
                self._subscriptions(method, path)
            elif path == events.PATH and method == "GET":
                self._events()
            elif path.startswith(dialogporten.PREFIX) and method == "GET":
                answer = self.sim.dialogporten.get(path[len(dialogporten.PREFIX) :], self.headers.get("Authorization"))
                self._send(answer.status, answer.body or None, answer.content_type or "", answer.headers)
            elif path == "/sim/publish" and method == "POST":
                self._publish()
            elif path == "/sim/state" and method == "GET":
                self._send(200, self.sim.state())
            else:
                known = path in ("/maskinporten/token", events.PATH, "/sim/publish", "/sim/state")
                status = 405 if known else 404  # SIM-ROUTES
                self._send(status, _problem(status, "Not Found" if status == 404 else "Method Not Allowed"))
        except TokenRefused as refused:  # a token the API does not take: 401, empty body (JwtCookie's challenge)
            self._send(refused.status)

    def _redirected(self, path: str) -> bool:
        for prefix, (status, location) in list(self.sim.redirects.items()):
            if path.startswith(prefix):  # FAULT-REDIRECT
                self._body()
                self._send(status, headers={"Location": location})
                return True
        return False

    # --- Maskinporten and the exchange ------------------------------------------------------------

    def _token(self) -> None:
        form = parse_qs(self._body().decode("utf-8", "replace"))
        not_now = self.sim.tokens.next_not_now()
        if not_now is not None:  # FAULT-NOT-NOW: a gateway's "not now"
            status, retry_after = not_now
            headers = {"Retry-After": retry_after} if retry_after else {}
            self._send(status, {"error": "temporarily_unavailable"}, headers=headers)
            return
        try:
            self._send(200, self.sim.tokens.token(form))
        except TokenRefused as refused:
            self._send(refused.status, refused.body())

    def _exchange(self, provider: str) -> None:
        if provider.lower() != "maskinporten":  # AUTH-EXCHANGE-400 (id-porten and altinnstudio not simulated)
            message = (
                f"Invalid token provider: {provider}. "
                "Trusted token providers are 'Maskinporten', 'Id-porten' and 'AltinnStudio'."
            )
            self._send(400, message.encode(), "text/plain; charset=utf-8")
            return
        try:
            token = self.sim.tokens.exchange(self.headers.get("Authorization"))
        except TokenRefused:  # AUTH-EXCHANGE-401: every failure, with the [ApiController] problem body
            self._send(401, _problem(401, "Unauthorized"), PROBLEM)
            return
        accept = [part.split(";")[0].strip().lower() for part in self.headers.get("Accept", "").split(",")]
        if "application/json" in accept and not {"*/*", "text/plain", "text/*"} & set(accept):  # AUTH-EXCHANGE-200
            self._send(200, json.dumps(token).encode())
        else:
            self._send(200, token.encode(), "text/plain; charset=utf-8")

    # --- Events ----------------------------------------------------------------------------------

    def _events(self) -> None:
        try:
            page = self.sim.events.get(self.path, self._caller)
        except events.Refused as refused:
            if refused.errors is not None:
                self._send(refused.status, _validation_problem(refused.errors), PROBLEM)
            elif refused.detail is not None:
                body = _problem(refused.status, "Bad Request", refused.detail)
                self._send(refused.status, body, PROBLEM)
            else:
                self._send(refused.status)
            return
        if page.scripted is not None:
            self._send(page.scripted[0], page.scripted[1], "application/json")
            return
        raw = ("[" + ", ".join(json.dumps(e) for e in page.events) + "]").encode("utf-8")  # EV-MEDIA
        self._send(200, raw, page.headers.pop("Content-Type") + "; charset=utf-8", page.headers)

    def _subscriptions(self, method: str, path: str) -> None:
        try:
            self._subscription_route(method, path)
        except subscriptions.Refused as refused:
            if refused.errors is not None:
                self._send(refused.status, _validation_problem(refused.errors), PROBLEM)
            elif refused.message is not None:  # EV-SUB-ERRBODY: a JSON string literal
                self._send(refused.status, json.dumps(refused.message).encode())
            else:
                self._send(refused.status)

    def _subscription_route(self, method: str, path: str) -> None:
        consumer, scopes = self._caller()
        store = self.sim.subscriptions
        if path == SUBSCRIPTIONS and method == "POST":
            self._create(consumer, scopes)
        elif path == SUBSCRIPTIONS and method == "GET":  # EV-SUB-LIST
            found = [s.to_json() for s in store.of(consumer)]
            self._send(200, {"count": len(found), "subscriptions": found})
        elif method in ("GET", "DELETE") and path.count("/") == SUBSCRIPTIONS.count("/") + 1:
            raw = path.rsplit("/", 1)[1]
            if not raw.lstrip("-").isdigit():  # EV-SUB-BINDING
                raise subscriptions.Refused(400, None, {"id": [f"The value '{raw}' is not valid."]})
            if method == "GET":
                self._send(200, store.owned(int(raw), consumer).to_json())
            else:
                store.delete(int(raw), consumer)
                self._send(200)  # EV-SUB-BY-ID: 200, empty body
        else:
            self._send(405 if path == SUBSCRIPTIONS else 404)  # SIM-ROUTES

    def _create(self, consumer: str, scopes: frozenset[str]) -> None:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        raw = self._body()
        if content_type != "application/json":  # EV-SUB-BINDING: [Consumes("application/json")]
            self._send(415, _problem(415, "Unsupported Media Type"), PROBLEM)
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:  # EV-SUB-BINDING
            raise subscriptions.Refused(400, None, {"$": [f"The body is not JSON: {exc}"]}) from exc
        fields = subscriptions.check_request(
            body,
            scopes,
            consumer,
            self.sim.subscriptions.permit,
            allow_http_loopback=self.sim.options.allow_http_loopback,
        )
        subscription = self.sim.subscriptions.create(fields, consumer)
        self.sim.delivery.validate(subscription)  # EV-SUB-IDEMPOTENT: the ping, again for an identical POST
        location = {"Location": f"/events/api/v1/subscription/{subscription.id}"}  # EV-SUB-201: singular
        self._send(201, subscription.to_json(), headers=location)

    # --- the simulator's own -----------------------------------------------------------------------

    def _publish(self) -> None:
        try:
            body = json.loads(self._body() or b"null")
        except ValueError as exc:  # SIM-ROUTES
            self._send(400, _problem(400, "Bad Request", f"The body is not JSON: {exc}"))
            return
        batch = body if isinstance(body, list) else [body]
        for event in batch:
            if not isinstance(event, dict):  # SIM-ROUTES
                self._send(400, _problem(400, "Bad Request", "Publish a CloudEvent object or an array of them"))
                return
            missing = [f for f in REQUIRED_EVENT_FIELDS if not event.get(f)]
            if missing:  # SIM-ROUTES
                self._send(400, _problem(400, "Bad Request", f"The event lacks {', '.join(missing)}"))
                return
        queued = sum(self.sim.publish(event) for event in batch)
        self._send(200, {"published": len(batch), "deliveries": queued})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")
