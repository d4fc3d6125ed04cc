"""Run user functions the way the Python worker does: sync ones on a thread pool, async ones on one event loop.

Each invocation is logged with the host's own wording, so the output reads like ``func start``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from devtools.runner.functions import call_arguments

log = logging.getLogger("devtools.runner")


class Context(func.Context):
    """The worker's ``context`` argument, for functions that declare one."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local_storage = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local_storage

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


class InvokerClosed(RuntimeError):
    """The runner is stopping: nothing new starts (a queue message is left to reappear after its lease)."""


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    value: Any = None
    error: BaseException | None = None


def thread_count() -> int:
    """PYTHON_THREADPOOL_THREAD_COUNT like the worker; unset, the worker leaves it to ThreadPoolExecutor's default."""
    raw = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
    if raw:
        count = int(raw)
        if not 1 <= count <= 32:
            raise ValueError("PYTHON_THREADPOOL_THREAD_COUNT must be 1..32")
        return count
    return min(32, (os.cpu_count() or 1) + 4)


class Invoker:
    def __init__(self, function_directory: str, threads: int | None = None, *, compact: bool = False) -> None:
        self.function_directory = function_directory
        #: make run's console: "Executing"/"Executed" lines only at DEBUG (a failure is still an ERROR).
        self.level = logging.DEBUG if compact else logging.INFO
        self._pool = ThreadPoolExecutor(max_workers=threads or thread_count(), thread_name_prefix="invocation")
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="asyncio-worker", daemon=True)
        self._loop_thread.start()
        self.closed = False

    def invoke(
        self, name: str, fn: Callable[..., Any], arg_name: str, value: Any, *, reason: str, details: str | None = None
    ) -> Outcome:
        """Run one invocation and wait for it; never raises for user errors.

        Callers must not be pool threads themselves (the HTTP server and the queue listeners have their own),
        or a full pool would wait on itself.
        """
        if self.closed:
            raise InvokerClosed(name)
        invocation_id = str(uuid.uuid4())
        log.log(self.level, "Executing 'Functions.%s' (Reason='%s', Id=%s)", name, reason, invocation_id)
        if details:
            log.log(self.level, "%s", details)
        started = time.perf_counter()
        context = Context(invocation_id, name, self.function_directory)
        kwargs = call_arguments(fn, arg_name, value, context)
        try:
            if inspect.iscoroutinefunction(fn):
                result = asyncio.run_coroutine_threadsafe(fn(**kwargs), self._loop).result()
            else:
                result = self._pool.submit(fn, **kwargs).result()
        except Exception as exc:
            duration = (time.perf_counter() - started) * 1000
            log.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)\n"
                "Exception while executing function: Functions.%s. Result: Failure\n%s",
                name,
                invocation_id,
                duration,
                name,
                "".join(traceback.format_exception(exc)).rstrip(),
            )
            return Outcome(False, error=exc)
        duration = (time.perf_counter() - started) * 1000
        log.log(self.level, "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", name, invocation_id, duration)
        return Outcome(True, value=result)

    def shutdown(self) -> None:
        self.closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
