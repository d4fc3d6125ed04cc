"""A small v2 FunctionApp that exercises what the runner supports; not the project's real app.

Queue functions record what they were given in the JSON-lines file named by ``RUNNER_RECORD``
(so that a runner in another process can be observed) and in :data:`SEEN` (in-process tests).
A message body ``{"fail": true}`` makes the function raise; ``{"sleep": s}`` makes it run for s seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

SEEN: list[dict[str, Any]] = []
_lock = threading.Lock()
CONCURRENCY = {"now": 0, "max": 0}


def _record(fn: str, msg: QueueMessage) -> dict[str, Any]:
    body = msg.get_body()
    entry = {
        "fn": fn,
        "id": msg.id,
        "body": body.decode("utf-8", errors="replace"),
        "dequeue_count": msg.dequeue_count,
        "has_pop_receipt": bool(msg.pop_receipt),
        "inserted": msg.insertion_time.isoformat() if msg.insertion_time else None,
        "at": time.time(),
    }
    with _lock:
        SEEN.append(entry)
        path = os.environ.get("RUNNER_RECORD")
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
    return entry


def _instructions(body: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@app.function_name("hello")
@app.route(route="hello/{name}", methods=["GET"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    payload = {
        "name": req.route_params["name"],
        "greeting": req.params.get("greeting", "hei"),
        "url": req.url,
        "greeting_setting": os.environ.get("RUNNER_GREETING"),
        "place_setting": os.environ.get("RUNNER_PLACE"),
        "cwd": os.getcwd(),
    }
    return func.HttpResponse(json.dumps(payload), mimetype="application/json", headers={"X-Runner-Test": "yes"})


@app.function_name("latest_item")
@app.route(route="items/latest", methods=["GET"])
def latest_item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("latest")


@app.function_name("item")
@app.route(route="items/{id:int}", methods=["GET", "DELETE"])
def item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"item {req.route_params['id']} {req.method}")


@app.function_name("echo")
@app.route(route="echo", methods=["POST", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        req.get_body(),
        status_code=201,
        headers={"Content-Type": req.headers.get("content-type", "application/octet-stream")},
    )


@app.function_name("boom")
@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("kaboom from the fixture app")


@app.function_name("async_http")
@app.route(route="async/{n:int}", methods=["GET"])
async def async_http(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.01)
    return func.HttpResponse(str(int(req.route_params["n"]) * 2), status_code=202)


@app.function_name("on_work")
@app.queue_trigger(arg_name="msg", queue_name="runner-work", connection="AzureWebJobsStorage")
def on_work(msg: QueueMessage) -> None:
    entry = _record("on_work", msg)
    todo = _instructions(entry["body"])
    with _lock:
        CONCURRENCY["now"] += 1
        CONCURRENCY["max"] = max(CONCURRENCY["max"], CONCURRENCY["now"])
    try:
        if todo.get("sleep"):
            time.sleep(float(todo["sleep"]))
        if todo.get("fail"):
            raise ValueError(f"asked to fail (attempt {msg.dequeue_count})")
    finally:
        with _lock:
            CONCURRENCY["now"] -= 1


@app.function_name("on_async_work")
@app.queue_trigger(arg_name="message", queue_name="runner-async", connection="RunnerStorage")
async def on_async_work(message: QueueMessage, context: func.Context) -> None:
    await asyncio.sleep(0.01)
    _record(f"on_async_work:{context.function_name}", message)


@app.function_name("every_minute")
@app.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=False)
def every_minute(timer: func.TimerRequest) -> None:
    with _lock:
        SEEN.append({"fn": "every_minute", "at": time.time(), "past_due": timer.past_due})
