"""`make run`: Azurite in memory plus the local Functions runner, with a ready-to-paste curl. Ctrl-C stops both.

`make run ARGS=--altinn-sim` also starts the local Altinn simulator (a fake of Maskinporten and Altinn
Events, ``devtools/altinn_sim``) on port 7072, so that the operator CLI's whole loop runs locally.
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

from devtools.azurite import ROOT, Azurite, port_open
from devtools.export_catalog import provision
from devtools.samples import sample_event
from shared.settings import STORAGE_CONNECTION


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    # OPTIONS: the webhook's handshake, which logs no event outcome (a GET would log a refusal).
    probe = urllib.request.Request(url, method="OPTIONS")
    while time.monotonic() < deadline:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7071, help="HTTP port of the runner (default 7071)")
    parser.add_argument("--altinn-sim", action="store_true", help="also start the local Altinn simulator (port 7072)")
    parser.add_argument("--sim-port", type=int, default=7072, help="HTTP port of the simulator (default 7072)")
    parser.add_argument(
        "--sim-time-scale",
        type=float,
        default=1.0,
        help="the simulator's retry delays times this (0.01: Altinn's 1.5 days in 22 minutes)",
    )
    args, runner_args = parser.parse_known_args(argv)
    # `kill` (SIGTERM) stops both as Ctrl-C does, instead of orphaning Azurite and the runner.
    signal.signal(signal.SIGTERM, _interrupt)

    azurite: Azurite | None = None
    env = dict(os.environ)
    if all(port_open(p) for p in (10000, 10001, 10002)):
        print("Azurite already listens on 10000-10002: using it.")
        env[STORAGE_CONNECTION] = Azurite().connection_string
    else:
        azurite = Azurite().start()  # the default ports, as `func start` with UseDevelopmentStorage=true expects
        env[STORAGE_CONNECTION] = azurite.connection_string
        print("Azurite started in memory on 127.0.0.1:10000 (blob), 10001 (queue), 10002 (table).")

    provision(env[STORAGE_CONNECTION])  # the queues, tables and container Bicep creates in Azure
    command = [sys.executable, "-m", "devtools.runner", "--port", str(args.port), *runner_args]
    runner = subprocess.Popen(command, cwd=ROOT, env=env)
    sim: subprocess.Popen[bytes] | None = None
    if args.altinn_sim:
        sim_command = [sys.executable, "-m", "devtools.altinn_sim", "--port", str(args.sim_port),
                       "--time-scale", str(args.sim_time_scale), "--allow-http-loopback"]  # fmt: skip
        sim = subprocess.Popen(sim_command, cwd=ROOT, env=env)
    base = f"http://localhost:{args.port}/api"
    try:
        if _wait_http(f"{base}/events", 60):
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
                "Ctrl-C stops the runner and Azurite.\n",
                flush=True,
            )
            if sim is not None:
                print(_sim_help(base, event["resource"], args.sim_port), flush=True)
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
        if azurite is not None:
            azurite.stop()


if __name__ == "__main__":
    raise SystemExit(main())
