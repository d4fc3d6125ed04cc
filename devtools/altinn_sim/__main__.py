"""``python -m devtools.altinn_sim``: serve the fake Altinn side until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from devtools.altinn_sim import devclient
from devtools.altinn_sim.delivery import DELIVERY_TIMEOUT
from devtools.altinn_sim.server import Options, Simulator
from devtools.altinn_sim.tokens import Client
from devtools.azurite import ROOT

DEV_FOLDER = devclient.home(ROOT)


def _public_key(path: Path) -> tuple[RSAPublicKey, str | None]:
    text = path.read_text(encoding="utf-8").strip()
    key: object
    if text.startswith("{"):
        jwk = json.loads(text)
        key = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
        kid = jwk.get("kid")
    else:
        key = serialization.load_pem_public_key(text.encode())
        kid = None
    if not isinstance(key, RSAPublicKey):
        raise SystemExit(f"{path}: not an RSA public key")
    return key, kid


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devtools.altinn_sim", description=__doc__)
    p.add_argument("--port", type=int, default=7072, help="HTTP port (default 7072; 0 picks a free one)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply Altinn's delays: the retry schedules and the events API's 30 s hold-back "
        "(0.001: the 1.5-day schedule in about 2 minutes)",
    )
    p.add_argument("--delivery-timeout", type=float, default=DELIVERY_TIMEOUT, help="seconds per POST (Altinn: 45)")
    p.add_argument(
        "--allow-http-loopback",
        action="store_true",
        help="accept http://localhost endpoints (Altinn requires https; for the local app only)",
    )
    p.add_argument(
        "--prod-sources",
        action="store_true",
        help="validation pings name platform.altinn.no (default platform.tt02.altinn.no)",
    )
    p.add_argument(
        "--dev-client",
        type=Path,
        default=DEV_FOLDER,
        metavar="FOLDER",
        help=f"create/register the development client there (default {DEV_FOLDER})",
    )
    p.add_argument(
        "--client",
        nargs=2,
        action="append",
        default=[],
        metavar=("CLIENT_ID", "PUBLIC_KEY"),
        help="register another client: its id and a public key file (PEM or JWK with kid)",
    )
    p.add_argument("--kid", help="the kid of --client keys given as PEM")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    ping_base = "https://platform.altinn.no" if args.prod_sources else "https://platform.tt02.altinn.no"
    options = Options(args.bind, args.port, args.time_scale, args.delivery_timeout, args.allow_http_loopback, ping_base)
    sim = Simulator(options)
    client, settings = devclient.ensure(args.dev_client, sim.base_url)
    sim.register(client)
    for client_id, key_file in args.client:
        key, kid = _public_key(Path(key_file))
        if not (kid or args.kid):
            raise SystemExit(f"{key_file}: give --kid for a PEM key (a JWK carries its own)")
        sim.register(Client(client_id, str(kid or args.kid), key))
    signal.signal(signal.SIGTERM, _interrupt)
    sim.start()
    print(
        f"Altinn simulator (a fake, dev only) on {sim.base_url}; time scale {args.time_scale}; "
        f"dev client {settings['client_id']} in {args.dev_client}/",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
