"""A fake of Altinn's events API (the polling fallback), with the rules of Altinn/altinn-events' own code.

Route: ``GET /events/api/v1/events?resource=&after=&size=[&type=…][&subject=…]``. Rules (the check in
``devtools/checks/sim_rules.py`` holds each to its citation and to the line that enforces it):

- EV-AUTH: an Altinn token is required (401, empty body); without the scope ``altinn:events.subscribe`` the
  answer is 403 with an empty body. A Maskinporten token is not an Altinn token: 401.
  Altinn/altinn-events src/Events/Controllers/EventsController.cs (EventsController.Get)
  Altinn/altinn-events src/Events/Program.cs (POLICY_SCOPE_EVENTS_SUBSCRIBE)
- EV-BINDING: a missing ``resource`` and a ``size`` that is not an integer are model-binding errors: 400
  ``ValidationProblemDetails`` naming the field (``[FromQuery, Required] string resource``, ``int size``).
  Altinn/altinn-events src/Events/Controllers/EventsController.cs (EventsController.Get)
- EV-SIZE: ``size`` below 1 (or missing) becomes 50, and above 1000 becomes 1000.
  Altinn/altinn-events src/Events/Controllers/EventsController.cs (EventsController.Get)
- EV-RESOURCE: ``resource`` must begin with ``urn:altinn:resource:`` and ``after`` must be given and not
  empty: 400 problem with the controller's own ``detail``, checked in that order.
  Altinn/altinn-events src/Events/Controllers/EventsController.cs (EventsController.ValidateQueryParams)
- EV-AFTER: the events registered after the one with id ``after``, in registration order; an id the
  database does not know is sequence number 0, so the stream restarts from the oldest kept event.
  Altinn/altinn-events src/Events/Migration/FunctionsAndProcedures/getevents.sql (getevents_v2)
- EV-FILTERS: ``resource`` and ``subject`` match exactly; ``type`` is repeatable and matched with SQL
  ``LIKE ANY`` (``%`` and ``_`` are wildcards).
  Altinn/altinn-events src/Events/Migration/FunctionsAndProcedures/getevents.sql (getevents_v2)
- EV-HOLDBACK: an event registered less than 30 s ago is not returned yet (``registeredtime <= now() -
  interval '30 second'``, before the LIMIT). The simulator scales the 30 s by its time scale
  (:attr:`EventsApi.hold_back`); ``Options.events_hold_back`` says otherwise where a test needs it.
  Altinn/altinn-events src/Events/Migration/FunctionsAndProcedures/getevents.sql (getevents_v2)
- EV-LIMIT: the database reads ``size`` events; only then are those the caller may not see dropped (the PDP
  decides per event, action ``subscribe``). So a page holds fewer than ``size`` events in the middle of the
  stream, and a run of ``size`` invisible events is answered ``[]`` without ``next`` (the limit no client
  can see past). Which events are invisible: :attr:`EventsApi.invisible_share` and
  :attr:`EventsApi.invisible_ids` (none by default: the simulator's caller may see everything).
  Altinn/altinn-events src/Events/Services/EventsService.cs (EventsService.GetEvents)
  Altinn/altinn-events src/Events/Services/AuthorizationService.cs (AuthorizationService.AuthorizeEvents)
- EV-NEXT: on a non-empty page only, the ``next`` header: the configured base URL (``GeneralSettings.BaseUri``;
  here the simulator's own base unless :attr:`EventsApi.next_base` says otherwise) + the request path +
  ``?after=`` the id of the last event *returned* + every other query parameter as decoded, copied raw.
  Altinn/altinn-events src/Events/Controllers/EventsController.cs (EventsController.SetNextLink)
- EV-MEDIA: the answer is ``application/cloudevents+json``, a JSON array of structured CloudEvents.
  Altinn/altinn-events src/Events/Controllers/EventsController.cs (Produces)
  Altinn/altinn-events src/Events/Formatters/CloudEventJsonOutputFormatter.cs (WriteResponseBodyAsync)
- FAULT-SCRIPT: fault mode, not Altinn's behaviour: per resource, the next requests' answers in order, as
  (status, raw body), for outages and broken answers (:attr:`EventsApi.script`).
- FAULT-NEXT-BASE: fault mode: ``next`` built from another origin (:attr:`EventsApi.next_base`), so that the
  client's refusal of a foreign link can be shown. (The real base is configuration nobody outside sees.)
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

PATH: Final = "/events/api/v1/events"
DEFAULT_SIZE: Final = 50
MAX_SIZE: Final = 1000
RESOURCE_PREFIX: Final = "urn:altinn:resource:"
MEDIA_TYPE: Final = "application/cloudevents+json"
SUBSCRIBE_SCOPE: Final = "altinn:events.subscribe"
#: EV-HOLDBACK: seconds, before the simulator's time scale.
HOLD_BACK: Final = 30.0


class Refused(Exception):
    """A 4xx of the events API: its status, the problem's ``detail`` (None: an empty body) and ``errors``."""

    def __init__(self, status: int, detail: str | None, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail or str(status))
        self.status = status
        self.detail = detail
        self.errors = errors


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
class _Kept:
    event: dict[str, Any]
    registered: float


@dataclass
class EventsApi:
    """The events kept (registration order) and the polling API over them; thread-safe."""

    base_url: str
    #: FAULT-NEXT-BASE: ``GeneralSettings.BaseUri``; None = the simulator's own base URL.
    next_base: str | None = None
    #: EV-LIMIT: events the caller may not see, dropped after the LIMIT. A share in [0, 1] (stable per
    #: event id) and/or explicit ids.
    invisible_share: float = 0.0
    invisible_ids: set[str] = field(default_factory=set)
    #: EV-HOLDBACK: seconds an event stays unseen after it was registered (30 s times the time scale).
    hold_back: float = HOLD_BACK
    clock: Callable[[], float] = time.time
    #: FAULT-SCRIPT: per resource, the next requests' answers in order, as (status, raw body); ``None``
    #: answers normally.
    script: dict[str, list[tuple[int, bytes] | None]] = field(default_factory=dict)
    _kept: list[_Kept] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Requests answered, for tests and benchmarks.
    requests: int = 0

    def append(self, event: dict[str, Any], *, registered: float | None = None) -> None:
        """Register ``event`` now (or at the clock time ``registered``, for events kept since earlier)."""
        with self._lock:
            self._kept.append(_Kept(event, self.clock() if registered is None else registered))

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [k.event for k in self._kept]

    def visible(self, event: dict[str, Any]) -> bool:
        event_id = str(event.get("id"))
        if event_id in self.invisible_ids:
            return False
        if self.invisible_share <= 0:
            return True
        digest = hashlib.sha256(event_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 >= self.invisible_share

    def get(self, raw_path: str, caller: Callable[[], tuple[str, frozenset[str]]]) -> PageAnswer:
        """Answer ``GET raw_path`` (path and query as sent); raises :class:`Refused` for a 4xx.

        ``caller`` checks the Altinn token (raising the server's 401) and gives its consumer and scopes.
        """
        _, scopes = caller()
        if SUBSCRIBE_SCOPE not in scopes:  # EV-AUTH
            raise Refused(403, None)
        with self._lock:
            self.requests += 1
        parts = urlsplit(raw_path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        values: dict[str, list[str]] = {}
        for name, value in query:
            values.setdefault(name.lower(), []).append(value)  # ASP.NET binds query names case-insensitively
        resource = values["resource"][0] if values.get("resource") else None
        after = (values.get("after") or [""])[0]
        raw_size = (values.get("size") or ["0"])[0]
        if resource is None:  # EV-BINDING
            raise Refused(400, None, {"resource": ["The resource field is required."]})
        try:
            size = int(raw_size)
        except ValueError:  # EV-BINDING
            raise Refused(400, None, {"size": [f"The value '{raw_size}' is not valid."]}) from None
        size = DEFAULT_SIZE if size < 1 else min(size, MAX_SIZE)  # EV-SIZE
        if not resource.startswith(RESOURCE_PREFIX):  # EV-RESOURCE
            raise Refused(400, "The 'resource' parameter must begin with `urn:altinn:resource:`")
        if not after:  # EV-RESOURCE
            raise Refused(400, "The 'after' parameter must be defined.")
        with self._lock:
            scripted = self.script.get(resource)
            answer = scripted.pop(0) if scripted else None
        if answer is not None:  # FAULT-SCRIPT
            return PageAnswer([], {}, answer)
        subject = values["subject"][0] if values.get("subject") else None
        patterns = [_like(t) for t in values.get("type", [])]
        read = self._read(resource, after, subject, patterns, size)
        page = [event for event in read if self.visible(event)]  # EV-LIMIT: dropped after the LIMIT
        headers = {"Content-Type": MEDIA_TYPE}  # EV-MEDIA
        if page:  # EV-NEXT
            rest = "".join(f"&{name}={value}" for name, value in query if name != "after")
            base = self.next_base or self.base_url  # FAULT-NEXT-BASE when set
            headers["next"] = f"{base}{parts.path}?after={page[-1]['id']}{rest}"
        return PageAnswer(page, headers)

    def _read(
        self, resource: str, after: str, subject: str | None, types: list[re.Pattern[str]], size: int
    ) -> list[dict[str, Any]]:
        """``getevents_v2``: the first ``size`` matching events after ``after``."""
        with self._lock:
            kept = list(self._kept)
        start = next((i + 1 for i, k in enumerate(kept) if str(k.event.get("id")) == after), 0)  # EV-AFTER
        held_from = self.clock() - self.hold_back
        found = []
        for entry in kept[start:]:
            event = entry.event
            if event.get("resource") != resource:  # EV-FILTERS
                continue
            if subject is not None and event.get("subject") != subject:  # EV-FILTERS
                continue
            if types and not any(p.fullmatch(str(event.get("type", ""))) for p in types):  # EV-FILTERS
                continue
            if entry.registered > held_from:  # EV-HOLDBACK: in the WHERE clause, before the LIMIT
                continue
            found.append(event)
            if len(found) >= size:
                break
        return found


__all__ = ["HOLD_BACK", "MAX_SIZE", "PATH", "EventsApi", "PageAnswer", "Refused"]
