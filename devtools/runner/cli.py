"""``python -m devtools.runner``: a dev-only stand-in for ``func start``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from devtools.runner.config import (
    DEFAULT_MESSAGE_LEASE,
    LOCAL_SETTINGS,
    LOCAL_SETTINGS_EXAMPLE,
    ConfigError,
    load_local_settings,
)
from devtools.runner.functions import load_app
from devtools.runner.runner import ConnectionSettingError, Runner, load_host_config

DESCRIPTION = """\
Run a Python v2 Azure Functions app locally, like `func start`: HTTP triggers on
http://localhost:PORT/<routePrefix>/..., queue triggers against Azure Storage (Azurite)
with the host's host.json semantics (batchSize, newBatchThreshold, maxDequeueCount and
<queue>-poison, visibilityTimeout, messageEncoding, maxPollingInterval), timer triggers
on their NCRONTAB schedule (runOnStartup honoured), and the host's endpoints:
  GET  /                         the landing page
  GET  /admin/host/status        the host status
  POST /admin/functions/<name>   run a queue or timer function now; body {"input": "..."}

Settings: the Values of local.settings.json in the script root are put into the
environment before the app is imported; variables already set in the environment win.
local.settings.json is not committed: `make install` writes it from
local.settings.example.json.
Function keys (authLevel) and the master key of /admin are not checked, as with
`func start`; in Azure, /admin needs the master key in the x-functions-key header.
"""


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m devtools.runner", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--port", type=int, default=7071, help="HTTP port (default 7071; 0 picks a free one)")
    p.add_argument("--functions", nargs="+", metavar="NAME", help="load only these functions (like func start)")
    p.add_argument("--script-root", type=Path, default=Path.cwd(), help="the app's folder (default: current directory)")
    p.add_argument("--verbose", action="store_true", help="debug logging (HTTP access lines, polls)")
    dev = p.add_argument_group("dev-only options (no `func start` equivalent)")
    dev.add_argument(
        "--app",
        default="function_app:app",
        metavar="MODULE:ATTR",
        help="the FunctionApp to load (default function_app:app)",
    )
    dev.add_argument("--host-json", type=Path, metavar="PATH", help="use this file instead of <script-root>/host.json")
    dev.add_argument(
        "--message-lease",
        type=float,
        default=DEFAULT_MESSAGE_LEASE,
        metavar="SECONDS",
        help="how long a fetched queue message stays invisible, renewed at half time while its "
        "function runs (the host uses 600)",
    )
    dev.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, how long to wait for invocations in flight (default 30)",
    )
    dev.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS", help="address to listen on (default 127.0.0.1)")
    dev.add_argument(
        "--compact",
        action="store_true",
        help="make run's console: a short start (one line per timer, no function list) and one line per message "
        "(the app's own); `Executing`/`Executed` only with --verbose",
    )
    return p


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_UtcFormatter("[%(asctime)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # The Azure SDKs log every HTTP call at INFO; the host does not show those either.
    logging.getLogger("azure").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _configure_logging(args.verbose)
    log = logging.getLogger("devtools.runner")
    root = args.script_root.resolve()
    if not root.is_dir():
        log.error("--script-root %s is not a folder", root)
        return 2
    # The worker runs with the script root as working directory; relative paths in the app expect it.
    os.chdir(root)
    started = time.perf_counter()
    try:
        settings = root / LOCAL_SETTINGS
        if not settings.exists() and (root / LOCAL_SETTINGS_EXAMPLE).exists():
            log.warning("No %s: run `make install` (it copies %s).", LOCAL_SETTINGS, LOCAL_SETTINGS_EXAMPLE)
        applied = load_local_settings(settings, os.environ)
        if applied:
            log.info("%s: applied %s", LOCAL_SETTINGS, ", ".join(applied))
        config = load_host_config(root, args.host_json)
        app = load_app(root, args.app)
        runner = Runner(
            app,
            config,
            os.environ,
            port=args.port,
            bind=args.bind,
            functions=args.functions,
            message_lease=args.message_lease,
            script_root=root,
            compact=args.compact and not args.verbose,
        )
        port = runner.start()
    except (ConfigError, ConnectionSettingError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error(
            "Cannot listen on %s:%s: %s. Is another runner or `func start` using it? Pick another port with --port.",
            args.bind,
            args.port,
            exc,
        )
        return 1

    if not runner.compact:
        print(f"\n{runner.banner()}", flush=True)
    level = logging.DEBUG if runner.compact else logging.INFO  # make run prints the URL in its own block
    log.log(level, "Host started (%dms)", (time.perf_counter() - started) * 1000)
    log.log(level, "Now listening on: http://localhost:%d", port)

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("Received %s: stopping the host.", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop.wait(0.5):
        pass
    drained = runner.stop(args.drain_timeout)
    log.info("Host stopped.")
    logging.shutdown()
    sys.stdout.flush()
    if not drained:
        # Invocations still running on worker threads cannot be interrupted; without this the interpreter
        # would wait for them at exit and the drain timeout would mean nothing.
        os._exit(0)
    return 0
