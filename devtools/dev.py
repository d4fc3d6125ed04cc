"""`make run`: Azurite in memory plus the local Functions runner, with a ready-to-paste curl. Ctrl-C stops both."""

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7071, help="HTTP port of the runner (default 7071)")
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
        return runner.wait()
    except KeyboardInterrupt:
        runner.send_signal(signal.SIGINT)
        try:
            return runner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            runner.kill()
            return 1
    finally:
        if runner.poll() is None:
            runner.terminate()
            runner.wait()
        if azurite is not None:
            azurite.stop()


if __name__ == "__main__":
    raise SystemExit(main())
