"""``dpctl send``: realistic Dialogporten traffic against a webhook URL (or through the simulator)."""

from __future__ import annotations

import http.client
import json
import math
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import typer

from devtools.cli import output
from devtools.cli.context import Context, Env
from devtools.cli.output import FAILED, JsonFlag, console, emit, fail
from devtools.cli.traffic import stream
from shared.altinn.events_api import check_resource


class SourceEnv(StrEnum):
    TT02 = "tt02"
    PROD = "prod"


@dataclass
class Result:
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    dialogs: set[str] = field(default_factory=set)
    first_dialog: str | None = None
    event_ids: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: str, seconds: float, event: dict[str, Any]) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(seconds)
            self.dialogs.add(str(event.get("resourceinstance")))
            self.first_dialog = self.first_dialog or str(event.get("resourceinstance"))
            self.event_ids[str(event.get("id"))] += 1


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(round(fraction * len(ordered), 9)) - 1))]


def summary(result: Result, elapsed: float) -> dict[str, Any]:
    ms = [x * 1000 for x in result.latencies]
    sent = len(ms)
    return {
        "sent": sent,
        "elapsedSeconds": round(elapsed, 3),
        "perSecond": round(sent / elapsed, 1) if elapsed else None,
        "statuses": dict(sorted(result.statuses.items())),
        "dialogs": len(result.dialogs),
        "exampleDialog": result.first_dialog,
        "uniqueEvents": len(result.event_ids),
        "duplicatesSent": sent - len(result.event_ids),
        "latencyMs": {
            "p50": round(percentile(ms, 0.50), 1),
            "p90": round(percentile(ms, 0.90), 1),
            "p99": round(percentile(ms, 0.99), 1),
            "max": round(max(ms, default=0.0), 1),
        },
    }


class _Poster:
    """One keep-alive connection per thread; reconnects once when the server closed it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.netloc
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self.local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            conn = self.local.conn = cls(self.host, timeout=60)
        return conn

    def post(self, body: bytes) -> int:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                return int(response.status)
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class Plan:
    """What to send: ``count`` events (None: until ``duration`` runs out) at ``rate`` per second (0: at once)."""

    count: int | None = 100
    duration: float | None = None
    rate: float = 0.0
    concurrency: int = 4
    duplicates: float = 0.0
    shuffle: bool = False
    source_env: str = "tt02"
    resource: str = "urn:altinn:resource:super-simple-service"
    seed: int | None = None


def run(url: str, plan: Plan, advance: Callable[[], None] = lambda: None) -> tuple[Result, float]:
    """POST the plan's traffic to ``url``; what came back, and the seconds it took (``make bench`` uses this too)."""
    events = stream(
        random.Random(plan.seed),
        duplicates=plan.duplicates,
        shuffle=plan.shuffle,
        source_env=plan.source_env,
        resource=plan.resource,
    )
    poster = _Poster(url)
    result = Result()
    take = threading.Lock()
    issued = 0
    started = time.perf_counter()

    def next_event() -> tuple[int, dict[str, Any]] | None:
        nonlocal issued
        with take:
            if plan.count is not None and issued >= plan.count:
                return None
            if plan.duration is not None and time.perf_counter() - started >= plan.duration:
                return None
            if plan.duration is not None and plan.rate and issued / plan.rate >= plan.duration:
                return None  # its slot would fall after the end: --duration 10 --rate 5 sends 50, not 50 + concurrency
            issued += 1
            return issued - 1, next(events)

    def worker() -> None:
        while (item := next_event()) is not None:
            index, event = item
            if plan.rate:
                delay = started + index / plan.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            t0 = time.perf_counter()
            try:
                status = str(poster.post(json.dumps(event).encode("utf-8")))
            except (OSError, http.client.HTTPException) as exc:  # counted; its text may hold the URL and key
                status = f"error:{type(exc).__name__}"
            result.add(status, time.perf_counter() - t0, event)
            advance()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(plan.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result, time.perf_counter() - started


def listening(url: str, timeout: float = 3.0) -> str | None:
    """None when something accepts a connection at ``url``'s host and port; else why not, in words."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except socket.gaierror:
        return f"the host name {parts.hostname!r} is not known"
    except TimeoutError:
        return f"no answer within {timeout:.0f} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def send(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(help="the webhook URL")] = "http://localhost:7071/api/events",
    key: Annotated[str | None, typer.Option(envvar="FUNCTION_KEY", help="function key, sent as ?code=")] = None,
    to_sim: Annotated[
        bool, typer.Option("--to-sim", help="publish to the Altinn simulator, which delivers to its subscriptions")
    ] = False,
    count: Annotated[int | None, typer.Option(min=1, help="send this many events (default 100)")] = None,
    duration: Annotated[float | None, typer.Option(min=0.1, help="send for this many seconds instead")] = None,
    rate: Annotated[float, typer.Option(min=0, help="events per second, 0 for as fast as possible")] = 0.0,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="requests in flight")] = 4,
    duplicates: Annotated[float, typer.Option(min=0.0, max=1.0, help="fraction of events sent twice")] = 0.0,
    shuffle: Annotated[bool, typer.Option(help="reorder events (of one dialog too) as Altinn may")] = False,
    source_env: Annotated[SourceEnv, typer.Option(help="shape of the events' source URLs")] = SourceEnv.TT02,
    resource: Annotated[str, typer.Option(help="the events' resource")] = "urn:altinn:resource:super-simple-service",
    seed: Annotated[int | None, typer.Option(help="repeatable traffic")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send whole dialog lifecycles; print status counts and latency percentiles. Exit 1 if any request failed."""
    context: Context = ctx.obj
    if count is not None and duration is not None:
        fail("give --count or --duration, not both")
    total = count if count is not None else (None if duration is not None else 100)
    if to_sim:
        url = f"{context.environment.platform}/sim/publish"
    elif key:
        url += ("&" if "?" in url else "?") + urlencode({"code": key})
    if urlsplit(url).scheme not in ("http", "https"):
        fail(f"--url must be http(s), got {url!r}")
    if any(c.isspace() or not c.isprintable() for c in url):
        fail("--url must not hold spaces or control characters: percent-encode them")
    try:
        check_resource(resource)
    except ValueError as exc:
        fail(f"--resource: {exc}")
    why = listening(url)
    if why is not None:
        if to_sim:
            hint = "start the Altinn simulator: make run ARGS=--altinn-sim (or give --sim-url)"
        elif context.env is Env.LOCAL and urlsplit(url).hostname in ("localhost", "127.0.0.1", "::1"):
            hint = "start the app: make run (it listens on http://localhost:7071), or give --url"
        else:
            hint = "check --url: the app's host name and port"
        fail(f"nothing is listening at {url} ({why}); no event was sent", hint=hint)
    with output.progress("sending", total=total) as tracker:
        result, elapsed = run(
            url,
            Plan(total, duration, rate, concurrency, duplicates, shuffle, source_env.value, resource, seed),
            tracker.advance,
        )
    report = {"url": url, **summary(result, elapsed)}  # printed with the key redacted (code=***), as all output

    def draw(found: dict[str, Any]) -> None:
        table = output.table(show_header=False, box=None)
        for name, value in found.items():
            shown = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
            table.add_row(f"[bold]{name}[/]", shown)
        console.print(table)

    emit(report, draw, as_json=as_json)
    if result.statuses and all(s.startswith("error:") for s in result.statuses):
        fail(f"no request reached {url}: the connection failed for every one (has the app stopped?)")
    if not result.statuses or any(not s.startswith("2") for s in result.statuses):
        raise typer.Exit(FAILED)
