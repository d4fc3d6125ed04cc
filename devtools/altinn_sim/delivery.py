"""The simulator's fake Altinn Events push delivery: validation ping, one POST per event, retries, dead letters.

Rules:

- DLV-PING: on every create (an identical one too), Altinn POSTs a CloudEvent with only ``id`` (a new uuid),
  ``source`` (``<events API>/subscriptions/{id}``), ``type`` ``platform.events.validatesubscription`` and
  ``specversion``; any 2xx sets ``validated=true``.
  Altinn/altinn-events src/Events/Services/SubscriptionService.cs (SubscriptionService.CreateValidateEvent)
  Altinn/altinn-events src/Events/Services/SubscriptionService.cs (SubscriptionService.SendAndValidate)
- DLV-PING-RETRY: a failed ping is retried after 1, 5 and 10 s, then 30 s, 1 min and 2 min three times.
  Altinn/altinn-events src/Events/appsettings.json (ValidationQueuePolicy)
- DLV-POST: each event is a plain POST of the CloudEvent's JSON, ``Content-Type: application/json;
  charset=utf-8``, no signature and no auth header; success is any 2xx (``IsSuccessStatusCode``).
  Altinn/altinn-events src/Events/Services/WebhookService.cs (WebhookService.Send)
- DLV-TIMEOUT: 45 s per request.
  Altinn/altinn-events src/Events/appsettings.json (RequestTimeout)
- DLV-RETRY: 12 attempts: retries after 10 s, then 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, 12 h and
  12 h; then the event is dead-lettered.
  Altinn/altinn-events src/Events/appsettings.json (OutboundQueuePolicy)
- DLV-VALIDATED: events are pushed only to validated subscriptions.
  Altinn/altinn-events src/Events/Migration/FunctionsAndProcedures/getsubscriptions.sql (s.validated)
- DLV-AUTHORIZED: and only to consumers the PDP permits the event (action ``subscribe``): the same decision as
  the events API's (EV-LIMIT), so an event the caller may not poll is not pushed to it either.
  Altinn/altinn-events src/Events/Services/OutboundService.cs (OutboundService.AuthorizeAndPush)

``time_scale`` multiplies every delay (0.001 turns the day and a half into about two minutes) so that
tests finish in seconds; the order and count of attempts are unchanged.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from devtools.altinn_sim.subscriptions import Subscription, SubscriptionStore

#: The delays before attempts 2..12 (DLV-RETRY).
RETRY_DELAYS: Final = (10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 12 * 3600)
MAX_ATTEMPTS: Final = len(RETRY_DELAYS) + 1
#: The delays before the ping's attempts 2..9 (DLV-PING-RETRY).
PING_DELAYS: Final = (1, 5, 10, 30, 60, 120, 120, 120)
DELIVERY_TIMEOUT: Final = 45.0  # DLV-TIMEOUT
VALIDATION_TYPE: Final = "platform.events.validatesubscription"


@dataclass
class Attempt:
    subscription_id: int
    event_id: str
    event_type: str
    attempt: int
    status: int | None
    error: str | None
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriptionId": self.subscription_id,
            "eventId": self.event_id,
            "type": self.event_type,
            "attempt": self.attempt,
            "status": self.status,
            "error": self.error,
            "at": self.at,
        }


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    subscription_id: int = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    attempt: int = field(compare=False, default=1)
    ping: bool = field(compare=False, default=False)


def post_json(url: str, body: bytes, timeout: float) -> int:
    """One POST, ``Content-Type: application/json; charset=utf-8`` and nothing else; the status, or ``OSError``."""
    headers = {"Content-Type": "application/json; charset=utf-8"}  # DLV-POST
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class Deliverer:
    """A scheduler of deliveries: a heap of due jobs served by a few threads."""

    def __init__(
        self,
        subscriptions: SubscriptionStore,
        *,
        time_scale: float = 1.0,
        timeout: float = DELIVERY_TIMEOUT,
        workers: int = 4,
        ping_source_base: str = "https://platform.tt02.altinn.no",
        post: Callable[[str, bytes, float], int] = post_json,
        permitted: Callable[[dict[str, Any]], bool] = lambda event: True,
    ) -> None:
        self._subscriptions = subscriptions
        self.time_scale = time_scale
        self.timeout = timeout
        self._ping_source_base = ping_source_base.rstrip("/")
        self._post = post
        self._permitted = permitted
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.dead_letters: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"altinn-sim-delivery-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _schedule(self, job: _Job) -> None:
        with self._cond:
            heapq.heappush(self._heap, job)
            self._cond.notify()

    def validate(self, subscription: Subscription) -> None:
        """The first ping at once."""
        ping = {
            "id": str(uuid.uuid4()),
            "source": f"{self._ping_source_base}/events/api/v1/subscriptions/{subscription.id}",
            "type": VALIDATION_TYPE,
            "specversion": "1.0",
        }  # DLV-PING
        self._schedule(_Job(time.monotonic(), next(self._seq), subscription.id, ping, ping=True))

    def publish(self, event: dict[str, Any]) -> int:
        """Queue ``event`` for every matching subscription; the number it was queued for."""
        queued = 0
        for subscription in self._subscriptions.all():
            if not subscription.matches(event):
                continue
            if not subscription.validated:  # DLV-VALIDATED
                with self._lock:
                    self.skipped.append(
                        {
                            "subscriptionId": subscription.id,
                            "eventId": event.get("id"),
                            "reason": "subscription not validated",
                        }
                    )
                continue
            if not self._permitted(event):  # DLV-AUTHORIZED
                with self._lock:
                    self.skipped.append(
                        {"subscriptionId": subscription.id, "eventId": event.get("id"), "reason": "not authorized"}
                    )
                continue
            self._schedule(_Job(time.monotonic(), next(self._seq), subscription.id, event))
            queued += 1
        return queued

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._heap or self._heap[0].due > time.monotonic()):
                    wait = None if not self._heap else max(0.0, self._heap[0].due - time.monotonic())
                    self._cond.wait(timeout=wait)
                if self._stopping:
                    return
                job = heapq.heappop(self._heap)
            self._run(job)

    def _run(self, job: _Job) -> None:
        subscription = next((s for s in self._subscriptions.all() if s.id == job.subscription_id), None)
        if subscription is None:  # deleted meanwhile: nothing to deliver to
            return
        status: int | None = None
        error: str | None = None
        try:
            status = self._post(subscription.end_point, json.dumps(job.event).encode("utf-8"), self.timeout)
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300  # DLV-POST: any 2xx
        with self._lock:
            self.attempts.append(
                Attempt(
                    job.subscription_id,
                    str(job.event.get("id")),
                    str(job.event.get("type")),
                    job.attempt,
                    status,
                    error,
                    time.time(),
                )
            )
        if job.ping:
            subscription.validation_attempts = job.attempt
            if ok:
                subscription.validated = True
                return
            delays: tuple[int, ...] = PING_DELAYS  # DLV-PING-RETRY
        else:
            if ok:
                with self._lock:
                    self.delivered.append(
                        {"subscriptionId": job.subscription_id, "eventId": job.event.get("id"), "attempt": job.attempt}
                    )
                return
            delays = RETRY_DELAYS  # DLV-RETRY
        if job.attempt <= len(delays):
            delay = delays[job.attempt - 1] * self.time_scale
            self._schedule(
                _Job(
                    time.monotonic() + delay, next(self._seq), job.subscription_id, job.event, job.attempt + 1, job.ping
                )
            )
        elif not job.ping:
            with self._lock:
                self.dead_letters.append(
                    {
                        "subscriptionId": job.subscription_id,
                        "event": job.event,
                        "attempts": job.attempt,
                        "lastStatus": status,
                        "lastError": error,
                    }
                )

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
