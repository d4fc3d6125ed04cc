"""Storage clients, built once per process from :mod:`shared.settings`.

Locally the ``AzureWebJobsStorage`` connection string (Azurite); in Azure the
identity-based form with a user-assigned managed identity, exactly the
settings the Functions host itself reads for its queue triggers.
"""

from __future__ import annotations

import contextlib
import threading
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Final

from shared import settings as settings_module
from shared.settings import Settings, StorageSettings

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueClient, QueueServiceClient

#: The Functions host and Azure SDKs understand this shorthand differently: the
#: SDKs need it spelled out. These are Azurite's public, documented dev values.
AZURITE_ACCOUNT: Final = "devstoreaccount1"
AZURITE_KEY: Final = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(
    host: str = "127.0.0.1", blob: int = 10000, queue: int = 10001, table: int = 10002
) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{AZURITE_ACCOUNT};"
    )


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
    }


def expand_connection_string(connection_string: str) -> str:
    """Spell out `UseDevelopmentStorage=true`, which the host understands and the SDKs do not."""
    if connection_string.replace(" ", "").lower().rstrip(";") == "usedevelopmentstorage=true":
        return azurite_connection_string()
    return connection_string


def _credential(storage: StorageSettings) -> Any:
    # Imported lazily: azure-identity is heavy and unused with connection strings,
    # so local runs and cold starts with a connection string do not pay for it.
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=storage.client_id)


def _require(uri: str | None, what: str) -> str:
    if not uri:
        raise settings_module.SettingsError(
            f"Identity-based storage needs {settings_module.STORAGE_CONNECTION}__{what} to be set"
        )
    return uri


def queue_client(service: QueueServiceClient, name: str) -> QueueClient:
    """A queue client that speaks base64, as the queue trigger expects by default."""
    from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

    return service.get_queue_client(
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )


#: Time to live of every message this app writes: an accepted event waits for its handler,
#: and a poisoned one for an operator, however long that takes.
NEVER_EXPIRE: Final = -1


def send_creating_queue(client: QueueClient, body: Any, **kwargs: Any) -> None:
    """``send_message``, creating the queue first if it is missing.

    Bicep creates every queue in Azure; locally (Azurite) the first message creates it.
    """
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    try:
        client.send_message(body, **kwargs)
    except ResourceNotFoundError:
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        client.send_message(body, **kwargs)


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

        # Only the queue functions and the dialog API use tables: no 45 s caller to answer, so a
        # loaded storage account gets more time before a request is given up.
        options: dict[str, Any] = {"retry_total": 3, "connection_timeout": 5, "read_timeout": 20}
        with self._lock:
            conn = self._connection_string()
            if conn:
                return TableServiceClient.from_connection_string(conn, **options)
            uri = _require(self._storage.table_service_uri, "tableServiceUri")
            return TableServiceClient(endpoint=uri, credential=self._credential, **options)

    def queue(self, name: str) -> QueueClient:
        return queue_client(self.queues, name)


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
