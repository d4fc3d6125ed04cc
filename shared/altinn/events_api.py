"""Altinn's events API, the polling fallback: one page of a resource's events at a time.

``GET {platform}/events/api/v1/events?resource=…&after=…&size=…[&type=…]`` with an Altinn token (the
Maskinporten token exchanged; scope ``altinn:events.subscribe``). As Altinn/altinn-events answers it:

- ``resource`` must begin with ``urn:altinn:resource:`` and ``after`` must be given, else 400; ``size``
  below 1 becomes 50 and is capped at 1000 (``src/Events/Controllers/EventsController.cs``, ``Get`` and
  ``ValidateQueryParams``). ``after=0`` reads from the oldest kept event (90 days), and so does an ``after``
  the database does not know (``Migration/FunctionsAndProcedures/getevents.sql``, ``getevents_v2``).
- **A short page is not the last page.** ``EventsService.GetEvents`` reads ``size`` events and only then
  drops those the caller may not see (``AuthorizationService.AuthorizeEvents``). The end of the stream is
  an empty page.
- ``next`` is set on every non-empty page (``EventsController.SetNextLink``): the server's configured
  ``GeneralSettings.BaseUri`` (default ``http://localhost:5080`` in ``appsettings.json``), the request path,
  ``after=`` the id of the last event *returned*, and the other query values copied raw, unencoded. The link
  is checked here: it must have the request's scheme, host, port and path (:func:`~shared.altinn.http.same_endpoint`),
  or the caller is told it is foreign and stops. The next request is built here from the last returned id,
  encoded, which is what the link says without the raw copying.
- Events registered less than 30 s ago are not returned yet (``getevents_v2``), so the stream's end lags
  the live edge by that much; the webhook's push covers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from shared.altinn.http import HttpClient, Transport, same_endpoint
from shared.altinn.maskinporten import AuthError, TokenSource
from shared.errors import EventsApiError, InvalidJson, InvalidValue, OutboundError

__all__ = [
    "EVENTS_PATH",
    "MAX_SIZE",
    "RESOURCE_PREFIX",
    "EventsApi",
    "EventsApiError",
    "Page",
    "check_resource",
]

EVENTS_PATH: Final = "/events/api/v1/events"
MAX_SIZE: Final = 1000
RESOURCE_PREFIX: Final = "urn:altinn:resource:"
#: A full page of 1000 Dialogporten events is about 0.7 MB; a tenfold margin and then some.
MAX_PAGE_BYTES: Final = 16 * 1024 * 1024
#: One page request, connect to last byte.
REQUEST_TIMEOUT: Final = 60.0


def check_resource(resource: str) -> str:
    """``resource`` if the events API would take it (``EventsController.ValidateQueryParams``), else ValueError."""
    if not resource.startswith(RESOURCE_PREFIX) or len(resource) == len(RESOURCE_PREFIX):
        raise InvalidValue(f"a resource is {RESOURCE_PREFIX}<id>, got {resource[:120]!r}")
    return resource


@dataclass(frozen=True, slots=True)
class Page:
    events: list[Any]
    """The events as Altinn sent them (parsed, not yet validated); empty at the end of the stream."""
    url: str
    """The request, for messages (it carries no secret)."""
    foreign_next: str | None = None
    """A ``next`` link to another scheme, host, port or path: not followed, and reading should stop."""


class EventsApi:
    """Reads pages of a resource's events; one client (and HTTP session) per process or command."""

    def __init__(
        self,
        platform: str,
        tokens: TokenSource,
        *,
        transport: Transport | None = None,
        size: int = MAX_SIZE,
        types: Sequence[str] = (),
    ) -> None:
        if not 1 <= size <= MAX_SIZE:
            raise InvalidValue(f"size must be 1..{MAX_SIZE}, got {size}")
        self.platform = platform.rstrip("/")
        self.tokens = tokens
        self.size = size
        self.types = tuple(types)
        self._transport: Transport = transport or HttpClient(pool_size=2)
        #: Requests sent to the events API (token requests not included).
        self.requests = 0

    def url(self, resource: str, after: str) -> str:
        params = [("resource", resource), ("after", after), ("size", str(self.size))]
        params += [("type", t) for t in self.types]
        return f"{self.platform}{EVENTS_PATH}?{urlencode(params)}"

    def page(self, resource: str, after: str) -> Page:
        """The events after ``after`` (an event id, or ``0``). Raises :class:`EventsApiError`."""
        check_resource(resource)
        url = self.url(resource, after)
        refreshed = False
        while True:
            try:
                token = self.tokens.token()
            except AuthError as exc:
                raise EventsApiError(f"no Altinn token: {exc}") from exc
            try:
                response = self._transport(
                    "GET",
                    url,
                    headers={"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"},
                    body=None,
                    timeout=REQUEST_TIMEOUT,
                    max_bytes=MAX_PAGE_BYTES,
                )
            except OutboundError as exc:
                raise EventsApiError(str(exc)) from exc
            finally:
                self.requests += 1
            if response.status == 401 and not refreshed:
                refreshed = True  # an Altinn token revoked early: one fresh token, one more try
                self.tokens.invalidate()
                continue
            break
        if response.status != 200:
            text = response.body[:300].decode("utf-8", "replace").strip()
            raise EventsApiError(f"GET {url}: {response.status} {text}".rstrip())
        from shared.events.jsonformat import parse_json

        try:
            events = parse_json(response.body, "events page")
        except InvalidJson as exc:
            raise EventsApiError(f"GET {url}: 200, but {exc.detail}") from None
        if not isinstance(events, list):
            raise EventsApiError(f"GET {url}: 200, but the answer is a JSON {type(events).__name__}, not an array")
        link = response.header("next")
        foreign = link if events and link is not None and not same_endpoint(link, url) else None
        return Page(events, url, foreign)
