"""Storage clients, built once per process from :mod:`shared.settings`.

Locally the ``AzureWebJobsStorage`` connection string (Azurite); in Azure the
identity-based form with a user-assigned managed identity, exactly the
settings the Functions host itself reads for its queue triggers.

Per-request costs are paid once here: every client has its own HTTP transport
that ignores proxy environment variables (``requests`` would otherwise rescan
the environment on every call) and pools as many connections as the host runs
invocations at once; and a queue or table client is built once per name and
reused (:func:`table_client`, :func:`queue_client`).

Why a table client is never derived from the service client while requests are in
flight: ``TableServiceClient.get_table_client`` builds a new azure-core
``Pipeline`` from the service client's own policy *instances*, and
``Pipeline.__init__`` rewires their ``.next``; for a moment a shared policy points
at a fresh runner whose ``.next`` is not set yet, and a request on another thread
that walks in fails with ``AttributeError: '_SansIOHTTPPolicyRunner' object has
no attribute 'next'``. So each table client here is built once, from copies of
the service client's policies, sharing its transport and no policy object.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Final

# The HTTP stack every storage client sends through. Every function's first invocation needs it (the
# webhook's first event, a queue message, a timer run: each sends a storage request), so it loads with
# the app (indexing) instead of inside that first invocation. The storage SDKs still load on first use:
# an instance of the HTTP functions never needs the table SDK, one of a queue function never the blob SDK.
import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from shared import settings as settings_module
from shared.errors import SettingsError
from shared.settings import Settings, StorageSettings
from shared.stores.devstorage import expand_connection_string

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueClient, QueueServiceClient

#: Connections kept per client: the host runs batchSize + newBatchThreshold (16 + 8) queue
#: invocations at once, and the webhook sends a batch 8 at a time; requests' default of 10
#: would close and reopen a connection for every request beyond the tenth.
POOL_SIZE: Final = 32


def transport(pool_size: int = POOL_SIZE) -> Any:
    """An HTTP transport of its own for one client: no proxy look-ups, a pool sized to the concurrency."""
    session = requests.Session()
    # Proxy settings are not read from the environment: requests would scan it on every call.
    session.trust_env = False
    # The SDK's pipeline retries; urllib3 must not retry underneath it (as azure-core's own session).
    adapter = HTTPAdapter(
        pool_connections=4,
        pool_maxsize=pool_size,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return RequestsTransport(session=session, session_owner=True, use_env_settings=False)


def _client_options() -> dict[str, Any]:
    """Bounded retries and timeouts: Altinn gives up on a webhook call after 45 s.

    The storage SDKs' default back-off (15 s, then 18 s, 24 s) would outlast that
    and turn a storage blip into a timeout instead of a prompt 503 that Altinn
    retries. Here: about 3 s when storage refuses connections; at worst 4 attempts
    x 8 s read + 3 x 1 s back-off, still under 45 s.
    """
    from azure.storage.queue import LinearRetry

    return {
        "retry_policy": LinearRetry(backoff=1, retry_total=3, random_jitter_range=1),
        "connection_timeout": 5,
        "read_timeout": 8,
        "transport": transport(),
    }


def _table_options() -> dict[str, Any]:
    # Only the queue functions and the dialog API use tables: no 45 s caller to answer, so a
    # loaded storage account gets more time before a request is given up.
    return {"retry_total": 3, "connection_timeout": 5, "read_timeout": 20}


def _credential(storage: StorageSettings) -> Any:
    # Imported lazily: azure-identity is heavy and unused with connection strings,
    # so local runs and cold starts with a connection string do not pay for it.
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=storage.client_id)


def _require(uri: str | None, what: str) -> str:
    if not uri:
        raise SettingsError(f"Identity-based storage needs {settings_module.STORAGE_CONNECTION}__{what} to be set")
    return uri


_DERIVED_LOCK: Final = threading.Lock()
_DERIVED: Final[weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Any]]] = weakref.WeakKeyDictionary()


def _derived(service: Any, key: tuple[str, str], build: Callable[[], Any]) -> Any:
    """The client ``build`` makes for ``service`` and ``key``: built once, under a lock, then reused."""
    with _DERIVED_LOCK:
        made = _DERIVED.setdefault(service, {})
        client = made.get(key)
        if client is None:
            client = made[key] = build()
        return client


def queue_client(service: QueueServiceClient, name: str, *, binary: bool = False) -> QueueClient:
    """A queue client that speaks base64, as the queue trigger expects by default (one per name).

    ``binary`` encodes bytes instead of text (a poisoned body that is not UTF-8).
    The queue SDK derives it from the service's already wired policy runners, which
    a new pipeline leaves pointing where they pointed: no window for a request in flight.
    """
    from azure.storage.queue import (
        BinaryBase64EncodePolicy,
        TextBase64DecodePolicy,
        TextBase64EncodePolicy,
    )

    def build() -> QueueClient:
        if binary:
            return service.get_queue_client(name, message_encode_policy=BinaryBase64EncodePolicy())
        return service.get_queue_client(
            name,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )

    client: QueueClient = _derived(service, ("binary" if binary else "text", name), build)
    return client


def table_client(tables: TableServiceClient, name: str) -> TableClient:
    """The client of table ``name`` on ``tables``' account: built once, race-free, sharing its transport.

    As ``tables.get_table_client(name)`` (same transport, same options and hooks), except
    that the pipeline is made of *copies* of the service client's policies, so that
    building it rewires no object a request in flight is walking through (see the module doc).
    """

    def build() -> TableClient:
        import copy

        from azure.core.pipeline import Pipeline
        from azure.data.tables import TableClient
        from azure.data.tables._base_client import TransportWrapper

        # The same steps as TableServiceClient.get_table_client (azure-data-tables 12.x).
        service: Any = tables
        pipeline = Pipeline(
            transport=TransportWrapper(service._client._client._pipeline._transport),  # type: ignore[no-untyped-call]
            policies=[copy.copy(policy) for policy in service._policies],
        )
        return TableClient(
            service.url,
            table_name=name,
            credential=service.credential,
            api_version=service.api_version,
            pipeline=pipeline,
            location_mode=service._location_mode,
            _hosts=service._hosts,
        )

    client: TableClient = _derived(tables, ("table", name), build)
    return client


#: Time to live of every message this app writes: an accepted event waits for its handler,
#: and a poisoned one for an operator, however long that takes.
NEVER_EXPIRE: Final = -1


def send_creating_queue(client: QueueClient, body: Any, **kwargs: Any) -> Any:
    """``send_message``, creating the queue first if it is missing; the sent message (its ``id``).

    Bicep creates every queue in Azure; locally (Azurite) the first message creates it.
    """
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    try:
        return client.send_message(body, **kwargs)
    except ResourceNotFoundError:
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        return client.send_message(body, **kwargs)


class StorageClients:
    """The queue, blob and table service clients, each built on first use.

    Lazily, because each SDK costs tens of milliseconds to import and a cold
    start pays for every import: an instance that only serves the webhook never
    loads the table SDK, and one that only handles queue messages never loads
    the blob SDK unless a claim check needs it. Thread-safe.
    """

    def __init__(self, cfg: Settings) -> None:
        self._storage = cfg.storage
        self._lock = threading.Lock()

    def _connection_string(self) -> str | None:
        conn = self._storage.connection_string
        return expand_connection_string(conn) if conn else None

    @cached_property
    def _credential(self) -> Any:
        return _credential(self._storage)

    def _blob_or_queue(self, client_class: Any, uri: str | None, what: str) -> Any:
        with self._lock:
            conn = self._connection_string()
            if conn:
                return client_class.from_connection_string(conn, **_client_options())
            return client_class(_require(uri, what), credential=self._credential, **_client_options())

    @cached_property
    def queues(self) -> QueueServiceClient:
        from azure.storage.queue import QueueServiceClient

        client: QueueServiceClient = self._blob_or_queue(
            QueueServiceClient, self._storage.queue_service_uri, "queueServiceUri"
        )
        return client

    @cached_property
    def blobs(self) -> BlobServiceClient:
        from azure.storage.blob import BlobServiceClient

        client: BlobServiceClient = self._blob_or_queue(
            BlobServiceClient, self._storage.blob_service_uri, "blobServiceUri"
        )
        return client

    @cached_property
    def tables(self) -> TableServiceClient:
        from azure.data.tables import TableServiceClient

        options: dict[str, Any] = _table_options() | {"transport": transport()}
        with self._lock:
            conn = self._connection_string()
            if conn:
                return TableServiceClient.from_connection_string(conn, **options)
            uri = _require(self._storage.table_service_uri, "tableServiceUri")
            return TableServiceClient(endpoint=uri, credential=self._credential, **options)

    def queue(self, name: str) -> QueueClient:
        return queue_client(self.queues, name)

    def table(self, name: str) -> TableClient:
        """Table ``name``'s client, built once (use this, not ``tables.get_table_client``)."""
        return table_client(self.tables, name)


def build(cfg: Settings) -> StorageClients:
    """Clients for ``cfg``; a misconfigured identity-based connection is reported here, not at first use."""
    storage = cfg.storage
    if not storage.connection_string:
        for uri, what in ((storage.queue_service_uri, "queueServiceUri"), (storage.blob_service_uri, "blobServiceUri"),
                          (storage.table_service_uri, "tableServiceUri")):  # fmt: skip
            _require(uri, what)
    return StorageClients(cfg)


@lru_cache(maxsize=1)
def current() -> StorageClients:
    """The process's clients: created on first use, then shared by every invocation."""
    return build(settings_module.current())
