"""The one outbound HTTP client: every call the app and ``dpctl`` make to Maskinporten, the Altinn exchange,
the events and subscriptions APIs and Dialogporten goes through :class:`HttpClient`.

A bearer token is only as safe as the client that carries it. The rules:

- **No redirect is followed.** A 3xx answer raises :class:`~shared.errors.RedirectRefused` naming its
  ``Location``: urllib (which this replaces) follows 302/307 to any host, even from https to http, with the
  ``Authorization`` header.
- **TLS only**, except plain http to a loopback address (the local simulator):
  :class:`~shared.errors.InsecureUrl` before anything is sent.
- **Bounded.** A body is read up to ``max_bytes`` (:class:`~shared.errors.ResponseTooLarge`), and the whole
  request (connect, send, headers, body) ends within its ``timeout`` seconds, however slowly the peer
  sends: a per-read socket timeout does not bound a body that drips a byte at a time, so one watchdog thread
  per process shuts the request's socket down at its deadline (:class:`~shared.errors.DeadlineExceeded`).
- **Nothing from the environment.** Each client has its own ``requests`` session with ``trust_env=False``:
  no proxy variables, no ``.netrc`` credentials, no CA bundle override. ``requests`` is already loaded by
  the Azure SDKs, so this costs no import time.

Paging links are followed by callers only on the API's own scheme, host, port and path: :func:`same_endpoint`.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Protocol
from urllib.parse import SplitResult, urlsplit

from shared.errors import DeadlineExceeded, InsecureUrl, RedirectRefused, ResponseTooLarge, Unreachable

__all__ = [
    "DEFAULT_MAX_BYTES",
    "HttpClient",
    "HttpResponse",
    "Transport",
    "check_url",
    "parse_http_time",
    "same_endpoint",
]

#: A token, a subscription or an error answer is a few KiB.
DEFAULT_MAX_BYTES: Final = 1024 * 1024
CONNECT_TIMEOUT: Final = 5.0
#: Connections kept per client; a Dialogporten client serves every worker thread of the process.
POOL_SIZE: Final = 32
_CHUNK: Final = 64 * 1024
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A header's value, whatever the case of its name (HTTP header names are case-insensitive)."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return str(value)
        return None


class Transport(Protocol):
    def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> HttpResponse:
        """Send one request within ``timeout`` seconds in all; every status but 3xx is returned.

        Raises an :class:`~shared.errors.OutboundError` (network, deadline, redirect, size, insecure URL).
        """


# --- URLs -----------------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> SplitResult:
    """``url`` split, if a token may be sent there: https, or http to a loopback address (the simulator)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise InsecureUrl(f"not a valid URL: {url[:200]!r}: {exc}") from None
    if not host:
        raise InsecureUrl(f"not an absolute URL: {url[:200]!r}")
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return parts
    raise InsecureUrl(f"refusing {parts.scheme}://{host}: only https (plain http to a loopback simulator only)")


def _origin_and_path(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path


def parse_http_time(value: str | None, now: float) -> datetime | None:
    """An HTTP date (RFC 1123: ``Retry-After``, ``Expires``) or a number of seconds (``Retry-After``)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return datetime.fromtimestamp(now + int(text), UTC)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def same_endpoint(url: str, other: str) -> bool:
    """Whether two URLs have the same scheme, host, port and path (the query may differ)."""
    mine = _origin_and_path(url)
    return mine is not None and mine == _origin_and_path(other)


# --- the deadline watchdog --------------------------------------------------------------------------


class _Ticket:
    """One request's deadline, and the sockets it used (a redirect is refused, so usually one)."""

    __slots__ = ("_lock", "_sockets", "deadline", "done", "fired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.done = False
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.fired:
                _shutdown(sock)
            elif sock not in self._sockets:
                self._sockets.append(sock)

    def fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.fired = True
            for sock in self._sockets:
                _shutdown(sock)

    def disarm(self) -> None:
        with self._lock:
            self.done = True
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # a recv blocked on it returns at once


class _Watchdog:
    """One daemon thread for the process: at a request's deadline, it shuts the request's socket down."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Ticket]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float) -> _Ticket:
        ticket = _Ticket(deadline)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._order), ticket))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()
        return ticket

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)[2].fire()


_WATCHDOG: Final = _Watchdog()
#: The ticket of the request this thread is sending: the connection classes attach their socket to it.
_CURRENT = threading.local()


def _connection_classes() -> tuple[type[Any], type[Any]]:
    from urllib3.connection import HTTPConnection, HTTPSConnection

    class _Deadlined:
        sock: socket.socket | None

        def connect(self) -> None:
            super().connect()  # type: ignore[misc]
            _attach(self.sock)

        def request(self, *args: Any, **kwargs: Any) -> None:
            _attach(self.sock)  # a kept-alive connection is not connected again
            super().request(*args, **kwargs)  # type: ignore[misc]

    class _Http(_Deadlined, HTTPConnection):
        pass

    class _Https(_Deadlined, HTTPSConnection):
        pass

    return _Http, _Https


def _attach(sock: socket.socket | None) -> None:
    ticket: _Ticket | None = getattr(_CURRENT, "ticket", None)
    if ticket is not None:
        ticket.attach(sock)


def _session(pool_size: int) -> Any:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    http_conn, https_conn = _connection_classes()

    class _HttpPool(HTTPConnectionPool):
        ConnectionCls = http_conn

    class _HttpsPool(HTTPSConnectionPool):
        ConnectionCls = https_conn

    class _Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": _HttpPool, "https": _HttpsPool}

    session = requests.Session()
    session.trust_env = False  # no proxy, .netrc or CA bundle from the environment
    adapter = _Adapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- the client -------------------------------------------------------------------------------------


@dataclass
class HttpClient:
    """A :class:`Transport` over its own ``requests`` session. Thread-safe; build one per API client."""

    pool_size: int = POOL_SIZE
    connect_timeout: float = CONNECT_TIMEOUT
    _session: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _get_session(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = _session(self.pool_size)
            return self._session

    def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: float,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> HttpResponse:
        import requests

        where = _where(url)
        check_url(url)
        session = self._get_session()
        deadline = time.monotonic() + timeout
        ticket = _WATCHDOG.arm(deadline)
        response = None
        try:
            _CURRENT.ticket = ticket
            try:
                response = session.request(
                    method,
                    url,
                    headers={"Accept-Encoding": "identity", **headers},
                    data=body,
                    allow_redirects=False,
                    stream=True,
                    timeout=(min(self.connect_timeout, timeout), timeout),
                )
            finally:
                _CURRENT.ticket = None
            status = int(response.status_code)
            if 300 <= status < 400:
                location = response.headers.get("Location")
                raise RedirectRefused(f"{method} {where}: {status} redirect to {location!r} not followed", location)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ResponseTooLarge(f"{method} {where}: {declared} bytes announced, at most {max_bytes} read")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ResponseTooLarge(f"{method} {where}: more than {max_bytes} bytes")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    break
            if ticket.fired or time.monotonic() > deadline:
                raise DeadlineExceeded(f"{method} {where}: no whole answer within {timeout:g} s")
            return HttpResponse(status, dict(response.headers.items()), b"".join(chunks))
        except (requests.RequestException, OSError) as exc:
            if ticket.fired or time.monotonic() >= deadline:
                raise DeadlineExceeded(f"{method} {where}: no whole answer within {timeout:g} s") from exc
            raise Unreachable(f"{method} {where}: {type(exc).__name__}: {_first_line(exc)}") from exc
        finally:
            ticket.disarm()
            if response is not None:
                response.close()


def _where(url: str) -> str:
    """The URL without its query: what a message or log line may show (a query can carry a key)."""
    return url.split("?", 1)[0][:300]


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return (text.splitlines() or [""])[0][:300]
