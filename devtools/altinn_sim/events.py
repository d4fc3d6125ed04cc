"""A fake of Altinn's events API (the polling fallback), with the rules of Altinn/altinn-events' own code.

Route: ``GET /events/api/v1/events?resource=&after=&size=[&type=…][&subject=…]``. Each rule names the file
(Altinn/altinn-events @d7232ac) whose behaviour it imitates:

- EV-SIZE: ``size`` below 1 becomes 50 and is capped at 1000 (``src/Events/Controllers/EventsController.cs``,
  ``Get``). A value that is not an integer is a model-binding 400.
- EV-RESOURCE: ``resource`` is required and must begin with ``urn:altinn:resource:``; ``after`` must be given
  and non-empty: 400 with a problem detail (``EventsController.ValidateQueryParams``).
- EV-AFTER: events after the one with id ``after``, in registration order; an id the database does not know
  restarts from the oldest kept event (``Migration/FunctionsAndProcedures/getevents.sql``, ``getevents_v2``:
  an unknown id gives sequence number 0).
- EV-FILTERS: ``type`` is repeatable and matched with SQL ``LIKE`` (``%`` and ``_`` wildcards), ``subject``
  exactly (``getevents_v2``).
- EV-LIMIT: the database reads ``size`` events; only then does ``EventsService.GetEvents`` drop those the
  caller may not see (``Services/EventsService.cs`` calling ``AuthorizationService.AuthorizeEvents``). So a
  page holds fewer than ``size`` events in the middle of the stream whenever some are invisible
  (:attr:`EventsApi.invisible`: a share of events, or a set of ids). The end of the stream is an empty page.
- EV-NEXT: on every non-empty page, ``next`` = the configured base URL (``GeneralSettings.BaseUri``; the
  simulator's own base unless :attr:`EventsApi.next_base` says otherwise, e.g. Altinn's default
  ``http://localhost:5080`` from ``src/Events/appsettings.json``) + the request path + ``?after=`` the id of
  the last event *returned* + every other query parameter as the request had it, decoded and copied raw
  (``EventsController.SetNextLink``). No ``next`` on an empty page.
- EV-MEDIA: the answer is ``application/cloudevents+json`` (``[Produces("application/cloudevents+json")]``).
- EV-AUTH: an Altinn token with scope ``altinn:events.subscribe`` (``POLICY_SCOPE_EVENTS_SUBSCRIBE``); the
  server's token check is :meth:`devtools.altinn_sim.tokens.TokenService.altinn_claims`.

Not imitated yet: events registered less than 30 s ago are held back (``getevents_v2``); the simulator
returns them at once.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

PATH: Final = "/events/api/v1/events"
DEFAULT_SIZE: Final = 50
MAX_SIZE: Final = 1000
RESOURCE_PREFIX: Final = "urn:altinn:resource:"
MEDIA_TYPE: Final = "application/cloudevents+json"


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class PageAnswer:
    events: list[dict[str, Any]]
    headers: dict[str, str]
    #: A scripted answer (fault mode) replaces the page: status and raw body.
    scripted: tuple[int, bytes] | None = None


def _like(pattern: str) -> re.Pattern[str]:
    """SQL ``LIKE``: ``%`` any run, ``_`` one character, everything else literal."""
    parts = (".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


@dataclass
class EventsApi:
    """The events kept (registration order) and the polling API over them; thread-safe."""

    base_url: str
    #: EV-NEXT: ``GeneralSettings.BaseUri``; None = the simulator's own base URL.
    next_base: str | None = None
    #: EV-LIMIT: events the caller may not see, dropped after the LIMIT. A share in [0, 1] (stable per
    #: event id) and/or explicit ids.
    invisible_share: float = 0.0
    invisible_ids: set[str] = field(default_factory=set)
    #: Fault mode (not Altinn's behaviour): per resource, the next requests' answers in order, as
    #: (status, raw body); ``None`` answers normally. For outages and broken answers in tests.
    script: dict[str, list[tuple[int, bytes] | None]] = field(default_factory=dict)
    _events: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Requests answered, for tests and benchmarks.
    requests: int = 0

    def append(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._events.append(event)

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def visible(self, event: dict[str, Any]) -> bool:
        event_id = str(event.get("id"))
        if event_id in self.invisible_ids:
            return False
        if self.invisible_share <= 0:
            return True
        digest = hashlib.sha256(event_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 >= self.invisible_share

    def get(self, raw_path: str, authorize: Callable[[], object]) -> PageAnswer:
        """Answer ``GET raw_path`` (path and query as sent); raises :class:`Refused` for a 4xx."""
        authorize()  # EV-AUTH
        with self._lock:
            self.requests += 1
        parts = urlsplit(raw_path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        values: dict[str, list[str]] = {}
        for name, value in query:
            values.setdefault(name, []).append(value)
        resource = values["resource"][0] if values.get("resource") else None
        after = (values.get("after") or [""])[0]
        raw_size = (values.get("size") or ["0"])[0]
        if resource is None:
            raise Refused(400, "The resource field is required.")  # [Required] model binding
        try:
            size = int(raw_size)
        except ValueError:
            raise Refused(400, f"The value '{raw_size}' is not valid.") from None  # model binding of int
        size = DEFAULT_SIZE if size < 1 else min(size, MAX_SIZE)  # EV-SIZE
        if not resource.startswith(RESOURCE_PREFIX):  # EV-RESOURCE
            raise Refused(400, "The 'resource' parameter must begin with `urn:altinn:resource:`")
        if not after:
            raise Refused(400, "The 'after' parameter must be defined.")
        with self._lock:
            scripted = self.script.get(resource)
            answer = scripted.pop(0) if scripted else None
        if answer is not None:
            return PageAnswer([], {}, answer)
        subject = values["subject"][0] if values.get("subject") else None
        patterns = [_like(t) for t in values.get("type", [])]
        read = self._read(resource, after, subject, patterns, size)
        page = [event for event in read if self.visible(event)]  # EV-LIMIT: dropped after the LIMIT
        headers = {"Content-Type": MEDIA_TYPE}  # EV-MEDIA
        if page:  # EV-NEXT
            rest = "".join(f"&{name}={value}" for name, value in query if name != "after")
            headers["next"] = f"{self.next_base or self.base_url}{parts.path}?after={page[-1]['id']}{rest}"
        return PageAnswer(page, headers)

    def _read(
        self, resource: str, after: str, subject: str | None, types: list[re.Pattern[str]], size: int
    ) -> list[dict[str, Any]]:
        """``getevents_v2``: the first ``size`` matching events after ``after`` (EV-AFTER, EV-FILTERS)."""
        with self._lock:
            events = list(self._events)
        start = next((i + 1 for i, e in enumerate(events) if str(e.get("id")) == after), 0)
        found = []
        for event in events[start:]:
            if event.get("resource") != resource:
                continue
            if subject is not None and event.get("subject") != subject:
                continue
            if types and not any(p.fullmatch(str(event.get("type", ""))) for p in types):
                continue
            found.append(event)
            if len(found) >= size:
                break
        return found


__all__ = ["MAX_SIZE", "PATH", "EventsApi", "PageAnswer", "Refused"]
