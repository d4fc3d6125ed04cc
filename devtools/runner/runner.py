"""The runner itself: index a FunctionApp, serve its HTTP triggers and the host's admin endpoints, run its queue
and timer triggers, stop gracefully."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import requests
import requests.adapters
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.queue import QueueServiceClient

from devtools.runner.admin import AdminApi
from devtools.runner.config import DEFAULT_MESSAGE_LEASE, HostConfig
from devtools.runner.functions import AppFunctions, read_functions
from devtools.runner.http import HttpHost, HttpRouter
from devtools.runner.invoker import Invoker
from devtools.runner.queues import QueueListener, describe
from devtools.runner.timers import TimerListener

log = logging.getLogger("devtools.runner")

_IDENTITY_SUFFIXES = ("__queueServiceUri", "__serviceUri", "__accountName", "__credential")


class ConnectionSettingError(RuntimeError):
    """A queue trigger's ``connection`` names no usable setting."""


def resolve_connection(name: str, env: Mapping[str, str]) -> str:
    """The host's lookup: the setting itself, then ``AzureWebJobs<name>``; Azurite shorthand spelled out."""
    for key in (name, f"AzureWebJobs{name}"):
        value = env.get(key)
        if value:
            if value.replace(" ", "").lower().rstrip(";") == "usedevelopmentstorage=true":
                from shared.stores.devstorage import azurite_connection_string

                return azurite_connection_string()
            return value
    if any(f"{name}{suffix}" in env for suffix in _IDENTITY_SUFFIXES):
        raise ConnectionSettingError(
            f"connection '{name}' is identity-based ({name}__...): the local runner needs a connection string; "
            f"set {name}=UseDevelopmentStorage=true or an Azurite connection string"
        )
    raise ConnectionSettingError(
        f"connection '{name}': app setting '{name}' is not set (see local.settings.json Values)"
    )


class Runner:
    """Run ``app`` locally. ``start()`` returns the bound HTTP port; ``stop()`` drains in-flight work."""

    def __init__(
        self,
        app: Any,
        host_config: HostConfig | None = None,
        env: Mapping[str, str] | None = None,
        *,
        port: int = 0,
        bind: str = "127.0.0.1",
        functions: Iterable[str] | None = None,
        message_lease: float = DEFAULT_MESSAGE_LEASE,
        script_root: Path | None = None,
        threads: int | None = None,
        compact: bool = False,
    ) -> None:
        self.config = host_config or HostConfig()
        self.env = env if env is not None else os.environ
        self.functions: AppFunctions = read_functions(app, functions)
        self.message_lease = message_lease
        self.stopping = threading.Event()
        root = str((script_root or Path.cwd()).resolve())
        self.compact = compact
        self.invoker = Invoker(root, threads, compact=compact)
        self.router = HttpRouter(self.functions.http, self.config.route_prefix)
        self.admin = AdminApi(self.functions, self.invoker, self.stopping, self.env)
        self._bind, self._port = bind, port
        self.http: HttpHost | None = None
        self.listeners: dict[str, QueueListener] = {}
        self.timers: dict[str, TimerListener] = {
            fn.name: TimerListener(fn, self.invoker, self.stopping) for fn in self.functions.timer
        }
        self._sessions: list[requests.Session] = []
        self._started = False

    @property
    def port(self) -> int:
        return self.http.port if self.http else self._port

    def _service(self, connection: str) -> QueueServiceClient:
        """One client (and HTTP connection pool) per listener, sized for its messages in flight.

        Shared, the SDK's default pool of 10 would be exhausted by a few busy queues and urllib3
        would discard (and warn about) connections on every poll.
        """
        conn = resolve_connection(connection, self.env)
        pool = self.config.queues.batch_size + self.config.queues.effective_new_batch_threshold + 4
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._sessions.append(session)
        return QueueServiceClient.from_connection_string(conn, transport=RequestsTransport(session=session))

    def start(self) -> int:
        if self._started:
            raise RuntimeError("Runner already started")
        self._started = True
        # Resolve every connection before serving anything: a missing setting fails the start, not a poll later.
        for fn in self.functions.queue:
            self.listeners[fn.name] = QueueListener(
                fn,
                service=self._service(fn.connection),
                options=self.config.queues,
                invoker=self.invoker,
                lease_seconds=self.message_lease,
                stopping=self.stopping,
            )
        # Said before anything is served, so that whatever waits for the port prints after these lines.
        self._log_startup()
        for timer in self.timers.values():
            timer.announce(self.compact)
        # Always listening, like the host: the admin endpoints serve an app without HTTP functions too.
        self.http = HttpHost(self.router, self.invoker, self._bind, self._port, self.admin)
        self.http.start()
        for listener in self.listeners.values():
            listener.start()
        for timer in self.timers.values():
            timer.start()
        return self.port

    def banner(self) -> str:
        """The function list as ``func start`` prints it."""
        base = f"http://localhost:{self.port}"
        lines = ["Functions:", ""]
        for fn in self.functions.http:
            lines += [f"\t{fn.name}: [{','.join(fn.methods)}] {self.router.url_for(fn, base)}", ""]
        for q in self.functions.queue:
            lines += [f"\t{q.name}: queueTrigger", ""]
        for t in self.functions.timer:
            lines += [f"\t{t.name}: timerTrigger", ""]
        if self.functions.skipped:
            lines += ["Not run by this runner:", ""]
            for s in self.functions.skipped:
                lines += [f"\t{s.name}: {s.reason}", ""]
        return "\n".join(lines)

    def summary(self) -> str:
        """The function list in one line (``compact``: the whole list is the ``--verbose`` banner)."""
        f = self.functions
        return (
            f"Functions: {len(f.http)} HTTP, {len(f.queue)} queue, {len(f.timer)} timer"
            + (f", {len(f.skipped)} not run by this runner" if f.skipped else "")
            + " (--verbose lists them, with every invocation)"
        )

    def _log_startup(self) -> None:
        level = logging.DEBUG if self.compact else logging.INFO
        if any(fn.auth_level != "anonymous" for fn in self.functions.http):
            log.log(level, "Function keys are not checked locally (as with `func start`): authLevel is not enforced.")
        if self.config.function_timeout is not None:
            log.log(level, "functionTimeout (%ss) is not enforced by the local runner.", self.config.function_timeout)
        if self.listeners:
            log.log(level, "Queue options: %s", describe(self.config.queues, self.message_lease))
        if any(fn.use_monitor for fn in self.functions.timer):
            log.log(
                level, "Timer useMonitor is not persisted locally: a schedule missed while stopped is not caught up."
            )
        if self.compact:
            log.info("%s", self.summary())

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop polling and accepting requests; wait up to ``timeout`` s for invocations in flight.

        Returns False if some were still running: their messages are not deleted and reappear after their lease.
        """
        self.stopping.set()
        deadline = time.monotonic() + timeout
        drained = True
        if self.http is not None:
            drained = self.http.stop(max(0.0, deadline - time.monotonic())) and drained
        for listener in self.listeners.values():
            listener.join(max(0.0, deadline - time.monotonic()))
            drained = listener.wait_drained(max(0.0, deadline - time.monotonic())) and drained
            listener.close()
        for timer in self.timers.values():
            drained = timer.join(max(0.0, deadline - time.monotonic())) and drained
        drained = self.admin.wait(max(0.0, deadline - time.monotonic())) and drained
        self.invoker.shutdown()
        for session in self._sessions:
            session.close()
        if not drained:
            log.warning("Stopped with invocations still running after %ss; their messages reappear later.", timeout)
        return drained

    def wait_idle(self, queues: Iterable[str] | None = None, timeout: float = 30.0) -> bool:
        """True once the trigger queues (all, or those named) are empty and nothing is in flight.

        "Empty" counts invisible messages too (Azure's approximate count does), so a message waiting out
        its visibilityTimeout before a retry keeps the runner busy, as it should.
        """
        wanted = set(queues) if queues is not None else None
        listeners = [lst for lst in self.listeners.values() if wanted is None or lst.function.queue_name in wanted]
        deadline = time.monotonic() + timeout
        quiet_checks = 0
        while time.monotonic() < deadline:
            busy = any(lst.in_flight for lst in listeners) or any(_pending(lst) for lst in listeners)
            quiet_checks = 0 if busy else quiet_checks + 1
            if quiet_checks >= 2:  # twice in a row: a message between fetch and hand-off is not missed
                return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> Runner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pending(listener: QueueListener) -> int:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return int(listener.queue.get_queue_properties().approximate_message_count or 0)
    except ResourceNotFoundError:
        return 0


def load_host_config(script_root: Path, host_json: Path | None = None) -> HostConfig:
    return HostConfig.load(host_json or script_root / "host.json")
