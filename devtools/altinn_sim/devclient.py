"""A development Maskinporten client for the simulator: a key pair and the settings the CLI reads.

``python -m devtools.altinn_sim`` (and ``make run ARGS=--altinn-sim``) writes these to ``.altinn-sim/``
and registers the public key, so that ``dpctl --env local auth`` works with nothing to configure.
Against TT02 you register your own key at Maskinporten instead (``dpctl auth keygen``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.altinn_sim.tokens import Client
from shared.altinn.maskinporten import SigningKey, parse_key

CLIENT_ID: Final = "altinn-sim-dev-client"
KID: Final = "altinn-sim-dev-key"
SCOPE: Final = "altinn:events.subscribe altinn:serviceowner"
CLIENT_FILE: Final = "client.json"
#: Where the simulator writes the dev client and the CLI reads it (tests point it elsewhere).
HOME_VAR: Final = "ALTINN_SIM_HOME"


def home(root: Path) -> Path:
    return Path(os.environ.get(HOME_VAR) or root / ".altinn-sim")


def write_key(path: Path) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)
    return parse_key(pem.decode("ascii"), KID)


def ensure(folder: Path, sim_url: str) -> tuple[Client, dict[str, Any]]:
    """The dev client in ``folder`` (created on first use, then kept), pointed at ``sim_url``."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "client-key.pem"
    key = parse_key(key_file.read_text(encoding="utf-8"), KID) if key_file.exists() else write_key(key_file)
    settings = {
        "client_id": CLIENT_ID,
        "kid": KID,
        "key_file": str(key_file.resolve()),
        "scope": SCOPE,
        "sim_url": sim_url,
    }
    (folder / CLIENT_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return Client(CLIENT_ID, KID, key.key.public_key()), settings
