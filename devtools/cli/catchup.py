"""``dpctl catch-up``: read Altinn's events API and put every event on its queue through the webhook's core.

Each event goes through :func:`shared.ingest.handle` exactly as a single ``application/json`` POST
from Altinn would (the function the webhook adapter calls), so validation, routing, allow-lists and
durability are the same; a duplicate of an event already received is harmless, the handlers
deduplicate by event id.

The API (EV ``Controllers/EventsController.cs``): ``GET /events/api/v1/events?resource=…&after=…&size=…``
needs ``resource`` and ``after`` (``0``: from the oldest kept, 90 days), and gives the next page in the
``next`` header. It has no time filter, so ``--since TIME`` reads from the start and skips older events.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, NoReturn
from urllib.parse import urlencode

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from devtools.cli.context import Context
from devtools.cli.output import console, emit_json, fail, note
from shared.ingest import Policy, WebhookRequest, handle
from shared.maskinporten import AuthError, urllib_transport

EVENTS: Final = "/events/api/v1/events"
MAX_SIZE: Final = 1000
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 time (7 fractional digits allowed), or None when ``value`` is a cursor."""
    if value == "0" or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


def catch_up(
    ctx: typer.Context,
    resource: Annotated[str, typer.Option(help="the resource URN, e.g. urn:altinn:resource:super-simple-service")],
    since: Annotated[
        str,
        typer.Option(
            help="an event id (the cursor printed last time), 0 for everything kept (90 days), or an RFC 3339 time"
        ),
    ],
    size: Annotated[int, typer.Option(min=1, max=MAX_SIZE, help="events per page (Altinn caps at 1000)")] = MAX_SIZE,
    types: Annotated[list[str] | None, typer.Option("--type", help="only this type (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fetch the events Altinn kept and queue each one as the webhook would; prints the cursor to resume from."""
    context: Context = ctx.obj
    cutoff = parse_time(since)
    cursor = "0" if cutoff else since
    from shared.sink import QueueSink

    cfg = context.app_settings
    sink = QueueSink(context.storage)
    policy = Policy(cfg.allowed_resources, cfg.allowed_source_hosts)
    params = [("resource", resource), ("after", cursor), ("size", str(size))] + [("type", t) for t in types or []]
    url: str | None = f"{context.platform}{EVENTS}?{urlencode(params)}"
    counts: dict[str, int] = {"read": 0, "accepted": 0, "parked": 0, "validated": 0, "rejected": 0, "before_since": 0}
    rejected: list[dict[str, Any]] = []
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True, disable=as_json
    ) as progress:
        task = progress.add_task("reading events", total=None)
        while url:
            try:
                token = context.altinn().token()
                response = urllib_transport(
                    "GET",
                    url,
                    timeout=60,
                    body=None,
                    headers={"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"},
                )
            except (AuthError, OSError) as exc:
                _stop(f"reading {url.split('?')[0]}: {exc}", resource, cursor)
            if response.status != 200:
                _stop(
                    f"GET {url}: {response.status} {response.body[:300].decode('utf-8', 'replace')}", resource, cursor
                )
            page = response.json()
            if not page:
                break
            for event in page:
                counts["read"] += 1
                moment = parse_time(str(event.get("time", ""))) if cutoff else None
                if cutoff and moment is not None and moment < cutoff:
                    counts["before_since"] += 1
                    cursor = str(event.get("id"))
                    continue
                body = json.dumps(event).encode("utf-8")
                answer = handle(
                    WebhookRequest("POST", {"content-type": "application/json"}, body, "catch-up"), sink, policy
                )
                if answer.status == 200:
                    for item in json.loads(answer.body)["events"]:
                        counts[item["outcome"]] = counts.get(item["outcome"], 0) + 1
                elif answer.status >= 500:
                    _stop(
                        f"storage refused event {event.get('id')}: {answer.body.decode('utf-8', 'replace')}",
                        resource,
                        cursor,
                    )
                else:  # refused for good (invalid, outside the allow-lists): logged by the core; say so and go on
                    counts["rejected"] += 1
                    rejected.append(
                        {
                            "id": event.get("id"),
                            "status": answer.status,
                            "problem": json.loads(answer.body or b"{}").get("detail"),
                        }
                    )
                cursor = str(event.get("id"))
                progress.update(task, description=f"{counts['read']} read, {counts['accepted']} queued")
            url = _header(response.headers, "next")
    result = {**counts, "rejectedEvents": rejected, "cursor": cursor}
    if as_json:
        emit_json(result)
    else:
        console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))
        for item in rejected:
            console.print(f"[red]refused[/] {item['id']}: {item['status']} {item['problem']}")
        console.print(
            f"cursor: {cursor}\nresume with: dpctl --env {context.env.value} catch-up --resource {resource} "
            f"--since {cursor}"
        )


def _stop(message: str, resource: str, cursor: str) -> NoReturn:
    note(f"resume with: dpctl catch-up --resource {resource} --since {cursor}")
    fail(message)
