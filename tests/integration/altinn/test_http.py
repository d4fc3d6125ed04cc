"""The one outbound HTTP client, over real HTTP: no redirect followed, no token off its host, bounded reads.

Every API client of the app and of ``dpctl`` is pointed at the Altinn simulator (whose rules follow the
real services' code), with its fault modes sending a 302 or 307 to a *trap* on another port, or a ``next``
link there. The trap records every request it gets and answers with something that must never be used.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim import Client, Options, Simulator
from shared.altinn import maskinporten as mp
from shared.altinn.dialogporten import DialogportenClient, DialogportenUnavailable
from shared.altinn.events_api import EventsApi, EventsApiError
from shared.altinn.http import HttpClient, same_endpoint
from shared.errors import DeadlineExceeded, InsecureUrl, RedirectRefused, ResponseTooLarge, Unreachable
from tests.cli_support import dpctl
from tests.http_support import Trap

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RESOURCE = "urn:altinn:resource:super-simple-service"


@pytest.fixture
def trap() -> Iterator[Trap]:
    with Trap() as server:
        yield server


@pytest.fixture
def sim() -> Iterator[Simulator]:
    # events_hold_back=0: the events registered here are read at once (Altinn holds them back 30 s).
    with Simulator(Options(port=0, allow_http_loopback=True, events_hold_back=0)) as simulator:
        simulator.register(Client("http-client", "http-kid", KEY.public_key()))
        yield simulator


def maskinporten(sim: Simulator, scope: str = "altinn:events.subscribe altinn:serviceowner") -> mp.MaskinportenClient:
    return mp.MaskinportenClient("http-client", mp.SigningKey(KEY, "http-kid"), scope, mp.simulated(sim.base_url))


# --- redirects ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_no_redirect_is_followed_and_the_refusal_names_where_it_pointed(
    status: int, sim: Simulator, trap: Trap
) -> None:
    sim.redirects["/events/api/v1/events"] = (status, f"{trap.url}/events/api/v1/events?after=0")
    with pytest.raises(RedirectRefused) as caught:
        HttpClient()("GET", f"{sim.base_url}/events/api/v1/events", headers={"Authorization": "Bearer t"}, timeout=5)
    assert caught.value.location == f"{trap.url}/events/api/v1/events?after=0"
    assert str(status) in str(caught.value)
    assert trap.requests == []


@pytest.mark.parametrize("status", [302, 307])
def test_the_maskinporten_grant_and_the_exchange_token_never_follow_a_redirect(
    status: int, sim: Simulator, trap: Trap
) -> None:
    sim.redirects["/maskinporten/token"] = (status, f"{trap.url}/token")
    with pytest.raises(mp.AuthError, match=f"{status} redirect to '{trap.url}/token' not followed"):
        maskinporten(sim).token()
    sim.redirects.clear()

    sim.redirects["/authentication/api/v1/exchange"] = (status, f"{trap.url}/exchange")
    with pytest.raises(mp.AuthError, match="not followed"):
        mp.AltinnExchange(maskinporten(sim)).token()
    assert trap.requests == []  # neither the grant nor the Maskinporten token reached the other port


@pytest.mark.parametrize("status", [302, 307])
def test_the_events_api_never_follows_a_redirect(status: int, sim: Simulator, trap: Trap) -> None:
    sim.redirects["/events/api/v1/events"] = (status, f"{trap.url}/events/api/v1/events?resource={RESOURCE}&after=0")
    api = EventsApi(sim.base_url, mp.AltinnExchange(maskinporten(sim)))
    with pytest.raises(EventsApiError, match="not followed"):
        api.page(RESOURCE, "0")
    assert trap.requests == []


@pytest.mark.parametrize("status", [302, 307])
def test_dialogporten_never_follows_a_redirect(status: int, sim: Simulator, trap: Trap) -> None:
    dialog = "0194cbe2-6c4b-7a44-94a4-c3c8f26a2f1e"
    sim.redirects["/dialogporten/"] = (status, f"{trap.url}/dialogporten/api/v1/serviceowner/dialogs/{dialog}")
    client = DialogportenClient(
        f"{sim.base_url}/dialogporten", maskinporten(sim, "digdir:dialogporten.serviceprovider")
    )
    with pytest.raises(DialogportenUnavailable, match="RedirectRefused"):
        client.get_dialog(dialog)
    assert trap.requests == []


@pytest.mark.parametrize("status", [302, 307])
def test_dpctl_subscriptions_never_follows_a_redirect(status: int, sim: Simulator, trap: Trap, tmp_path: Any) -> None:
    key_file = tmp_path / "key.pem"
    from cryptography.hazmat.primitives import serialization

    key_file.write_bytes(
        KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    sim.redirects["/events/api/v1/subscriptions"] = (status, f"{trap.url}/events/api/v1/subscriptions")
    ran = dpctl(
        "--sim-url", sim.base_url, "subscriptions", "list",
        env={"MASKINPORTEN_CLIENT_ID": "http-client", "MASKINPORTEN_KID": "http-kid",
             "MASKINPORTEN_KEY_FILE": str(key_file)},
    )  # fmt: skip
    assert ran.code == 1
    assert "not followed" in ran.err
    assert trap.requests == []


# --- paging links ---------------------------------------------------------------------------------


def test_a_next_link_to_another_port_is_reported_foreign_and_never_requested(sim: Simulator, trap: Trap) -> None:
    sim.events.append(
        {
            "specversion": "1.0",
            "id": "e1",
            "type": "t",
            "source": "https://platform.tt02.altinn.no",
            "resource": RESOURCE,
        }
    )
    sim.events.next_base = trap.url
    page = EventsApi(sim.base_url, mp.AltinnExchange(maskinporten(sim))).page(RESOURCE, "0")
    assert [e["id"] for e in page.events] == ["e1"]
    assert page.foreign_next is not None
    assert page.foreign_next.startswith(trap.url)
    assert trap.requests == []


@pytest.mark.parametrize(
    ("link", "same"),
    [
        ("https://platform.altinn.no/events/api/v1/events?after=2&resource=r", True),
        ("https://PLATFORM.altinn.no:443/events/api/v1/events?after=2", True),
        ("http://platform.altinn.no/events/api/v1/events?after=2", False),  # downgraded to http
        ("https://platform.altinn.no:8443/events/api/v1/events?after=2", False),  # another port
        ("https://evil.example/events/api/v1/events?after=2", False),
        ("https://platform.altinn.no.evil.example/events/api/v1/events", False),
        ("https://platform.altinn.no/events/api/v1/subscriptions?after=2", False),  # another path
        ("http://localhost:5080/events/api/v1/events?after=2", False),  # Altinn's default BaseUri
        ("https://platform.altinn.no:99999/events/api/v1/events", False),  # not a port
        ("/events/api/v1/events?after=2", False),  # relative
    ],
)
def test_same_endpoint_compares_scheme_host_port_and_path(link: str, same: bool) -> None:
    assert same_endpoint(link, "https://platform.altinn.no/events/api/v1/events?resource=r&after=1") is same


# --- bounded reads ----------------------------------------------------------------------------------


class Drip:
    """A server that sends its answer one byte at a time, ``interval`` seconds apart."""

    def __init__(self, body: bytes, interval: float, headers_too: bool = False) -> None:
        drip = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nX-Pad: {'p' * 64}\r\n\r\n".encode()
                payload = head + body if drip.headers_too else body
                if not drip.headers_too:
                    self.wfile.write(head)
                try:
                    for i in range(len(payload)):
                        self.wfile.write(payload[i : i + 1])
                        self.wfile.flush()
                        time.sleep(interval)
                except OSError:
                    return  # the client hung up: that is the point

        self.headers_too = headers_too
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_an_answer_that_drips_a_byte_at_a_time_ends_at_the_deadline(headers_too: bool) -> None:
    # Every byte arrives well inside any per-read timeout: only a deadline of the whole request ends this.
    drip = Drip(b"x" * 10_000, interval=0.02, headers_too=headers_too)
    try:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="within 1 s"):
            HttpClient()("GET", drip.url, headers={}, timeout=1.0)
        took = time.monotonic() - started
    finally:
        drip.close()
    assert 0.95 <= took < 1.5


def test_a_slow_answer_that_ends_within_the_deadline_is_read_whole() -> None:
    drip = Drip(b'{"ok":true}', interval=0.02)
    try:
        response = HttpClient()("GET", drip.url, headers={}, timeout=5.0)
    finally:
        drip.close()
    assert (response.status, response.json()) == (200, {"ok": True})


def test_a_body_larger_than_allowed_is_refused_whether_announced_or_not() -> None:
    class Big(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self.send_response(200)
            if self.path == "/announced":
                self.send_header("Content-Length", str(10_000_000))
                self.end_headers()
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for _ in range(1000):  # 64 MB if read to the end
                        chunk = b"y" * 65536
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                except OSError:
                    return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Big)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(ResponseTooLarge, match="10000000 bytes announced"):
            HttpClient()("GET", f"{base}/announced", headers={}, timeout=5, max_bytes=1_000_000)
        started = time.monotonic()
        with pytest.raises(ResponseTooLarge, match="more than 1000000 bytes"):
            HttpClient()("GET", f"{base}/chunked", headers={}, timeout=30, max_bytes=1_000_000)
        assert time.monotonic() - started < 5  # it stopped at the cap, not at the end
    finally:
        server.shutdown()
        server.server_close()


# --- TLS and the environment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://platform.tt02.altinn.no/events/api/v1/events",  # plain http off loopback
        "http://10.0.0.1/token",
        "ftp://platform.altinn.no/x",
        "file:///etc/passwd",
        "//platform.altinn.no/x",
        "https:///no-host",
    ],
)
def test_a_token_goes_only_over_tls_except_to_a_loopback_simulator(url: str) -> None:
    with pytest.raises(InsecureUrl):
        HttpClient()("GET", url, headers={"Authorization": "Bearer secret"}, timeout=1)


def test_proxy_variables_and_netrc_in_the_environment_are_ignored(
    sim: Simulator, trap: Trap, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, trap.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password leaked\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    response = HttpClient()("GET", f"{sim.base_url}/sim/state", headers={}, timeout=5)
    assert response.status == 200
    assert trap.requests == []


def test_loopback_is_recognised_by_address_not_by_name_prefix() -> None:
    with pytest.raises(InsecureUrl):
        HttpClient()("GET", "http://127.0.0.1.nip.io/x", headers={}, timeout=1)
    with pytest.raises(InsecureUrl):
        HttpClient()("GET", "http://localhost.evil.example/x", headers={}, timeout=1)


def test_a_deadline_fires_once_and_leaves_kept_alive_connections_usable(sim: Simulator) -> None:
    """The watchdog shuts down only the socket of a request that ran out of time, never a reused one's."""
    client = HttpClient()
    for _ in range(50):
        assert client("GET", f"{sim.base_url}/sim/state", headers={}, timeout=0.5).status == 200
    time.sleep(0.7)  # every deadline above has passed: none may touch the pooled connection
    assert client("GET", f"{sim.base_url}/sim/state", headers={}, timeout=5).status == 200


def test_nothing_listening_is_unreachable_not_a_deadline() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Unreachable, match=re.escape(f"127.0.0.1:{port}")):
        HttpClient()("GET", f"http://127.0.0.1:{port}/", headers={}, timeout=5)
