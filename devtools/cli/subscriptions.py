"""``dpctl subscriptions``: create, list, show, delete and wait for Altinn Events subscriptions.

``create`` enforces the API's rules before sending (sources in the project's notes on the Altinn
APIs, section 1), so that a mistake is reported here, precisely, rather than as a bare 400 or, worse,
as a subscription that silently matches nothing. Every rule that needs no token is checked before any
call (Maskinporten, Altinn, Azure Resource Manager): a broken rule is reported even when the network is
down; only the rule on the token's scopes is checked once the token is there.

- https endpoint (EV ``SubscriptionController``/``GenericSubscriptionService``; the certificate must be
  publicly trusted, DOCS setup-subscription);
- ``resourceFilter`` required and a URN (same EV files); here a resource's URN, ``urn:altinn:resource:<id>``,
  since every event carries one (the events API refuses any other, ``EventsController.ValidateQueryParams``)
  and a subscription to another URN would match nothing;
- no ``sourceFilter``, no ``alternativeSubjectFilter`` for Dialogporten (same EV files: 400);
- ``subjectFilter`` unless the token carries ``altinn:serviceowner``; ``includeSubunits`` needs it
  (DOCS setup-subscription; EV). The documented rule: EV's code has no 400 for a missing subject and leaves
  it to the resource's policy (403, or 201 where the policy permits), as the simulator does (EV-SUB-PDP);
  the CLI keeps the documented rule, so that a subscription is not made to depend on a policy;
- ``typeFilter`` one exact type and never an empty string, which matches nothing (DOCS setup-subscription).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

import typer
from rich.console import RenderableType

from devtools.cli import output
from devtools.cli.context import Context, Env
from devtools.cli.output import TIMED_OUT, JsonFlag, console, emit, fail, note
from shared.altinn.events_api import RESOURCE_PREFIX
from shared.altinn.http import HttpClient, HttpResponse
from shared.altinn.maskinporten import AuthError
from shared.errors import OutboundError
from shared.events.catalog import BY_TYPE

app = typer.Typer(help="Altinn Events subscriptions (/events/api/v1/subscriptions).", no_args_is_help=True)

PATH: Final = "/events/api/v1/subscriptions"
#: A list of every subscription of the caller; far above any seen.
MAX_ANSWER_BYTES: Final = 4 * 1024 * 1024
#: The subscriptions API's client: its own session, no redirects, TLS only (shared.altinn.http).
_HTTP: Final = HttpClient(pool_size=1)
SERVICE_OWNER: Final = "altinn:serviceowner"
LOOPBACK: Final = ("localhost", "127.0.0.1", "::1")
CACHE_WARNING: Final = (
    "Altinn caches subscriptions for up to an hour: a new subscription may miss events, "
    "and a deleted one may still receive them, for that long."
)


def rule_errors(
    *,
    endpoint: str | None,
    resource: str | None,
    subject: str | None,
    type_filter: str | None,
    include_subunits: bool,
    scopes: frozenset[str] | None,
    allow_http_loopback: bool = False,
) -> list[str]:
    """Every rule the request breaks (empty: it may be sent).

    ``endpoint`` None (built later from ``--app``, always https) and ``scopes`` None (no token yet) skip the
    rules on them.
    """
    errors = []
    if endpoint is not None:
        parts = urlsplit(endpoint)
        loopback_ok = allow_http_loopback and parts.scheme == "http" and parts.hostname in LOOPBACK
        if not parts.netloc or not (parts.scheme == "https" or loopback_ok):
            errors.append(f"endpoint must be an absolute https URL (Altinn refuses anything else), got {endpoint!r}")
    if not resource:
        errors.append("--resource is required (the resourceFilter, e.g. urn:altinn:resource:super-simple-service)")
    elif not resource.startswith(RESOURCE_PREFIX) or resource == RESOURCE_PREFIX or any(c.isspace() for c in resource):
        errors.append(f"--resource must be a URN {RESOURCE_PREFIX}<id> (a resource), got {resource[:120]!r}")
    if subject is not None and not subject.strip():
        errors.append("--subject must not be empty: Altinn accepts an empty subjectFilter and then matches nothing")
    if type_filter is not None and not type_filter.strip():
        errors.append("--type must not be empty: Altinn accepts an empty typeFilter and then matches nothing")
    elif type_filter is not None and ("*" in type_filter or "," in type_filter or " " in type_filter):
        errors.append(f"--type is one exact type (no wildcard, no list), got {type_filter!r}")
    elif type_filter is not None and type_filter.startswith("dialogporten.") and type_filter not in BY_TYPE:
        errors.append(f"--type {type_filter!r} is not a Dialogporten event type this app knows")
    if scopes is not None and subject is None and SERVICE_OWNER not in scopes:
        errors.append(
            f"--subject is required unless the token carries {SERVICE_OWNER} "
            "(e.g. urn:altinn:organization:identifier-no:<orgnr>)"
        )
    if include_subunits and subject is None:
        errors.append("--include-subunits needs --subject")
    return errors


def _call(context: Context, method: str, path: str, body: Any = None) -> HttpResponse:
    try:
        token = context.altinn().token()
    except AuthError as exc:
        fail(str(exc), hint="run `dpctl auth` to see the token problem alone")
    url = context.platform + path
    headers = {"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    try:
        return _HTTP(method, url, headers=headers, body=data, timeout=30, max_bytes=MAX_ANSWER_BYTES)
    except OutboundError as exc:
        fail(str(exc))


def _ok(response: HttpResponse, what: str, expected: tuple[int, ...] = (200,)) -> Any:  # noqa: RET503 - fail() raises
    if response.status in expected:
        return response.json() if response.body else None
    detail = response.body.decode("utf-8", "replace")[:500]
    try:
        parsed = response.json()
        if isinstance(parsed, dict):
            detail = str(parsed.get("detail") or parsed.get("title") or parsed)
        elif isinstance(parsed, str):  # Altinn's own refusals are a JSON string ("Missing or invalid endpoint ...")
            detail = parsed
    except ValueError:
        pass
    hints = {
        401: "the Altinn token was refused: check --env and `dpctl auth`",
        403: "the caller does not own this subscription, lacks altinn:events.subscribe, or the resource "
        "policy does not grant 'subscribe'",
        404: "no such subscription (or it was created with another scope set: /org/ vs /organisation/)",
    }
    fail(f"{what}: {response.status} {detail}", hint=hints.get(response.status))


def _table(subscriptions: list[dict[str, Any]]) -> RenderableType:
    table = output.table("id", "validated", "resourceFilter", "subjectFilter", "typeFilter", "endPoint", "created")
    for s in subscriptions:
        endpoint = str(s.get("endPoint", ""))  # the table shows its function key as code=***
        table.add_row(
            str(s.get("id")),
            "yes" if s.get("validated") else "[yellow]no[/]",
            str(s.get("resourceFilter")),
            str(s.get("subjectFilter") or ""),
            str(s.get("typeFilter") or ""),
            endpoint,
            str(s.get("created", "")),
        )
    return table


@app.command()
def create(
    ctx: typer.Context,
    resource: Annotated[str, typer.Option(help="resourceFilter, a URN: urn:altinn:resource:<id>")],
    endpoint: Annotated[str | None, typer.Option(help="the webhook URL with ?code=<function key>")] = None,
    app_name: Annotated[
        str | None, typer.Option("--app", help="the deployed function app (builds the URL and key)")
    ] = None,
    resource_group: Annotated[str | None, typer.Option(help="with --app: its resource group")] = None,
    subscription_id: Annotated[
        str | None,
        typer.Option(
            "--azure-subscription", envvar="AZURE_SUBSCRIPTION_ID", help="with --app: the Azure subscription id"
        ),
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="subjectFilter, e.g. urn:altinn:organization:identifier-no:<orgnr>")
    ] = None,
    type_filter: Annotated[str | None, typer.Option("--type", help="typeFilter: one exact event type")] = None,
    include_subunits: Annotated[bool, typer.Option(help="includeSubunits (needs --subject)")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a subscription; Altinn then pings the endpoint to validate it (see `wait`)."""
    context: Context = ctx.obj
    if (endpoint is None) == (app_name is None):
        fail("give exactly one of --endpoint URL or --app NAME")
    rules: dict[str, Any] = {
        "resource": resource,
        "subject": subject,
        "type_filter": type_filter,
        "include_subunits": include_subunits,
        "allow_http_loopback": context.env is Env.LOCAL,
    }
    # Every rule that needs no token, before any call: a mistake is named even with the network down.
    broken = rule_errors(endpoint=endpoint, scopes=None, **rules)
    if broken:
        fail("the subscription would be refused or match nothing:\n  - " + "\n  - ".join(broken))
    if app_name is not None:
        from devtools.cli.azure import webhook_url

        if not resource_group or not subscription_id:
            fail("--app needs --resource-group and --azure-subscription (or AZURE_SUBSCRIPTION_ID)")
        endpoint = webhook_url(app_name, resource_group, subscription_id)
    if endpoint is None:  # unreachable: one of the two was given; for the type checker
        fail("no endpoint")
    try:
        scopes = context.altinn().maskinporten.token().scopes
    except AuthError as exc:
        fail(str(exc))
    broken = rule_errors(endpoint=endpoint, scopes=scopes, **rules)
    if broken:
        fail("the subscription would be refused or match nothing:\n  - " + "\n  - ".join(broken))
    body: dict[str, Any] = {"endPoint": endpoint, "resourceFilter": resource}
    if subject is not None:
        body["subjectFilter"] = subject
    if type_filter is not None:
        body["typeFilter"] = type_filter
    if include_subunits:
        body["includeSubunits"] = True
    created = _ok(_call(context, "POST", PATH, body), "create", (201,))

    def draw(found: dict[str, Any]) -> None:
        console.print(_table([found]))
        console.print(f"Next: dpctl --env {context.env.value} subscriptions wait {found['id']}")

    emit(created, draw, as_json=as_json)
    note(CACHE_WARNING)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Your subscriptions (validated or not)."""
    found = _ok(_call(ctx.obj, "GET", PATH), "list")
    emit(found, lambda data: console.print(_table(data.get("subscriptions", []))), as_json=as_json)


@app.command()
def show(ctx: typer.Context, subscription: int, as_json: JsonFlag = False) -> None:
    """One subscription."""
    found = _ok(_call(ctx.obj, "GET", f"{PATH}/{subscription}"), f"subscription {subscription}")
    emit(found, lambda data: console.print(_table([data])), as_json=as_json)


@app.command()
def delete(ctx: typer.Context, subscription: int) -> None:
    """Delete a subscription (Altinn may deliver to it for up to an hour more)."""
    _ok(_call(ctx.obj, "DELETE", f"{PATH}/{subscription}"), f"delete {subscription}")
    emit({"id": subscription, "deleted": True}, lambda _: console.print(f"deleted subscription {subscription}"))
    note(CACHE_WARNING)


@app.command()
def wait(
    ctx: typer.Context,
    subscription: int,
    timeout: Annotated[float, typer.Option(help="seconds to wait for validated=true")] = 300.0,
    interval: Annotated[float, typer.Option(help="seconds between polls")] = 5.0,
) -> None:
    """Poll until the subscription is validated (exit 0) or the timeout passes (exit 4)."""
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for subscription {subscription} to be validated"):
        while True:
            found = _ok(_call(ctx.obj, "GET", f"{PATH}/{subscription}"), f"subscription {subscription}")
            if found.get("validated"):
                emit(
                    found,
                    lambda data: console.print(
                        f"subscription {subscription} is validated; events for it flow to {data.get('endPoint', '')}"
                    ),
                )
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    fail(
        f"subscription {subscription} is still not validated after {timeout:.0f} s",
        TIMED_OUT,
        hint=(
            "Altinn validates by POSTing a platform.events.validatesubscription ping to the endpoint; check that\n"
            "  - the app is up and the URL is right, with ?code=<function key> (a wrong key gives 401);\n"
            "  - the app's inbound IP allow list admits Altinn (TT02 20.100.24.41, prod 20.100.46.139);\n"
            "  - ALLOWED_SOURCE_HOSTS, if set, lists the platform host\n"
            "    (platform.tt02.altinn.no or platform.altinn.no);\n"
            "  - the certificate is publicly trusted (self-signed fails);\n"
            '  - the app\'s logs show `dialogporten.ingest {"outcome":"validated"...}`.'
        ),
    )
