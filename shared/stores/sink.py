"""The storage side of the webhook: makes an accepted event durable on its queue.

Messages are base64 (what the queue trigger expects by default) and never
expire (TTL -1). An event too large for one message goes to a blob first and
the queue gets a claim check naming it. A storage failure becomes
:class:`~shared.intake.plan.StorageUnavailable`, which the webhook answers with 503;
a message the queue service refuses as too large (413) becomes
:class:`~shared.intake.plan.EventTooLarge`, the sender's fault, answered with 413.
A claim-check blob whose reference the queue service refused is deleted again.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

if TYPE_CHECKING:
    from azure.storage.blob import ContentSettings

from shared.errors import EventTooLarge, StorageUnavailable, clip
from shared.events import messages
from shared.events.cloudevent import CloudEvent
from shared.stores.clients import NEVER_EXPIRE, StorageClients, send_creating_queue


class QueueSink:
    """An :class:`~shared.intake.plan.EventSink` on Azure Storage. One per process; thread-safe."""

    def __init__(self, clients: StorageClients) -> None:
        self._clients = clients
        self._queues: dict[str, QueueClient] = {}
        self._lock = threading.Lock()
        self._container_ready = False

    def _queue(self, name: str) -> QueueClient:
        client = self._queues.get(name)
        if client is None:
            with self._lock:
                client = self._queues.setdefault(name, self._clients.queue(name))
        return client

    def _send(self, queue: str, body: str) -> None:
        send_creating_queue(self._queue(queue), body, time_to_live=NEVER_EXPIRE)

    def _store_blob(self, queue: str, body: str) -> str:
        name = messages.claim_check_blob_name(queue)
        container = self._clients.blobs.get_container_client(messages.CLAIM_CHECK_CONTAINER)
        data = body.encode("utf-8")
        try:
            container.upload_blob(name, data, content_settings=_json_settings())
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                container.create_container()
            container.upload_blob(name, data, content_settings=_json_settings())
        return name

    def _delete_blob(self, name: str) -> None:
        """Best effort: an orphan left by a failure here is removed by the lifecycle rule later."""
        container = self._clients.blobs.get_container_client(messages.CLAIM_CHECK_CONTAINER)
        with contextlib.suppress(AzureError):
            container.delete_blob(name)

    def put(self, queue: str, body: str, event: CloudEvent) -> None:
        blob: str | None = None
        try:
            if messages.fits_inline(body):
                self._send(queue, body)
                return
            blob = self._store_blob(queue, body)
            self._send(queue, messages.claim_check_message(event.attributes, blob, len(body.encode("utf-8"))))
        except AzureError as exc:
            if blob is not None and isinstance(exc, HttpResponseError):
                # The queue service answered "no": nothing refers to the blob, and each retry
                # would leave one more orphan. After a timeout the reference may have landed
                # unseen, so the blob is kept (the lifecycle rule removes it if unused).
                self._delete_blob(blob)
            reason = f"{type(exc).__name__}: {clip(str(exc).splitlines()[0]) if str(exc) else ''}"
            if isinstance(exc, HttpResponseError) and exc.status_code == 413:
                raise EventTooLarge(reason) from exc
            raise StorageUnavailable(reason) from exc


def _json_settings() -> ContentSettings:
    from azure.storage.blob import ContentSettings  # only for claim checks

    return ContentSettings(content_type="application/cloudevents+json; charset=utf-8")
