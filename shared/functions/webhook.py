"""HTTP adapter: ``POST /api/events`` (auth level FUNCTION: Altinn calls it with ``?code=<function key>``)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import azure.functions as func

from shared import settings
from shared.intake.plan import Policy, WebhookRequest, handle
from shared.stores import clients as storage

if TYPE_CHECKING:
    from shared.stores.sink import QueueSink

bp = func.Blueprint()

# Every method is bound so that the core answers a wrong one with a precise 405
# (and OPTIONS with the webhook handshake) instead of the host's bare 404.
_METHODS = ["POST", "OPTIONS", "GET", "PUT", "PATCH", "DELETE", "HEAD"]


@lru_cache(maxsize=1)
def _sink() -> QueueSink:
    from shared.stores.sink import QueueSink  # the storage SDKs load with the first event, not at indexing

    return QueueSink(storage.current())


@lru_cache(maxsize=1)
def _policy() -> Policy:
    return Policy.from_settings(settings.current())


def reset() -> None:
    """Forget the per-process clients and settings (tests point them at another Azurite)."""
    _sink.cache_clear()
    _policy.cache_clear()


@bp.function_name("webhook")
@bp.route(route="events", methods=_METHODS, auth_level=func.AuthLevel.FUNCTION)
def webhook(req: func.HttpRequest) -> func.HttpResponse:
    request = WebhookRequest(
        method=req.method,
        headers={k.lower(): v for k, v in req.headers.items()},
        body=req.get_body(),
        url=req.url.split("?", 1)[0],  # never echo the function key back
    )
    response = handle(request, _sink(), _policy())
    return func.HttpResponse(body=response.body, status_code=response.status, headers=response.headers)
