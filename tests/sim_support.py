"""The Altinn simulator for tests: one per test, in-process on a free port, with one registered client; and a
recording receiver. Modules that use the fixtures import them (``from tests.sim_support import sim``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from shared.altinn import maskinporten as mp

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLIENT_ID = "test-client"
KID = "test-kid"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(Options(port=0, time_scale=0.0001, delivery_timeout=5, allow_http_loopback=True)) as simulator:
        simulator.register(Client(CLIENT_ID, KID, KEY.public_key()))
        yield simulator


def altinn_token(sim: Simulator, scope: str = "altinn:events.subscribe altinn:serviceowner") -> str:
    client = mp.MaskinportenClient(CLIENT_ID, mp.SigningKey(KEY, KID), scope, mp.simulated(sim.base_url))
    return mp.AltinnExchange(client).token().access_token


@dataclass
class Receiver:
    """A webhook endpoint that records every request and answers with the next status of a script."""

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    """Seconds each answer takes (a slow app)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        time.sleep(self.delay)
        with self.lock:
            self.requests.append({"path": path, "headers": headers, "body": json.loads(body)})
            return self.statuses.pop(0) if self.statuses else self.default

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["body"].get("type") == event_type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recorder = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = recorder.answer(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/api/events"
    yield recorder
    server.shutdown()
    server.server_close()
