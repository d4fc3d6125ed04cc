"""HTTP triggers on a real server: ``http://localhost:<port>/<routePrefix>/<route>``, as ``func start`` serves them."""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from devtools.runner.functions import HttpFunction
from devtools.runner.invoker import Invoker

if TYPE_CHECKING:
    from devtools.runner.admin import AdminApi

log = logging.getLogger("devtools.runner")

#: Kestrel's default request body limit in the Functions host is about 100 MB.
MAX_BODY = 100 * 1024 * 1024


class HttpRouter:
    def __init__(self, functions: list[HttpFunction], route_prefix: str) -> None:
        # Most specific first, so `dialogs/latest` wins over `dialogs/{id}` as in ASP.NET routing.
        self.functions = sorted(functions, key=lambda f: f.route.specificity, reverse=True)
        self.prefix = route_prefix.strip("/")

    def url_for(self, fn: HttpFunction, base: str) -> str:
        path = "/".join(p for p in (self.prefix, fn.route.template) if p)
        return f"{base}/{path}"

    def resolve(self, method: str, path: str) -> tuple[HttpFunction | None, dict[str, str], list[str]]:
        """(function, route params, allowed methods). No function and no methods: 404; methods only: 405."""
        relative = path.strip("/")
        if self.prefix:
            head, _, rest = relative.partition("/")
            if head.lower() != self.prefix.lower():
                return None, {}, []
            relative = rest
        allowed: list[str] = []
        for fn in self.functions:
            params = fn.route.match(relative)
            if params is None:
                continue
            if method in fn.methods:
                return fn, params, []
            allowed.extend(m for m in fn.methods if m not in allowed)
        return None, {}, allowed


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of concurrent senders (Altinn retries,
    # `dpctl send --concurrency 16`) then sees connections refused or stalled for seconds.
    request_queue_size = 128
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], router: HttpRouter, invoker: Invoker, admin: AdminApi | None) -> None:
        super().__init__(address, _Handler)
        self.router = router
        self.invoker = invoker
        self.admin = admin
        self.active = 0
        self.idle = threading.Condition()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler dispatches to do_<METHOD>; every method goes through one path here.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(65537).split(b";", 1)[0].strip()
                size = int(size_line, 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():  # trailers
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise _TooLarge
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise _TooLarge
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        with self.server.idle:
            self.server.active += 1
        try:
            self._dispatch()
        finally:
            with self.server.idle:
                self.server.active -= 1
                self.server.idle.notify_all()

    def _dispatch(self) -> None:
        method = self.command.upper()
        try:
            body = self._read_body()
        except _TooLarge:
            self._send(413, {}, b"")
            self.close_connection = True
            return
        except ValueError:
            self._send(400, {}, b"")
            self.close_connection = True
            return
        split = urlsplit(self.path)
        fn, route_params, allowed = self.server.router.resolve(method, split.path)
        if fn is None and not allowed and self.server.admin is not None:
            # The host's own endpoints (landing page, /admin/...) where no function route matches.
            answer = self.server.admin.handle(method, split.path, body)
            if answer is not None:
                self._send(*answer)
                return
        if fn is None:
            if allowed:
                self._send(405, {"Allow": ", ".join(allowed)}, b"")
            else:
                self._send(404, {}, b"")
            return
        host = self.headers.get("Host") or f"localhost:{self.server.server_address[1]}"
        request = func.HttpRequest(
            method=method,
            url=f"http://{host}{self.path}",
            headers=_joined(self.headers.items()),
            params=dict(parse_qsl(split.query, keep_blank_values=True)),
            route_params=route_params,
            body=body,
        )
        outcome = self.server.invoker.invoke(
            fn.name,
            fn.func,
            fn.arg_name,
            request,
            reason="This function was programmatically called via the host APIs.",
        )
        if not outcome.succeeded:
            self._send(500, {}, b"")
            return
        try:
            status, headers, payload = _response(outcome.value, fn.returns_http)
        except TypeError as exc:
            log.error("Functions.%s: %s", fn.name, exc)
            self._send(500, {}, b"")
            return
        self._send(status, headers, payload)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        self.send_response(status, phrase)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)


class _TooLarge(Exception):
    pass


def _joined(items: Any) -> dict[str, str]:
    """Repeated request headers arrive as one comma-joined value, as ASP.NET hands them to the worker."""
    headers: dict[str, str] = {}
    for name, value in items:
        key = next((k for k in headers if k.lower() == name.lower()), name)
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _response(value: Any, returns_http: bool) -> tuple[int, dict[str, str], bytes]:
    """The worker's HTTP output converter: an HttpResponse, or a str/bytes body with 200."""
    if isinstance(value, func.HttpResponse):
        headers = dict(value.headers.items())
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = f"{value.mimetype}; charset={value.charset}" if value.charset else value.mimetype
        return value.status_code, headers, value.get_body()
    if value is None or not returns_http:
        return 204 if value is None else 200, {}, b""
    if isinstance(value, str):
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, value.encode("utf-8")
    if isinstance(value, bytes):
        return 200, {"Content-Type": "application/octet-stream"}, value
    raise TypeError(f"HTTP function returned {type(value).__name__}; expected func.HttpResponse, str or bytes")


class HttpHost:
    def __init__(
        self, router: HttpRouter, invoker: Invoker, host: str, port: int, admin: AdminApi | None = None
    ) -> None:
        self.server = _Server((host, port), router, invoker, admin)
        self._thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop accepting, then wait (bounded) for requests in progress. True if they all finished."""
        self.server.shutdown()
        self.server.server_close()
        with self.server.idle:
            return self.server.idle.wait_for(lambda: self.server.active == 0, timeout)
