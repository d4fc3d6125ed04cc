"""The deployed app's webhook URL with its function key, through Azure Resource Manager.

REST API (learn.microsoft.com, "Web Apps - Get" and "Web Apps - List Function Keys", api-version
2024-04-01): ``GET .../providers/Microsoft.Web/sites/{app}`` gives ``properties.defaultHostName``;
``POST .../sites/{app}/functions/{function}/listkeys`` gives the function's keys as ``{name: value}``.
The key named ``altinn`` (docs/deploy.md's advice: a key of Altinn's own) wins over ``default``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from devtools.cli.output import fail
from shared.altinn.http import HttpClient, HttpResponse, Transport
from shared.errors import OutboundError

ARM: Final = "https://management.azure.com"
API_VERSION: Final = "2024-04-01"
FUNCTION: Final = "webhook"


def _arm_token() -> str:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential().get_token(f"{ARM}/.default").token


def webhook_url(
    app: str,
    resource_group: str,
    subscription_id: str,
    *,
    arm: str = ARM,
    token: str | None = None,
    transport: Transport | None = None,
) -> str:
    bearer = token or _arm_token()
    send: Transport = transport or HttpClient(pool_size=1)
    site = f"{arm}/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Web/sites/{app}"
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}

    def call(method: str, url: str) -> Any:
        try:
            response: HttpResponse = send(
                method, url, headers=headers, body=b"" if method == "POST" else None, timeout=30
            )
        except OutboundError as exc:
            fail(f"Azure Resource Manager could not be reached: {exc}")
        if response.status != 200:
            text = response.body[:300].decode("utf-8", "replace")
            fail(
                f"{method} {url.split('?', maxsplit=1)[0]}: {response.status} {text}",
                hint="check --app, --resource-group, the subscription and your az login",
            )
        return json.loads(response.body)

    host = call("GET", f"{site}?api-version={API_VERSION}")["properties"]["defaultHostName"]
    keys = call("POST", f"{site}/functions/{FUNCTION}/listkeys?api-version={API_VERSION}")
    key = keys.get("altinn") or keys.get("default")
    if not key:
        fail(f"the function {FUNCTION!r} of {app} has no key named 'altinn' or 'default'")
    return f"https://{host}/api/events?code={key}"
