"""Timer triggers on their schedule, as ``func start`` runs them (schedules: :mod:`devtools.runner.schedules`).

What the host's TimerTrigger extension does and the runner does too (Timer trigger reference,
learn.microsoft.com azure-functions/functions-bindings-timer):

- ``runOnStartup`` fires once when the host starts;
- one invocation of a timer function at a time: the next occurrence is computed after the
  previous invocation returns, so a run that overlaps an occurrence skips it;
- the host logs the next five occurrences at startup.

``useMonitor`` is not honoured: the host keeps the schedule status in a storage blob to
detect an occurrence missed while it was down (``IsPastDue``); the runner keeps it in memory,
so ``past_due`` is always False and a restart never catches up. With ``useMonitor`` the
function still gets ``schedule_status`` (Last, Next, LastUpdated) from that memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from azure.functions.timer import TimerRequest

from devtools.runner.functions import TimerFunction
from devtools.runner.invoker import Invoker, InvokerClosed
from devtools.runner.schedules import IntervalSchedule, Schedule

log = logging.getLogger("devtools.runner")


def timer_request(use_monitor: bool, last: datetime | None, nxt: datetime) -> TimerRequest:
    """What the worker builds from the host's TimerInfo: without a monitor the host sends no ScheduleStatus."""
    status: dict[str, str] | None = None
    if use_monitor:
        status = {
            "Last": (last or datetime.min.replace(tzinfo=UTC)).isoformat(),
            "Next": nxt.isoformat(),
            "LastUpdated": datetime.now(UTC).isoformat(),
        }
    return TimerRequest(past_due=False, schedule_status=status, schedule={"AdjustForDST": True})


class TimerListener:
    """One thread per timer function: wait for the next occurrence, invoke, repeat."""

    def __init__(
        self,
        function: TimerFunction,
        invoker: Invoker,
        stopping: threading.Event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.function = function
        self.invoker = invoker
        self.stopping = stopping
        self.clock = clock
        self.last: datetime | None = None
        self.fired = 0
        self._thread = threading.Thread(target=self._run, name=f"timer-{function.name}", daemon=True)

    def announce(self, compact: bool = False) -> None:
        """Log the schedule: the host's five next occurrences, or (``compact``) one line with the next one."""
        fn = self.function
        upcoming: list[datetime] = []
        at = self.clock()
        for _ in range(1 if compact else 5):
            at = fn.schedule.next_after(at)
            upcoming.append(at)
        if compact:
            nxt = upcoming[0].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            log.info("Timer %s (%s): next at %s", fn.name, _describe(fn.schedule), nxt)
            return
        log.info(
            "The next 5 occurrences of the 'Functions.%s' schedule (%s) will be:\n%s",
            fn.name,
            _describe(fn.schedule),
            "\n".join(moment.strftime("%m/%d/%Y %H:%M:%SZ") for moment in upcoming),
        )

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        fn = self.function
        if fn.run_on_startup and not self._fire(self.clock(), fn.schedule.next_after(self.clock())):
            return
        while not self.stopping.is_set():
            due = fn.schedule.next_after(self.clock())
            # Event.wait may wake a little early; never fire before the occurrence.
            while (remaining := (due - self.clock()).total_seconds()) > 0:
                if self.stopping.wait(remaining):
                    return
            if not self._fire(due, fn.schedule.next_after(due)):
                return

    def _fire(self, at: datetime, nxt: datetime) -> bool:
        fn = self.function
        request = timer_request(fn.use_monitor, self.last, nxt)
        try:
            self.invoker.invoke(fn.name, fn.func, fn.arg_name, request, reason=f"Timer fired at {at.isoformat()}")
        except InvokerClosed:
            return False
        self.last = at
        self.fired += 1
        return True


def _describe(schedule: Schedule) -> str:
    return f"TimeSpan: '{schedule.text}'" if isinstance(schedule, IntervalSchedule) else f"Cron: '{schedule.text}'"
