"""A small v2 FunctionApp with timer triggers, a queue trigger and one HTTP route, for the host-parity tests.

Every invocation is appended to :data:`SEEN` with what the function was given.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

SEEN: list[dict[str, Any]] = []
_lock = threading.Lock()


def _timer(fn: str, timer: func.TimerRequest) -> None:
    with _lock:
        SEEN.append(
            {
                "fn": fn,
                "at": time.time(),
                "past_due": timer.past_due,
                "status": dict(getattr(timer, "schedule_status", None) or {}),
            }
        )


@app.function_name("every_second")
@app.timer_trigger(schedule="* * * * * *", arg_name="timer", use_monitor=True)
def every_second(timer: func.TimerRequest) -> None:
    _timer("every_second", timer)


@app.function_name("new_year")
@app.timer_trigger(schedule="0 0 0 1 Jan *", arg_name="clock", run_on_startup=True, use_monitor=False)
def new_year(clock: func.TimerRequest) -> None:
    _timer("new_year", clock)


@app.function_name("slow_tick")
@app.timer_trigger(schedule="*/1 * * * * *", arg_name="timer", use_monitor=False)
def slow_tick(timer: func.TimerRequest) -> None:
    _timer("slow_tick", timer)
    time.sleep(2.5)  # overlaps the next two occurrences: they are skipped, never run side by side


@app.function_name("on_admin_work")
@app.queue_trigger(arg_name="msg", queue_name="runner-admin", connection="AzureWebJobsStorage")
def on_admin_work(msg: QueueMessage) -> None:
    with _lock:
        SEEN.append({"fn": "on_admin_work", "at": time.time(), "body": msg.get_body().decode(), "id": msg.id})


@app.function_name("ping")
@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
