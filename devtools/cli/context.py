"""What every command shares: the target environment, settings, storage and the token providers.

Settings are read like the local runner reads them: the ``Values`` of ``local.settings.json`` go into
the environment unless a variable is already set. Storage is ``AzureWebJobsStorage`` (Azurite locally)
or, with ``--account NAME``, the account's endpoints with your own ``az login``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Final

from devtools.cli.output import fail
from devtools.runner.config import ConfigError, load_local_settings
from shared import settings
from shared.altinn import maskinporten
from shared.altinn.maskinporten import AltinnExchange, AuthError, Environment, MaskinportenClient
from shared.errors import SettingsError
from shared.stores.clients import StorageClients

ROOT: Final = Path(__file__).resolve().parent.parent.parent
DEFAULT_SIM_URL: Final = "http://127.0.0.1:7072"
DEFAULT_SCOPE: Final = "altinn:events.subscribe altinn:serviceowner"

#: Environment variables of the CLI (not app settings: the app does not read them).
CLIENT_ID_VAR: Final = "MASKINPORTEN_CLIENT_ID"
KID_VAR: Final = "MASKINPORTEN_KID"
KEY_FILE_VAR: Final = "MASKINPORTEN_KEY_FILE"
KEY_VAR: Final = "MASKINPORTEN_KEY"
SCOPE_VAR: Final = "MASKINPORTEN_SCOPE"


class Env(StrEnum):
    LOCAL = "local"
    TT02 = "tt02"
    PROD = "prod"


@dataclass(frozen=True)
class Credentials:
    client_id: str | None = None
    kid: str | None = None
    key_file: str | None = None
    scope: str | None = None


class _OperatorClients(StorageClients):
    """Storage with the operator's own Entra ID sign-in (``az login``) instead of the app's managed identity."""

    @cached_property
    def _credential(self) -> Any:
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()


@dataclass
class Context:
    env: Env = Env.LOCAL
    account: str | None = None
    sim_url: str | None = None
    settings_file: Path = ROOT / "local.settings.json"
    credentials: Credentials = field(default_factory=Credentials)
    _exchange: AltinnExchange | None = field(default=None, repr=False)

    def load_settings(self) -> None:
        try:
            load_local_settings(self.settings_file, os.environ)
        except ConfigError as exc:
            fail(str(exc))

    # --- Altinn -----------------------------------------------------------------------------------

    def _sim_client(self) -> dict[str, Any]:
        from devtools.altinn_sim import devclient

        path = devclient.home(ROOT) / devclient.CLIENT_FILE
        if self.env is Env.LOCAL and path.exists():
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return loaded
        return {}

    @property
    def environment(self) -> Environment:
        if self.env is Env.TT02:
            return maskinporten.TT02
        if self.env is Env.PROD:
            return maskinporten.PROD
        url = self.sim_url or os.environ.get("ALTINN_SIM_URL") or self._sim_client().get("sim_url") or DEFAULT_SIM_URL
        return maskinporten.simulated(str(url))

    @property
    def platform(self) -> str:
        return self.environment.platform

    def maskinporten(self, scope: str | None = None) -> MaskinportenClient:
        creds = self.credentials
        given = {
            "client_id": creds.client_id or os.environ.get(CLIENT_ID_VAR),
            "kid": creds.kid or os.environ.get(KID_VAR),
            "key_file": creds.key_file or os.environ.get(KEY_FILE_VAR),
            "scope": creds.scope or os.environ.get(SCOPE_VAR),
        }
        # The simulator's development client only when no credential was given at all: mixing its
        # kid or key with a client of yours would sign a grant Maskinporten cannot match.
        mine = any(given.values()) or bool(os.environ.get(KEY_VAR))
        dev = {} if mine else self._sim_client()
        client_id = given["client_id"] or dev.get("client_id")
        kid = given["kid"] or dev.get("kid")
        key_file = given["key_file"] or dev.get("key_file")
        scope = scope or given["scope"] or dev.get("scope") or DEFAULT_SCOPE
        if not client_id:
            where = "start the simulator (make run ARGS=--altinn-sim) or " if self.env is Env.LOCAL else ""
            fail(
                f"no Maskinporten client: {where}pass --client-id or set {CLIENT_ID_VAR}",
                hint=f"also needed: --key-file or {KEY_FILE_VAR} (or the PEM/JWK text in {KEY_VAR}), and --kid "
                f"or {KID_VAR} unless the JWK carries one",
            )
        try:
            key = maskinporten.load_key(file=key_file, env_var=KEY_VAR, kid=kid)
            return MaskinportenClient(str(client_id), key, scope, self.environment)
        except AuthError as exc:
            fail(str(exc))

    def altinn(self) -> AltinnExchange:
        if self._exchange is None:
            self._exchange = AltinnExchange(self.maskinporten())
        return self._exchange

    # --- storage ------------------------------------------------------------------------------------

    @cached_property
    def app_settings(self) -> settings.Settings:
        """The app's settings as the webhook would see them (storage, allow-lists)."""
        env = dict(os.environ)
        if self.account:
            base = f"https://{self.account}"
            env.pop(settings.STORAGE_CONNECTION, None)
            for service in ("queue", "blob", "table"):
                env[f"{settings.STORAGE_CONNECTION}__{service}ServiceUri"] = f"{base}.{service}.core.windows.net"
        try:
            return settings.load(env)
        except SettingsError as exc:
            fail(f"{exc}; or pass --account NAME to use an Azure storage account with your az login")

    @cached_property
    def storage(self) -> StorageClients:
        if self.account:
            return _OperatorClients(self.app_settings)
        return StorageClients(self.app_settings)
