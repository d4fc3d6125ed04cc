"""App settings: every environment variable the code reads is declared here.

The declarations are the contract with ``infra/`` (a test checks that Bicep
sets every setting without a safe default and no setting the code does not
read) and with ``local.settings.json``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from shared.errors import SettingsError


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: str | None
    """``None`` means: no safe default; the deployment must set it (or its alternative)."""
    description: str


STORAGE_CONNECTION: Final = "AzureWebJobsStorage"
#: The old name of RETRY_LATER_MAX_WAIT_SECONDS, still read for one release.
DEPRECATED_MAX_WAIT: Final = "DIALOG_NOT_VISIBLE_MAX_WAIT_SECONDS"

#: Everything the app reads. ``AzureWebJobsStorage`` is the connection string
#: (Azurite locally); in Azure the identity-based ``AzureWebJobsStorage__*``
#: family is used instead, exactly as the Functions host reads it.
DECLARED: Final[tuple[Setting, ...]] = (
    Setting(STORAGE_CONNECTION, None, "Storage connection string (local/Azurite). In Azure use the __* form."),
    Setting(f"{STORAGE_CONNECTION}__queueServiceUri", None, "Queue endpoint, identity-based connection."),
    Setting(f"{STORAGE_CONNECTION}__blobServiceUri", None, "Blob endpoint, identity-based connection."),
    Setting(f"{STORAGE_CONNECTION}__tableServiceUri", None, "Table endpoint, identity-based connection."),
    Setting(f"{STORAGE_CONNECTION}__credential", None, "'managedidentity' for identity-based connections."),
    Setting(f"{STORAGE_CONNECTION}__clientId", None, "Client id of the user-assigned managed identity."),
    Setting("ALLOWED_RESOURCES", "", "Comma-separated resource URNs accepted; empty = all."),
    Setting("ALLOWED_SOURCE_HOSTS", "", "Comma-separated source hosts accepted, e.g. platform.altinn.no; empty = all."),
    Setting("IDEMPOTENCY_RETENTION_SECONDS", "604800", "How long a completed event id is remembered (7 days)."),
    Setting("IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS", "600", "After this, an in-progress claim of a dead worker expires."),
    Setting(
        "MAX_CLOCK_SKEW_SECONDS",
        "300",
        "The webhook refuses (400) an event whose `time` is further ahead of its clock than this.",
    ),
    Setting(
        "ALTINN_ENVIRONMENT",
        "tt02",
        "`tt02` or `prod`: the Maskinporten, Dialogporten and Events bases (an http(s) URL: the local simulator).",
    ),
    Setting("MASKINPORTEN_CLIENT_ID", "", "Maskinporten client id; empty = no enrichment and no automatic catch-up."),
    Setting("MASKINPORTEN_KID", "", "The `kid` the client's key is registered under (a JWK may carry its own)."),
    Setting(
        "MASKINPORTEN_KEY",
        "",
        "The client's private key, PEM or JWK. In Azure a Key Vault reference (Bicep `maskinportenKeySecretName`).",
    ),
    Setting(
        "RETRY_LATER_MAX_WAIT_SECONDS",
        "604800",
        "A message a handler puts back with RetryLater (no attempt spent) waits at most this long after the "
        "event's time; past it, RetryLater counts as an ordinary attempt.",
    ),
    Setting(
        DEPRECATED_MAX_WAIT,
        "",
        "Deprecated alias of RETRY_LATER_MAX_WAIT_SECONDS, read when that is not set (removed in the next release).",
    ),
    Setting(
        "CATCHUP_RESOURCES",
        "",
        "Comma-separated resource URNs the catch-up timer polls Altinn's events API for; empty = no catch-up.",
    ),
    Setting(
        "CATCHUP_INITIAL_LOOKBACK_SECONDS",
        "172800",
        "The first catch-up of a resource queues only events younger than this (Altinn keeps 90 days).",
    ),
)
DECLARED_NAMES: Final = frozenset(s.name for s in DECLARED)


def _csv(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _positive_int(env: Mapping[str, str], name: str) -> int:
    raw = _get(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number of seconds, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


def _get(env: Mapping[str, str], name: str) -> str:
    for setting in DECLARED:
        if setting.name == name:
            value = env.get(name)
            if value is None:
                return setting.default or ""
            return value
    raise KeyError(f"{name} is not a declared setting")  # a programming error, caught by tests


@dataclass(frozen=True, slots=True)
class StorageSettings:
    connection_string: str | None
    queue_service_uri: str | None
    blob_service_uri: str | None
    table_service_uri: str | None
    client_id: str | None


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    """What the webhook (and catch-up) accept: the optional allow-lists (empty: everything) and the clock skew."""

    allowed_resources: frozenset[str] = frozenset()
    allowed_source_hosts: frozenset[str] = frozenset()
    max_clock_skew_seconds: int = 300


@dataclass(frozen=True, slots=True)
class IdempotencySettings:
    """The claims of handlers with outside effects: how long a completed event is remembered, when a claim expires."""

    retention_seconds: int = 604800
    claim_timeout_seconds: int = 600


@dataclass(frozen=True, slots=True)
class ProcessingSettings:
    """How a queue message is handled beyond host.json: the longest a RetryLater put-back may wait in all."""

    retry_later_max_wait_seconds: int = 604800


@dataclass(frozen=True, slots=True)
class MaskinportenSettings:
    """The Maskinporten client for Dialogporten (enrichment) and the Events API (catch-up); off when empty."""

    environment: str = "tt02"
    client_id: str = ""
    kid: str = ""
    private_key: str = field(default="", repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.client_id and self.private_key)

    @property
    def missing(self) -> str:
        """What is missing for Maskinporten, as the settings' names (empty when configured)."""
        names = [
            n for n, v in (("MASKINPORTEN_CLIENT_ID", self.client_id), ("MASKINPORTEN_KEY", self.private_key)) if not v
        ]
        return " and ".join(names)


@dataclass(frozen=True, slots=True)
class CatchUpSettings:
    """The catch-up timer: which resources it polls, and how far back a resource's first catch-up reaches."""

    resources: tuple[str, ...] = ()
    initial_lookback_seconds: int = 172800


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, one object per concern."""

    storage: StorageSettings
    intake: IntakeSettings = IntakeSettings()
    idempotency: IdempotencySettings = IdempotencySettings()
    processing: ProcessingSettings = ProcessingSettings()
    maskinporten: MaskinportenSettings = MaskinportenSettings()
    catchup: CatchUpSettings = CatchUpSettings()


def _maskinporten(env: Mapping[str, str]) -> MaskinportenSettings:
    environment = _get(env, "ALTINN_ENVIRONMENT").strip() or "tt02"
    if environment not in {"tt02", "prod"} and not environment.startswith(("http://", "https://")):
        raise SettingsError(f"ALTINN_ENVIRONMENT must be tt02, prod or a simulator URL, got {environment[:60]!r}")
    # Not refused here when half set: these names are also the operator CLI's (which may take its key
    # from MASKINPORTEN_KEY_FILE), and the webhook must run whatever they hold. A handler that fetches
    # a dialog, or the catch-up timer, says what is missing instead.
    return MaskinportenSettings(
        environment=environment,
        client_id=_get(env, "MASKINPORTEN_CLIENT_ID").strip(),
        kid=_get(env, "MASKINPORTEN_KID").strip(),
        private_key=_get(env, "MASKINPORTEN_KEY").strip(),
    )


def _retry_later_max_wait(env: Mapping[str, str]) -> int:
    """RETRY_LATER_MAX_WAIT_SECONDS, or its deprecated alias when only that is set."""
    if env.get("RETRY_LATER_MAX_WAIT_SECONDS") is None and env.get(DEPRECATED_MAX_WAIT):
        logging.getLogger("dialogporten").warning(
            "%s is deprecated and read for one more release: set RETRY_LATER_MAX_WAIT_SECONDS", DEPRECATED_MAX_WAIT
        )
        return _positive_int(env, DEPRECATED_MAX_WAIT)
    return _positive_int(env, "RETRY_LATER_MAX_WAIT_SECONDS")


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    prefix = STORAGE_CONNECTION + "__"
    storage = StorageSettings(
        connection_string=env.get(STORAGE_CONNECTION) or None,
        queue_service_uri=env.get(prefix + "queueServiceUri") or None,
        blob_service_uri=env.get(prefix + "blobServiceUri") or None,
        table_service_uri=env.get(prefix + "tableServiceUri") or None,
        client_id=env.get(prefix + "clientId") or None,
    )
    if storage.connection_string is None and storage.queue_service_uri is None:
        raise SettingsError(
            f"No storage configured: set {STORAGE_CONNECTION} (a connection string; "
            f"'UseDevelopmentStorage=true' for Azurite) or {prefix}queueServiceUri with "
            f"{prefix}credential=managedidentity"
        )
    return Settings(
        storage=storage,
        intake=IntakeSettings(
            allowed_resources=_csv(_get(env, "ALLOWED_RESOURCES")),
            allowed_source_hosts=frozenset(h.lower() for h in _csv(_get(env, "ALLOWED_SOURCE_HOSTS"))),
            max_clock_skew_seconds=_positive_int(env, "MAX_CLOCK_SKEW_SECONDS"),
        ),
        idempotency=IdempotencySettings(
            retention_seconds=_positive_int(env, "IDEMPOTENCY_RETENTION_SECONDS"),
            claim_timeout_seconds=_positive_int(env, "IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS"),
        ),
        processing=ProcessingSettings(retry_later_max_wait_seconds=_retry_later_max_wait(env)),
        maskinporten=_maskinporten(env),
        catchup=CatchUpSettings(
            resources=tuple(sorted(_csv(_get(env, "CATCHUP_RESOURCES")))),
            initial_lookback_seconds=_positive_int(env, "CATCHUP_INITIAL_LOOKBACK_SECONDS"),
        ),
    )


@lru_cache(maxsize=1)
def current() -> Settings:
    """The process's settings, read once (clients and allow-lists are per process)."""
    return load()
