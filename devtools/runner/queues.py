"""Queue triggers with the semantics of the WebJobs storage-queues extension (``QueueListener``/``QueueProcessor``).

Per queue: fetch up to ``batchSize`` messages with a long lease (10 minutes in the host, renewed at half
time while the function runs); fetch again as soon as the number in flight is at most
``newBatchThreshold``; when a fetch finds nothing, back off exponentially from 100 ms to
``maxPollingInterval``. Per message: a dequeue count above ``maxDequeueCount`` goes straight to
``<queue>-poison``; success deletes; failure either moves it to ``<queue>-poison`` (dequeue count at
``maxDequeueCount``) or makes it visible again after ``visibilityTimeout``. A body that is not valid
base64 (with ``messageEncoding: base64``) goes to the poison queue without an invocation, as the
extension's ``MessageDecodingFailed`` handler does.
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FuncQueueMessage
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from devtools.runner.config import MIN_POLLING_INTERVAL, QueueOptions
from devtools.runner.functions import QueueFunction
from devtools.runner.invoker import Invoker, InvokerClosed

log = logging.getLogger("devtools.runner")

#: Queue names are at most 63 characters; the extension gives no poison queue to a queue that cannot take the suffix.
POISON_SUFFIX = "-poison"
MAX_QUEUE_NAME = 63


def poison_queue_name(queue: str) -> str | None:
    if queue.endswith(POISON_SUFFIX) or len(queue) + len(POISON_SUFFIX) > MAX_QUEUE_NAME:
        return None
    return queue + POISON_SUFFIX


class Backoff:
    """RandomizedExponentialBackoffStrategy: reset to the minimum after a find, otherwise double (+-20%) to the max."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum, self.maximum = minimum, max(minimum, maximum)
        self._exponent = 0

    def next(self, found_since_last: bool) -> float:
        if found_since_last:
            self._exponent = 0
            return self.minimum
        self._exponent = min(self._exponent + 1, 30)
        delay = self.minimum * (2**self._exponent) * random.uniform(0.8, 1.2)
        return float(min(self.maximum, delay))


class DecodeError(ValueError):
    pass


def decode_body(raw: str, encoding: str) -> bytes:
    if encoding == "none":
        return raw.encode("utf-8")
    # .NET's Convert.FromBase64String tolerates whitespace but nothing else.
    compact = "".join(raw.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(str(exc)) from exc


@dataclass
class _Lease:
    """The current pop receipt; renewals and completion swap it under the lock."""

    message: QueueMessage
    lock: threading.Lock
    done: bool = False


class _Renewer:
    """One timer per listener renewing the lease of every message in flight at half the lease.

    A thread per message cost about 75 µs to start and stop for every message, almost
    always for nothing: renewals are due only for a function running longer than half the lease.
    """

    def __init__(self, queue: QueueClient, lease_seconds: float, stopping: threading.Event) -> None:
        self.queue = queue
        self.lease_seconds = lease_seconds
        self.stopping = stopping
        self._due: dict[int, tuple[float, _Lease]] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, lease: _Lease) -> None:
        with self._cond:
            self._due[id(lease)] = (time.monotonic() + self.lease_seconds / 2, lease)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-renewal", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def remove(self, lease: _Lease) -> None:
        with self._cond:
            self._due.pop(id(lease), None)

    def _run(self) -> None:
        while not self.stopping.is_set():
            with self._cond:
                now = time.monotonic()
                due = [lease for at, lease in self._due.values() if at <= now]
                if not due:
                    nearest = min((at for at, _ in self._due.values()), default=now + 1.0)
                    self._cond.wait(min(1.0, max(0.0, nearest - now)))
                    continue
                for lease in due:
                    self._due[id(lease)] = (now + self.lease_seconds / 2, lease)
            for lease in due:
                self._renew(lease)

    def _renew(self, lease: _Lease) -> None:
        with lease.lock:
            if lease.done:
                return
            try:
                receipt = self.queue.update_message(
                    lease.message.id,
                    lease.message.pop_receipt,
                    visibility_timeout=max(1, round(self.lease_seconds)),
                )
            except AzureError as exc:
                log.warning("Could not renew the lease on message '%s': %s", lease.message.id, _short(exc))
                return
            lease.message.pop_receipt = receipt.pop_receipt
            lease.message.next_visible_on = receipt.next_visible_on


class QueueListener:
    def __init__(
        self,
        function: QueueFunction,
        *,
        service: QueueServiceClient,
        options: QueueOptions,
        invoker: Invoker,
        lease_seconds: float,
        stopping: threading.Event,
    ) -> None:
        self.function = function
        self.options = options
        self.invoker = invoker
        self.lease_seconds = lease_seconds
        self.stopping = stopping
        # No encode/decode policies: the runner decodes itself so that a bad body can be told apart and
        # the poison copy is byte for byte the original, as the extension's non-encoding client does.
        self.queue: QueueClient = service.get_queue_client(function.queue_name)
        poison = poison_queue_name(function.queue_name)
        self.poison: QueueClient | None = service.get_queue_client(poison) if poison else None
        self.threshold = options.effective_new_batch_threshold
        self._told_missing = False
        self._in_flight: set[Future[None]] = set()
        self._cond = threading.Condition()
        # Every message in flight has its own thread, which waits on a worker thread for the user code:
        # at most batchSize + newBatchThreshold per queue, as in the host.
        self._messages = ThreadPoolExecutor(
            max_workers=options.batch_size + self.threshold, thread_name_prefix=f"queue-{function.queue_name}"
        )
        self._thread = threading.Thread(target=self._poll, name=f"listener-{function.queue_name}", daemon=True)
        self._renewer = _Renewer(self.queue, lease_seconds, stopping)

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._in_flight)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None) -> None:
        self._thread.join(timeout)

    def wait_drained(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._in_flight, timeout)

    def close(self) -> None:
        self._messages.shutdown(wait=False, cancel_futures=False)

    # The poll loop: QueueListener.ExecuteAsync and its timer.

    def _poll(self) -> None:
        backoff = Backoff(MIN_POLLING_INTERVAL, self.options.max_polling_interval)
        exists: bool | None = None
        found_since_delay = False
        failing = False
        while not self.stopping.is_set():
            batch: list[QueueMessage] = []
            try:
                if not exists:
                    exists = self._exists()
                    if not exists and not self._told_missing:
                        # The host does not create trigger queues either; it keeps polling until one appears.
                        log.info("Queue '%s' does not exist (yet): polling until it does.", self.function.queue_name)
                        self._told_missing = True
                if exists:
                    batch = list(
                        self.queue.receive_messages(
                            messages_per_page=self.options.batch_size,
                            max_messages=self.options.batch_size,
                            visibility_timeout=max(1, round(self.lease_seconds)),
                        )
                    )
                if failing:
                    log.info("Polling queue '%s' works again.", self.function.queue_name)
                    failing = False
            except AzureError as exc:
                exists = None  # as the host does: any error resets the existence check
                # Once per outage, not once per poll: with Azurite down, every queue would repeat it forever.
                log.log(
                    logging.DEBUG if failing else logging.WARNING,
                    "Polling queue '%s' failed: %s",
                    self.function.queue_name,
                    _short(exc),
                )
                failing = True
            if batch:
                found_since_delay = True
                for message in batch:
                    self._start(message)
                self._wait_for_threshold()
                continue
            self.stopping.wait(backoff.next(found_since_delay))
            found_since_delay = False

    def _exists(self) -> bool:
        try:
            self.queue.get_queue_properties()
        except ResourceNotFoundError:
            return False
        return True

    def _start(self, message: QueueMessage) -> None:
        future = self._messages.submit(self._process, message)
        with self._cond:
            self._in_flight.add(future)
        future.add_done_callback(self._finished)

    def _finished(self, future: Future[None]) -> None:
        with self._cond:
            self._in_flight.discard(future)
            self._cond.notify_all()
        exc = future.exception() if not future.cancelled() else None
        if exc is not None:
            log.error("Queue message handling for '%s' failed: %s", self.function.queue_name, _short(exc))

    def _wait_for_threshold(self) -> None:
        with self._cond:
            while len(self._in_flight) > self.threshold and not self.stopping.is_set():
                self._cond.wait(0.5)

    # One message: QueueListener.ProcessMessageAsync and QueueProcessor.

    def _process(self, message: QueueMessage) -> None:
        lease = _Lease(message, threading.Lock())
        if message.dequeue_count is not None and message.dequeue_count > self.options.max_dequeue_count:
            self._to_poison(lease)
            return
        try:
            body = decode_body(str(message.content), self.options.message_encoding)
        except DecodeError as exc:
            log.warning(
                "Message '%s' on queue '%s' is not valid base64 (messageEncoding is base64): %s",
                message.id,
                self.function.queue_name,
                exc,
            )
            self._to_poison(lease)
            return
        if self.invoker.closed:
            return  # stopping: not started, so left leased; it reappears after the lease as after a host restart
        renewer = self._renew_while_running(lease)
        try:
            outcome = self.invoker.invoke(
                self.function.name,
                self.function.func,
                self.function.arg_name,
                self._binding_value(message, body),
                reason=f"New queue message detected on '{self.function.queue_name}'.",
                details=f"Trigger Details: MessageId: {message.id}, DequeueCount: {message.dequeue_count}, "
                f"InsertedOn: {message.inserted_on.isoformat() if message.inserted_on else ''}",
            )
        except InvokerClosed:
            return
        finally:
            renewer()
        if outcome.succeeded:
            self._delete(lease)
        elif self.poison is None:
            pass  # the extension leaves it invisible for the rest of the lease: no fast infinite retry loop
        elif (message.dequeue_count or 0) >= self.options.max_dequeue_count:
            self._to_poison(lease)
        else:
            self._release(lease)

    @staticmethod
    def _binding_value(message: QueueMessage, body: bytes) -> FuncQueueMessage:
        return FuncQueueMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )

    def _renew_while_running(self, lease: _Lease) -> Callable[[], None]:
        """Keep the message invisible while the function runs: renewed at half the lease, like the host's timer."""
        self._renewer.add(lease)
        return lambda: self._renewer.remove(lease)

    def _delete(self, lease: _Lease) -> None:
        with lease.lock:
            lease.done = True
            try:
                self.queue.delete_message(lease.message.id, lease.message.pop_receipt)
            except ResourceNotFoundError:
                log.debug("Message '%s' was already gone", lease.message.id)
            except HttpResponseError as exc:
                if exc.status_code != 400:  # 400: pop receipt mismatch; someone else owns it now
                    raise

    def _release(self, lease: _Lease) -> None:
        with lease.lock:
            lease.done = True
            try:
                self.queue.update_message(
                    lease.message.id,
                    lease.message.pop_receipt,
                    visibility_timeout=round(self.options.visibility_timeout),
                )
            except ResourceNotFoundError:
                pass
            except HttpResponseError as exc:
                if exc.status_code != 400:
                    raise

    def _to_poison(self, lease: _Lease) -> None:
        if self.poison is None:
            return
        log.warning(
            "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
            self.options.max_dequeue_count,
            self.poison.queue_name,
        )
        content = str(lease.message.content)
        try:
            self.poison.send_message(content)
        except ResourceNotFoundError:
            try:
                self.poison.create_queue()
            except HttpResponseError as exc:
                if exc.status_code != 409:
                    raise
            self.poison.send_message(content)
        self._delete(lease)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def describe(options: QueueOptions, lease: float) -> dict[str, Any]:
    return {
        "BatchSize": options.batch_size,
        "NewBatchThreshold": options.effective_new_batch_threshold,
        "MaxDequeueCount": options.max_dequeue_count,
        "VisibilityTimeout": options.visibility_timeout,
        "MaxPollingInterval": options.max_polling_interval,
        "MessageEncoding": options.message_encoding,
        "MessageLease": lease,
    }
