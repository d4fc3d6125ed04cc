"""The process's Maskinporten-backed clients, built once from the settings: Dialogporten and the Events API.

One :class:`~shared.altinn.maskinporten.MaskinportenClient` per scope, shared by every worker thread of the
process (cached, one refresh at a time): ``digdir:dialogporten.serviceprovider`` for Dialogporten
(the token is used directly) and ``altinn:events.subscribe`` for the events API (exchanged for an
Altinn token, which that API requires). Nothing is built unless ``MASKINPORTEN_CLIENT_ID`` is set:
with no Maskinporten settings the app runs exactly as without this module.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from shared.altinn import maskinporten as mp
from shared.errors import TokenRefused
from shared.settings import MaskinportenSettings

if TYPE_CHECKING:
    from shared.altinn.dialogporten import DialogportenClient
    from shared.altinn.events_api import EventsApi

EVENTS_SCOPE: Final = "altinn:events.subscribe"
#: lru_cache does not hold other callers while it builds: without this lock the workers of a cold
#: instance would each build their own token provider and each fetch a token.
_BUILDING: Final = threading.RLock()


def environment(cfg: MaskinportenSettings) -> mp.Environment:
    """``tt02``, ``prod``, or the local simulator at a URL (dev only)."""
    if cfg.environment == "prod":
        return mp.PROD
    if cfg.environment == "tt02":
        return mp.TT02
    return mp.simulated(cfg.environment)


def dialogporten_base(cfg: MaskinportenSettings) -> str:
    """``https://platform.{tt02.}altinn.no/dialogporten`` (DP ``appsettings.{staging,prod}.json``)."""
    return environment(cfg).platform.rstrip("/") + "/dialogporten"


@lru_cache(maxsize=8)
def _key(cfg: MaskinportenSettings) -> mp.SigningKey:
    return mp.parse_key(cfg.private_key, cfg.kid or None)


def maskinporten(cfg: MaskinportenSettings, scope: str) -> mp.MaskinportenClient:
    """The process-wide token provider of ``scope`` (raises :class:`~shared.errors.AuthError` on a bad key)."""
    if not cfg.enabled:
        raise TokenRefused(f"Maskinporten is not configured: set {cfg.missing}")
    with _BUILDING:
        return _maskinporten(cfg, scope)


@lru_cache(maxsize=8)
def _maskinporten(cfg: MaskinportenSettings, scope: str) -> mp.MaskinportenClient:
    return mp.MaskinportenClient(cfg.client_id, _key(cfg), scope, environment(cfg))


def dialogporten(cfg: MaskinportenSettings) -> DialogportenClient:
    """The process-wide Dialogporten client, built once even when many workers ask at once."""
    with _BUILDING:
        return _dialogporten(cfg)


@lru_cache(maxsize=8)
def _dialogporten(cfg: MaskinportenSettings) -> DialogportenClient:
    from shared.altinn.dialogporten import SCOPE, DialogportenClient

    return DialogportenClient(dialogporten_base(cfg), maskinporten(cfg, SCOPE))


def events_tokens(cfg: MaskinportenSettings) -> mp.AltinnExchange:
    with _BUILDING:
        return _events_tokens(cfg)


@lru_cache(maxsize=8)
def _events_tokens(cfg: MaskinportenSettings) -> mp.AltinnExchange:
    return mp.AltinnExchange(maskinporten(cfg, EVENTS_SCOPE))


def events_api(cfg: MaskinportenSettings) -> EventsApi:
    """The process-wide reader of Altinn's events API (catch-up), with its exchanged Altinn tokens."""
    with _BUILDING:
        return _events_api(cfg)


@lru_cache(maxsize=8)
def _events_api(cfg: MaskinportenSettings) -> EventsApi:
    from shared.altinn.events_api import EventsApi

    return EventsApi(environment(cfg).platform, events_tokens(cfg))
