"""A fake of Altinn Events' subscriptions API, for generic (non-app) resources such as Dialogporten's.

Route: ``/events/api/v1/subscriptions`` (POST, GET) and ``/events/api/v1/subscriptions/{id}`` (GET, DELETE).
A POST's checks run in the order of the real controller and service. Rules:

- EV-SUB-AUTH: every route needs an Altinn token (``[Authorize]``): 401 with an empty body.
  Altinn/altinn-events src/Events/Controllers/SubscriptionController.cs (SubscriptionController.Post)
- EV-SUB-BINDING: a POST body that is not ``application/json`` is 415; one that does not bind to the request
  model (not a JSON object; ``endPoint``/``sourceFilter`` not a string; filters not strings;
  ``includeSubunits`` not a boolean) is 400 ``ValidationProblemDetails``; an ``{id}`` that is not an
  integer is 400 too (``[ApiController]`` model binding).
  Altinn/altinn-events src/Events/Controllers/SubscriptionController.cs (Consumes)
  Altinn/altinn-events src/Events/Models/SubscriptionRequestModel.cs (SubscriptionRequestModel)
- EV-SUB-ENDPOINT: ``endPoint`` must be an absolute ``https`` URL: else 400
  "Missing or invalid endpoint to push events towards".
  Altinn/altinn-events src/Events/Controllers/SubscriptionController.cs (SubscriptionController.IsValidUri)
- EV-SUB-SOURCEFILTER: a ``sourceFilter`` that is not an absolute ``https`` URL: 400
  "SourceFilter must be an absolute URL with the https scheme."
  Altinn/altinn-events src/Events/Controllers/SubscriptionController.cs (SubscriptionController.Post)
- EV-SUB-SCOPE: a generic subscription without the scope ``altinn:events.subscribe`` is 403, empty body; this
  comes after the endpoint checks and before every other rule.
  Altinn/altinn-events src/Events/Controllers/SubscriptionController.cs (SubscriptionController.Post)
- EV-SUB-URN: a ``resourceFilter`` that is given but not a valid URN (``IsValidUrn``: lower-case segments
  only) is 400 "Resource filter must be a valid urn".
  Altinn/altinn-events src/Events/Extensions/UriExtensions.cs (UriExtensions.IsValidUrn)
- EV-SUB-GENERIC: then, in order, 400 "Resource filter is required.", "Source filter is not supported for
  subscriptions on this resource.", "AlternativeSubject filter is not supported for subscriptions on this
  resource.", "IncludeSubunits requires a subject filter.".
  Altinn/altinn-events src/Events/Services/GenericSubscriptionService.cs (GenericSubscriptionService.ValidateSubscription)
- EV-SUB-PDP: then the PDP decides whether the consumer may ``subscribe`` to the resource (with the
  ``subjectFilter`` as the party when there is one): else 403 "Not authorized to create a subscription for
  resource <resourceFilter>.". There is no 400 for a missing ``subjectFilter``: without one, the request
  carries no party, and the resource's policy decides. The policy is not in any repository; the simulator's
  default (:func:`default_policy`) permits a service owner's consumer (``/org/…``) any subject, and any other
  consumer only with a ``subjectFilter`` naming its own organisation. ``SubscriptionStore.permit`` replaces it.
  Altinn/altinn-events src/Events/Services/SubscriptionService.cs (SubscriptionService.CompleteSubscriptionCreation)
  Altinn/altinn-events src/Events/Authorization/SubscriptionXacmlMapper.cs (SubscriptionXacmlMapper.CreateResourceCategory)
- EV-SUB-IDENTITY: ``consumer`` and ``createdBy`` are ``/org/{urn:altinn:org}`` when the token has an org
  claim, else ``/organisation/{urn:altinn:orgNumber}``.
  Altinn/altinn-events src/Events/Services/SubscriptionService.cs (SubscriptionService.GetEntityFromPrincipal)
- EV-SUB-IDEMPOTENT: an identical POST (same resource, subject, type, consumer, endpoint, includeSubunits)
  returns the existing subscription, 201, and the validation ping is sent again.
  Altinn/altinn-events src/Events/Services/SubscriptionService.cs (SubscriptionService.CompleteSubscriptionCreation)
  Altinn/altinn-events src/Events/Migration/FunctionsAndProcedures/findsubscription.sql (find_subscription)
- EV-SUB-STORED: ``resourceFilter`` is stored lower-cased, ``endPoint`` as its absolute URI, ``validated``
  false; the JSON leaves out null fields.
  Altinn/altinn-events src/Events/Repository/SubscriptionRepository.cs (SubscriptionRepository.CreateSubscription)
  Altinn/altinn-events src/Events/Program.cs (WhenWritingNull)
- EV-SUB-201: 201 with ``Location: /events/api/v1/subscription/{id}``, relative and singular.
  Altinn/altinn-events src/Events/Controllers/SubscriptionController.cs (SubscriptionController.Post)
- EV-SUB-LIST: ``GET`` lists the caller's subscriptions, validated or not: 200 ``{count, subscriptions}``.
  Altinn/altinn-events src/Events/Services/SubscriptionService.cs (SubscriptionService.GetAllSubscriptions)
- EV-SUB-BY-ID: ``GET``/``DELETE`` by id: unknown 404, another creator's 403, both with empty bodies;
  ``DELETE`` answers 200 with an empty body.
  Altinn/altinn-events src/Events/Services/SubscriptionService.cs (SubscriptionService.GetSubscription)
  Altinn/altinn-events src/Events/Controllers/SubscriptionController.cs (SubscriptionController.Delete)
- EV-SUB-ERRBODY: the controller's messages are JSON string literals (``"…"``), ``application/json``.
  Altinn/altinn-events src/Events/Controllers/SubscriptionController.cs (Produces)
- EV-SUB-MATCHING: an event is pushed to a validated subscription whose ``resourcefilter`` equals its resource,
  whose ``subjectfilter`` is null or equal and whose ``typefilter`` is null or equal (an empty string in a
  filter matches nothing).
  Altinn/altinn-events src/Events/Migration/FunctionsAndProcedures/getsubscriptions.sql (getsubscriptions_v2)
- SIM-APP-RESOURCES: simulator only: app resources (``urn:altinn:resource:app_…``, or a ``sourceFilter`` on
  ``apps.altinn.no``) follow other rules, which it does not imitate: 400 saying so.
- SIM-HTTP-LOOPBACK: simulator only, and off unless ``Options.allow_http_loopback``: an ``http`` endpoint on a
  loopback address is accepted, for the app on ``http://localhost`` (Altinn refuses it).
"""  # noqa: E501 - a citation stays on one line

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

SUBSCRIBE_SCOPE: Final = "altinn:events.subscribe"
APP_PREFIX: Final = "urn:altinn:resource:app_"
APPS_DOMAIN: Final = "apps.altinn.no"
#: ``UriExtensions.IsValidUrn``'s pattern, case-sensitive.
_URN: Final = re.compile(r"^urn:[a-z0-9-]{1,30}(:[a-z0-9()+,.\-;$_!\/]{1,100}){1,10}$")
ORGANISATION_SUBJECT: Final = "urn:altinn:organization:identifier-no:"
STRING_FIELDS: Final = ("endPoint", "sourceFilter", "subjectFilter", "resourceFilter", "alternativeSubjectFilter")


class Refused(Exception):
    """A refusal as the subscriptions API answers it: a status and a message (None: an empty body).

    ``errors`` makes it a model-binding ``ValidationProblemDetails`` instead of a JSON string.
    """

    def __init__(self, status: int, message: str | None = None, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message or str(status))
        self.status = status
        self.message = message
        self.errors = errors


#: EV-SUB-PDP: (consumer, resourceFilter, subjectFilter) -> permit?
Policy = Callable[[str, str, str | None], bool]


def default_policy(consumer: str, resource: str, subject: str | None) -> bool:
    """The simulator's stand-in for a resource policy (EV-SUB-PDP): the service owner, or a party itself."""
    if consumer.startswith("/org/"):
        return True
    org_number = consumer.removeprefix("/organisation/")
    return subject is not None and subject == ORGANISATION_SUBJECT + org_number


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
        body = {
            "id": self.id,
            "endPoint": self.end_point,
            "subjectFilter": self.subject_filter,
            "typeFilter": self.type_filter,
            "resourceFilter": self.resource_filter,
            "includeSubunits": self.include_subunits,
            "consumer": self.consumer,
            "createdBy": self.consumer,
            "created": self.created,
            "validated": self.validated,
        }
        return {k: v for k, v in body.items() if v is not None}  # EV-SUB-STORED: nulls left out

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
        """Exact matches only; an empty filter string matches nothing."""
        if event.get("resource") != self.resource_filter:  # EV-SUB-MATCHING
            return False
        if self.subject_filter is not None and event.get("subject") != self.subject_filter:  # EV-SUB-MATCHING
            return False
        return self.type_filter is None or event.get("type") == self.type_filter  # EV-SUB-MATCHING


def consumer_of(claims: dict[str, Any]) -> str:
    """EV-SUB-IDENTITY."""
    org = claims.get("urn:altinn:org")
    if org:  # EV-SUB-IDENTITY
        return f"/org/{org}"
    return f"/organisation/{claims.get('urn:altinn:orgNumber', '')}"


def _binding_error(name: str, message: str) -> Refused:
    return Refused(400, None, {name: [message]})  # EV-SUB-BINDING


def _absolute_uri(url: str) -> str:
    """``Uri.AbsoluteUri``: scheme and host lower-cased, an empty path ``/``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, parts.fragment))


def _https(url: str | None, *, allow_http_loopback: bool = False) -> bool:
    if url is None:
        return False
    parts = urlsplit(url)
    if not parts.netloc or not parts.scheme:
        return False
    if parts.scheme == "https":
        return True
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    return allow_http_loopback and parts.scheme == "http" and loopback  # SIM-HTTP-LOOPBACK


def check_request(
    body: Any, scopes: frozenset[str], consumer: str, permit: Policy, *, allow_http_loopback: bool = False
) -> dict[str, Any]:
    """The subscription's fields, or :class:`Refused` for the first rule broken, in the real order."""
    if not isinstance(body, dict):  # EV-SUB-BINDING
        raise _binding_error("$", "The JSON value could not be converted to SubscriptionRequestModel.")
    for name in STRING_FIELDS:
        if body.get(name) is not None and not isinstance(body[name], str):  # EV-SUB-BINDING
            raise _binding_error(f"$.{name}", f"The JSON value could not be converted to {name}.")
    if body.get("typeFilter") is not None and not isinstance(body["typeFilter"], str):  # EV-SUB-BINDING
        raise _binding_error("$.typeFilter", "The JSON value could not be converted to System.String.")
    include_subunits = body.get("includeSubunits", False)
    if not isinstance(include_subunits, bool):  # EV-SUB-BINDING
        raise _binding_error("$.includeSubunits", "The JSON value could not be converted to System.Boolean.")
    end_point = body.get("endPoint")
    if not _https(end_point, allow_http_loopback=allow_http_loopback):  # EV-SUB-ENDPOINT
        raise Refused(400, "Missing or invalid endpoint to push events towards")
    source = body.get("sourceFilter")
    if source is not None and not _https(source):  # EV-SUB-SOURCEFILTER
        raise Refused(400, "SourceFilter must be an absolute URL with the https scheme.")
    resource = body.get("resourceFilter")
    on_apps = source is not None and (urlsplit(source).hostname or "").endswith(APPS_DOMAIN)
    if (resource or "").lower().startswith(APP_PREFIX) or on_apps:  # SIM-APP-RESOURCES
        raise Refused(400, "The simulator imitates generic resources only, not app resources")
    if SUBSCRIBE_SCOPE not in scopes:  # EV-SUB-SCOPE
        raise Refused(403)
    if resource is not None and not _URN.match(resource):  # EV-SUB-URN
        raise Refused(400, "Resource filter must be a valid urn")
    subject = body.get("subjectFilter")
    if not resource:  # EV-SUB-GENERIC
        raise Refused(400, "Resource filter is required.")
    if source is not None:  # EV-SUB-GENERIC
        raise Refused(400, "Source filter is not supported for subscriptions on this resource.")
    if body.get("alternativeSubjectFilter"):  # EV-SUB-GENERIC
        raise Refused(400, "AlternativeSubject filter is not supported for subscriptions on this resource.")
    if include_subunits and not subject:  # EV-SUB-GENERIC
        raise Refused(400, "IncludeSubunits requires a subject filter.")
    if not permit(consumer, resource, subject):  # EV-SUB-PDP
        raise Refused(403, f"Not authorized to create a subscription for resource {resource}.")
    return {
        "end_point": _absolute_uri(str(end_point)),  # EV-SUB-STORED
        "resource_filter": resource.lower(),  # EV-SUB-STORED
        "subject_filter": subject,
        "type_filter": body.get("typeFilter"),
        "include_subunits": include_subunits,
    }


class SubscriptionStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        self._by_id: dict[int, Subscription] = {}
        #: EV-SUB-PDP: the resource policy's stand-in.
        self.permit: Policy = default_policy

    def create(self, fields: dict[str, Any], consumer: str) -> Subscription:
        """The subscription: a new one, or an identical one as it is."""
        candidate = Subscription(0, consumer=consumer, created=_now(), **fields)
        with self._lock:
            for existing in self._by_id.values():
                if existing.key() == candidate.key():  # EV-SUB-IDEMPOTENT
                    return existing
            candidate.id = self._next_id
            self._next_id += 1
            self._by_id[candidate.id] = candidate
            return candidate

    def owned(self, subscription_id: int, consumer: str) -> Subscription:
        with self._lock:
            found = self._by_id.get(subscription_id)
        if found is None:  # EV-SUB-BY-ID
            raise Refused(404)
        if found.consumer != consumer:  # EV-SUB-BY-ID
            raise Refused(403)
        return found

    def delete(self, subscription_id: int, consumer: str) -> None:
        self.owned(subscription_id, consumer)
        with self._lock:
            self._by_id.pop(subscription_id, None)

    def of(self, consumer: str) -> list[Subscription]:
        with self._lock:
            return [s for s in self._by_id.values() if s.consumer == consumer]  # EV-SUB-LIST

    def all(self) -> list[Subscription]:
        with self._lock:
            return list(self._by_id.values())

    def exists(self, subscription_id: int) -> bool:
        with self._lock:
            return subscription_id in self._by_id


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
