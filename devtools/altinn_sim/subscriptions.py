"""The simulator's fake Altinn Events subscriptions: the rules for generic (non-app) resources.

Sources (the project's notes on the Altinn APIs, section 1):

- SUB-HTTPS: ``endPoint`` must be an absolute ``https`` URL (EV ``Controllers/SubscriptionController.cs``,
  ``Services/GenericSubscriptionService.cs``).
- SUB-RESOURCE: ``resourceFilter`` is required and must be a valid URN (same files).
- SUB-SOURCE: ``sourceFilter`` is rejected with 400 "Source filter is not supported…" (same files).
- SUB-ALTSUBJECT: ``alternativeSubjectFilter`` is rejected with 400 (same files).
- SUB-SUBUNITS: ``includeSubunits`` requires ``subjectFilter`` (same files).
- SUB-SCOPE: a missing ``altinn:events.subscribe`` scope gives 403 (same files).
- SUB-SUBJECT: ``subjectFilter`` is required unless the caller is a service owner with
  ``altinn:serviceowner`` (DOCS ``events/subscribe-to-events/developer-guides/setup-subscription``).
- SUB-EMPTY: ``typeFilter`` is an exact match on one string; an empty string in ``subjectFilter`` or
  ``typeFilter`` makes the subscription silently match nothing (same doc).
- SUB-IDENTICAL: POSTing an identical subscription returns the existing one, 201 (EV
  ``SubscriptionService.FindSubscription``; the k6 test TC03 expects 201).
- SUB-LOCATION: the ``Location`` header says ``/events/api/v1/subscription/{id}``, singular (EV controller).
- SUB-OWNER: access only when ``createdBy`` equals the caller, else 403; unknown id 404; DELETE 200
  (EV ``AuthorizeAccessToSubscription``).
- SUB-CONSUMER: ``consumer``/``createdBy`` are ``/org/{code}`` with an org claim, else
  ``/organisation/{orgnr}`` (EV ``SubscriptionService.GetEntityFromPrincipal``).
- SUB-VALIDATED: new subscriptions start with ``validated: false`` and are listed anyway; events are
  pushed only after validation (EV ``SubscriptionService.SendAndValidate``, setup-subscription doc).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

SUBSCRIBE_SCOPE: Final = "altinn:events.subscribe"
SERVICE_OWNER_SCOPE: Final = "altinn:serviceowner"
#: RFC 8141: ``urn:`` NID ``:`` NSS.
_URN: Final = re.compile(r"^urn:[a-z0-9][a-z0-9-]{0,31}:[^\s]+$", re.IGNORECASE)
FIELDS: Final = (
    "endPoint",
    "sourceFilter",
    "subjectFilter",
    "resourceFilter",
    "alternativeSubjectFilter",
    "typeFilter",
    "includeSubunits",
)


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class Subscription:
    id: int
    end_point: str
    resource_filter: str
    subject_filter: str | None
    type_filter: str | None
    include_subunits: bool
    consumer: str
    created: str
    validated: bool = False
    validation_attempts: int = field(default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endPoint": self.end_point,
            "sourceFilter": None,
            "subjectFilter": self.subject_filter,
            "alternativeSubjectFilter": None,
            "typeFilter": self.type_filter,
            "resourceFilter": self.resource_filter,
            "includeSubunits": self.include_subunits,
            "consumer": self.consumer,
            "createdBy": self.consumer,
            "created": self.created,
            "validated": self.validated,
        }

    def key(self) -> tuple[Any, ...]:
        return (
            self.end_point,
            self.resource_filter,
            self.subject_filter,
            self.type_filter,
            self.include_subunits,
            self.consumer,
        )

    def matches(self, event: dict[str, Any]) -> bool:
        """Exact matches only; an empty filter string matches nothing (SUB-EMPTY)."""
        if event.get("resource") != self.resource_filter:
            return False
        if self.subject_filter is not None and event.get("subject") != self.subject_filter:
            return False
        return self.type_filter is None or event.get("type") == self.type_filter


def consumer_of(claims: dict[str, Any]) -> str:
    """SUB-CONSUMER."""
    org = claims.get("urn:altinn:org")
    if org:
        return f"/org/{org}"
    return f"/organisation/{claims.get('urn:altinn:orgNumber', '')}"


def check_request(body: Any, scopes: frozenset[str], *, allow_http_loopback: bool = False) -> dict[str, Any]:
    """The request fields, or :class:`Refused` with Altinn's status for the first rule broken."""
    if SUBSCRIBE_SCOPE not in scopes:  # SUB-SCOPE
        raise Refused(403, f"The token lacks the scope {SUBSCRIBE_SCOPE}")
    if not isinstance(body, dict):
        raise Refused(400, "The request body must be a JSON object")
    end_point = body.get("endPoint")
    if not isinstance(end_point, str) or not _absolute_https(end_point, allow_http_loopback):  # SUB-HTTPS
        raise Refused(400, "Missing or invalid endpoint to push events towards (an absolute https URL is required)")
    if body.get("sourceFilter") is not None:  # SUB-SOURCE
        raise Refused(400, "Source filter is not supported for subscriptions on this resource")
    if body.get("alternativeSubjectFilter") is not None:  # SUB-ALTSUBJECT
        raise Refused(400, "AlternativeSubject is not supported for subscriptions on this resource")
    resource = body.get("resourceFilter")
    if not isinstance(resource, str) or not _URN.match(resource):  # SUB-RESOURCE
        raise Refused(400, "Resource filter is required and must be a valid URN")
    subject = body.get("subjectFilter")
    if subject is not None and not isinstance(subject, str):
        raise Refused(400, "Subject filter must be a string")
    include_subunits = body.get("includeSubunits", False)
    if not isinstance(include_subunits, bool):
        raise Refused(400, "includeSubunits must be a boolean")
    if include_subunits and subject is None:  # SUB-SUBUNITS
        raise Refused(400, "includeSubunits requires a subject filter")
    if subject is None and SERVICE_OWNER_SCOPE not in scopes:  # SUB-SUBJECT
        raise Refused(400, "A valid subject to the authenticated identity is required")
    type_filter = body.get("typeFilter")
    if type_filter is not None and not isinstance(type_filter, str):  # SUB-EMPTY: one exact string, no arrays
        raise Refused(400, "Type filter must be a single string")
    return {
        "end_point": end_point,
        "resource_filter": resource,
        "subject_filter": subject,
        "type_filter": type_filter,
        "include_subunits": include_subunits,
    }


def _absolute_https(url: str, allow_http_loopback: bool) -> bool:
    parts = urlsplit(url)
    if not parts.netloc:
        return False
    if parts.scheme == "https":
        return True
    # A deviation for the local loop only (dev.py turns it on): the app listens on http://localhost.
    return allow_http_loopback and parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")


class SubscriptionStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        self._by_id: dict[int, Subscription] = {}

    def create(self, fields: dict[str, Any], consumer: str) -> tuple[Subscription, bool]:
        """The subscription, and whether it is new (an identical one is returned as is: SUB-IDENTICAL)."""
        candidate = Subscription(0, consumer=consumer, created=_now(), **fields)
        with self._lock:
            for existing in self._by_id.values():
                if existing.key() == candidate.key():
                    return existing, False
            candidate.id = self._next_id
            self._next_id += 1
            self._by_id[candidate.id] = candidate
            return candidate, True

    def owned(self, subscription_id: int, consumer: str) -> Subscription:
        """SUB-OWNER."""
        with self._lock:
            found = self._by_id.get(subscription_id)
        if found is None:
            raise Refused(404, f"Subscription {subscription_id} not found")
        if found.consumer != consumer:
            raise Refused(403, f"Not authorized to access subscription {subscription_id}")
        return found

    def delete(self, subscription_id: int, consumer: str) -> None:
        self.owned(subscription_id, consumer)
        with self._lock:
            self._by_id.pop(subscription_id, None)

    def of(self, consumer: str) -> list[Subscription]:
        with self._lock:
            return [s for s in self._by_id.values() if s.consumer == consumer]

    def all(self) -> list[Subscription]:
        with self._lock:
            return list(self._by_id.values())

    def exists(self, subscription_id: int) -> bool:
        with self._lock:
            return subscription_id in self._by_id


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
