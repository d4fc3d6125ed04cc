"""The simulator's HTTP server: fake Maskinporten, fake Altinn exchange, fake Altinn Events.

Routes (each rule is cited where it is enforced: ``tokens.py``, ``subscriptions.py``, ``delivery.py``):

    POST   /maskinporten/token                              Maskinporten token endpoint (JWT grant)
    GET    /authentication/api/v1/exchange/maskinporten     the Altinn exchange
    POST   /events/api/v1/subscriptions                     create (201)
    GET    /events/api/v1/subscriptions                     {count, subscriptions}
    GET    /events/api/v1/subscriptions/{id}                200 / 403 / 404
    DELETE /events/api/v1/subscriptions/{id}                200 / 403 / 404
    GET    /events/api/v1/events?resource=&after=&size=     polling, ``next`` header
    GET    /dialogporten/api/v1/serviceowner/dialogs/{id}    Dialogporten's service-owner GET (``dialogporten.py``)
    POST   /sim/publish                                     simulator only: publish one event (or an array)
    GET    /sim/state                                       simulator only: deliveries, dead letters, skipped

Polling rules: ``events.py``, each citing the altinn-events file it imitates. Events are kept 90 days
(docs.altinn.studio "Publish events"): the simulator keeps them in memory for its lifetime.

Fault modes (not Altinn's behaviour; they show the clients' refusals against the simulator):
``redirects`` answers a path prefix with a 3xx to another place, and ``EventsApi.next_base`` makes the
events API's ``next`` link point at another origin.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from devtools.altinn_sim import dialogporten, events
from devtools.altinn_sim.delivery import DELIVERY_TIMEOUT, Deliverer
from devtools.altinn_sim.subscriptions import Refused, SubscriptionStore, check_request, consumer_of
from devtools.altinn_sim.tokens import Client, TokenRefused, TokenService

SUBSCRIPTIONS: Final = "/events/api/v1/subscriptions"
EXCHANGE: Final = "/authentication/api/v1/exchange/maskinporten"
REQUIRED_EVENT_FIELDS: Final = ("id", "specversion", "type", "source", "resource")


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 7072
    time_scale: float = 1.0
    delivery_timeout: float = DELIVERY_TIMEOUT
    allow_http_loopback: bool = False
    #: The platform host Altinn puts in the validation ping's ``source`` (prod: platform.altinn.no).
    ping_source_base: str = "https://platform.tt02.altinn.no"
    token_lifetime: int = 120


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
        self.subscriptions = SubscriptionStore()
        self.events = events.EventsApi(self.base_url)
        #: Fault mode: a path prefix answered with (status, Location) instead of its route.
        self.redirects: dict[str, tuple[int, str]] = {}
        self.dialogporten = dialogporten.DialogStore(self.tokens.maskinporten_claims, time.time)
        self.delivery = Deliverer(
            self.subscriptions,
            time_scale=self.options.time_scale,
            timeout=self.options.delivery_timeout,
            ping_source_base=self.options.ping_source_base,
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
        content_type: str = "application/json",
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

    def _problem(self, status: int, detail: str) -> None:
        titles = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
        }
        self._send(
            status,
            {
                "type": f"https://tools.ietf.org/html/rfc9110#section-15.5.{status - 399}",
                "title": titles.get(status, "Error"),
                "status": status,
                "detail": detail,
            },
            "application/problem+json",
        )

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> Any:
        try:
            return json.loads(self._body() or b"null")
        except ValueError as exc:
            raise Refused(400, f"The body is not JSON: {exc}") from exc

    def _caller(self) -> tuple[str, frozenset[str]]:
        claims = self.sim.tokens.altinn_claims(self.headers.get("Authorization"))
        return consumer_of(claims), frozenset(str(claims.get("scope", "")).split())

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if self._redirected(path):
            return
        try:
            if path == "/maskinporten/token" and method == "POST":
                self._token()
            elif path == EXCHANGE and method == "GET":
                self._exchange()
            elif path == SUBSCRIPTIONS and method == "POST":
                self._create()
            elif path == SUBSCRIPTIONS and method == "GET":
                consumer, _ = self._caller()
                found = [s.to_json() for s in self.sim.subscriptions.of(consumer)]
                self._send(200, {"count": len(found), "subscriptions": found})
            elif path.startswith(SUBSCRIPTIONS + "/") and method in ("GET", "DELETE"):
                consumer, _ = self._caller()
                raw = path.rsplit("/", 1)[1]
                if not raw.isdigit():
                    raise Refused(400, f"The subscription id must be an integer, got {raw!r}")
                if method == "GET":
                    self._send(200, self.sim.subscriptions.owned(int(raw), consumer).to_json())
                else:
                    self.sim.subscriptions.delete(int(raw), consumer)
                    self._send(200)
            elif path == events.PATH and method == "GET":
                page = self.sim.events.get(self.path, self._caller)
                if page.scripted is not None:
                    self._send(page.scripted[0], page.scripted[1], "application/json")
                else:
                    self._send(200, page.events, page.headers.pop("Content-Type"), page.headers)
            elif path.startswith(dialogporten.PREFIX) and method == "GET":
                answer = self.sim.dialogporten.get(path[len(dialogporten.PREFIX) :], self.headers.get("Authorization"))
                self._send(answer.status, answer.body or None, answer.content_type or "", answer.headers)
            elif path == "/sim/publish" and method == "POST":
                self._publish()
            elif path == "/sim/state" and method == "GET":
                self._send(200, self.sim.state())
            else:
                self._problem(404 if method in ("GET", "POST", "DELETE") else 405, f"No route {method} {path}")
        except TokenRefused as refused:
            if path == "/maskinporten/token":
                self._send(refused.status, refused.body())
            else:
                self._problem(refused.status, refused.description)
        except (Refused, events.Refused) as refused:
            self._problem(refused.status, refused.detail)

    def _redirected(self, path: str) -> bool:
        """Fault mode: a 3xx instead of the route (``Simulator.redirects``)."""
        for prefix, (status, location) in list(self.sim.redirects.items()):
            if path.startswith(prefix):
                self._body()
                self._send(status, headers={"Location": location})
                return True
        return False

    def _token(self) -> None:
        form = parse_qs(self._body().decode("utf-8", "replace"))
        not_now = self.sim.tokens.next_not_now()
        if not_now is None:
            self._send(200, self.sim.tokens.token(form))
            return
        status, retry_after = not_now  # fault mode (tokens.py): a gateway's "not now"
        self._send(
            status, {"error": "temporarily_unavailable"}, headers={"Retry-After": retry_after} if retry_after else {}
        )

    def _exchange(self) -> None:
        token = self.sim.tokens.exchange(self.headers.get("Authorization"))
        # The inference in the notes: with a JSON Accept the string comes back JSON-quoted.
        if "json" in self.headers.get("Accept", ""):
            self._send(200, json.dumps(token).encode(), "application/json")
        else:
            self._send(200, token.encode(), "text/plain")

    def _create(self) -> None:
        consumer, scopes = self._caller()
        fields = check_request(self._json_body(), scopes, allow_http_loopback=self.sim.options.allow_http_loopback)
        subscription, new = self.sim.subscriptions.create(fields, consumer)
        if new:
            self.sim.delivery.validate(subscription)
        # SUB-LOCATION: singular, as Altinn sends it.
        self._send(201, subscription.to_json(), headers={"Location": f"/events/api/v1/subscription/{subscription.id}"})

    def _publish(self) -> None:
        body = self._json_body()
        events = body if isinstance(body, list) else [body]
        for event in events:
            if not isinstance(event, dict):
                raise Refused(400, "Publish a CloudEvent object or an array of them")
            missing = [f for f in REQUIRED_EVENT_FIELDS if not event.get(f)]
            if missing:
                raise Refused(400, f"The event lacks {', '.join(missing)}")
        queued = sum(self.sim.publish(event) for event in events)
        self._send(200, {"published": len(events), "deliveries": queued})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")
