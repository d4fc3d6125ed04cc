"""`make run`: Azurite in memory plus the local Functions runner, with a ready-to-paste curl. Ctrl-C stops both.

The console is for reading: one block at start (at most 25 lines: the URL, the curls, one line per timer) and,
during traffic, one line per message (the app's own ``dialogporten.ingest``/``dialogporten.process`` lines).
``make run ARGS=--verbose`` shows the rest: the function list, the host's notes, every invocation and poll.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from devtools.azurite import ROOT, Azurite, port_open
from devtools.export_catalog import provision
from devtools.runner.config import LOCAL_SETTINGS, LOCAL_SETTINGS_EXAMPLE, ensure_local_settings
from devtools.samples import sample_event
from shared.settings import STORAGE_CONNECTION


def _wait_http(url: str, timeout: float, alive: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + timeout
    # OPTIONS: the webhook's handshake, which logs no event outcome (a GET would log a refusal).
    probe = urllib.request.Request(url, method="OPTIONS")
    while time.monotonic() < deadline and alive():
        try:
            urllib.request.urlopen(probe, timeout=1)  # any answer means the server is up
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)
    return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sim_help(base: str, resource: str, sim_port: int) -> str:
    sim = f"http://127.0.0.1:{sim_port}"
    return (
        f"Altinn simulator (a fake, dev only) on {sim}; in another shell, the whole loop:\n"
        "  .venv/bin/dpctl auth\n"
        f"  .venv/bin/dpctl subscriptions create --endpoint {base}/events --resource {resource}\n"
        "  .venv/bin/dpctl subscriptions wait 1\n"
        "  .venv/bin/dpctl send --to-sim --count 50\n"
        "  .venv/bin/dpctl status\n"
    )


@dataclass(frozen=True)
class SimOptions:
    port: int
    time_scale: float


#: What --storage-only prints once storage is ready (the VS Code pre-launch task waits for it).
READY = "Storage ready for the runner."


def _storage(env: dict[str, str]) -> Azurite | None:
    """Point ``env`` at Azurite on its default ports; the Azurite started here, or None if one already listened."""
    if all(port_open(p) for p in (10000, 10001, 10002)):
        print("Azurite already listens on 10000-10002: using it.")
        env[STORAGE_CONNECTION] = Azurite().connection_string
        return None
    azurite = Azurite().start()  # the default ports, as `func start` with UseDevelopmentStorage=true expects
    env[STORAGE_CONNECTION] = azurite.connection_string
    print("Azurite started in memory on 127.0.0.1:10000 (blob), 10001 (queue), 10002 (table).")
    return azurite


def _run(port: int, runner_args: list[str], env: dict[str, str], sim_options: SimOptions | None) -> int:
    # --compact is the console's default; the runner drops it itself when --verbose is among runner_args.
    command = [sys.executable, "-m", "devtools.runner", "--port", str(port), "--compact", *runner_args]
    runner = subprocess.Popen(command, cwd=ROOT, env=env)
    sim: subprocess.Popen[bytes] | None = None
    if sim_options is not None:
        sim_command = [sys.executable, "-m", "devtools.altinn_sim", "--port", str(sim_options.port),
                       "--time-scale", str(sim_options.time_scale), "--allow-http-loopback"]  # fmt: skip
        sim = subprocess.Popen(sim_command, cwd=ROOT, env=env)
    host = f"http://localhost:{port}"
    base = f"{host}/api"
    try:
        if _wait_http(f"{base}/events", 60, lambda: runner.poll() is None):
            event = sample_event("dialogporten.dialog.created.v1")
            curl = (
                f"curl -i -X POST '{base}/events' -H 'Content-Type: application/json; charset=utf-8' "
                f"--data {shlex.quote(json.dumps(event))}"
            )
            print(
                "\n"
                f"Webhook URL (give Altinn Events the deployed one, with ?code=<function key>):\n  {base}/events\n\n"
                f"Post a sample Dialogporten event:\n  {curl}\n\n"
                f"Then the dialog its handler recorded:\n  curl -s {base}/dialogs/{event['resourceinstance']}\n\n"
                "Run a timer now (any timer or queue function, by name):\n"
                f"  curl -i -X POST {host}/admin/functions/purge_idempotency "
                "-H 'Content-Type: application/json' --data '{\"input\": \"\"}'\n\n"
                "Ctrl-C stops the runner and Azurite.\n",
                flush=True,
            )
            if sim_options is not None:
                print(_sim_help(base, event["resource"], sim_options.port), flush=True)
        return runner.wait()
    except KeyboardInterrupt:
        runner.send_signal(signal.SIGINT)
        try:
            return runner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            runner.kill()
            return 1
    finally:
        if sim is not None and sim.poll() is None:
            sim.terminate()
            sim.wait()
        if runner.poll() is None:
            runner.terminate()
            runner.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, epilog="Other options go to the runner: --verbose, --functions NAME ..."
    )
    parser.add_argument("--port", type=int, default=7071, help="HTTP port of the runner (default 7071)")
    parser.add_argument(
        "--storage-only",
        action="store_true",
        help=f"only Azurite and the provisioning, for a runner started elsewhere (a debugger); prints {READY!r}",
    )
    parser.add_argument("--altinn-sim", action="store_true", help="also start the local Altinn simulator (port 7072)")
    parser.add_argument("--sim-port", type=int, default=7072, help="HTTP port of the simulator (default 7072)")
    parser.add_argument(
        "--sim-time-scale",
        type=float,
        default=1.0,
        help="the simulator's delays times this: retries and the events API's 30 s hold-back "
        "(0.01: Altinn's 1.5 days in 22 minutes)",
    )
    args, runner_args = parser.parse_known_args(argv)
    if not args.storage_only and port_open(args.port):
        # Checked first: otherwise the readiness probe below is answered by whatever holds the port.
        print(
            f"Port {args.port} is already in use (another `make run`, or `func start`?).\n"
            f'Stop it, or pick another port: make run ARGS="--port {args.port + 1}"',
            file=sys.stderr,
        )
        return 1
    # `kill` (SIGTERM) stops both as Ctrl-C does, instead of orphaning Azurite and the runner.
    signal.signal(signal.SIGTERM, _interrupt)
    azurite: Azurite | None = None
    try:
        if ensure_local_settings(ROOT):
            print(f"Wrote {LOCAL_SETTINGS} from {LOCAL_SETTINGS_EXAMPLE} (not committed; edit it freely).")
        env = dict(os.environ)
        azurite = _storage(env)
        provision(env[STORAGE_CONNECTION])  # the queues, tables and container Bicep creates in Azure
        if not args.storage_only:
            sim_options = SimOptions(args.sim_port, args.sim_time_scale) if args.altinn_sim else None
            return _run(args.port, runner_args, env, sim_options)
        print(f"{READY} Ctrl-C stops it.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C or SIGTERM must not interrupt the stop and orphan Azurite.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if azurite is not None:
            azurite.stop()


if __name__ == "__main__":
    raise SystemExit(main())
