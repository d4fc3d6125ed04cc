"""A fake of Azure Resource Manager, the Log Analytics query API and the app's front end, on loopback.

No Azure exists here and no management-API response could be recorded, so the
responses are SYNTHETIC: built from the catalog, shaped after the published
REST API references of each call (and checked by a test against the Azure
management SDK models, so that they cannot hold a property ARM never returns):

- Web Apps - List Functions: GET {site}/functions -> {"value": [FunctionEnvelope]},
  ``name`` "<app>/<function>", ``properties.config.bindings`` as the host indexed them;
- Web Apps - List Application Settings: POST {site}/config/appsettings/list -> StringDictionary;
- Web Apps - Get Configuration: GET {site}/config/web -> SiteConfigResource;
- Web Apps - Get: GET {site} -> Site (``properties.defaultHostName``);
- Web Apps - List Function Keys: POST {site}/functions/{name}/listkeys -> {"default": "..."};
- the host status through ARM: GET {site}/hostruntime/admin/host/status -> {"state", "version", "errors"}
  (the Functions host's admin API; no SDK model);
- Queue/Table/Blob Containers - List: GET {account}/queueServices/default/queues etc. -> {"value": [...], "nextLink"?};
- Workspaces - Get: GET {workspace} -> Workspace (``properties.customerId``);
- Log Analytics Query: POST /v1/workspaces/{customerId}/query -> {"tables": [{"name", "columns", "rows"}]}.

The front end answers POST /api/events with 403 "Ip Forbidden", as App Service's
access restrictions do for an address not on the list, and OPTIONS with the
webhook handshake when the function key is given.

Every request must carry a bearer token and (for ARM) an api-version; the fake
records them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devtools.verify_deploy import ALTINN, Expected

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
RESOURCE_GROUP = "rg-dialogporten-tt02"
APP = "func-dp-events-abc123"
STORAGE = "stabc123"
WORKSPACE = "log-dp-events-abc123"
CUSTOMER_ID = "11111111-2222-3333-4444-555555555555"
FUNCTION_KEY = "synthetic-function-key"  # a fixture, never a real key


def _rg() -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers"


SITE = f"{_rg()}/Microsoft.Web/sites/{APP}"
ACCOUNT = f"{_rg()}/Microsoft.Storage/storageAccounts/{STORAGE}"
WORKSPACE_ID = f"{_rg()}/Microsoft.OperationalInsights/workspaces/{WORKSPACE}"


def function_envelope(name: str, queue: str | None) -> dict[str, Any]:
    if queue is not None:
        bindings = [
            {
                "name": "msg",
                "type": "queueTrigger",
                "direction": "IN",
                "queueName": queue,
                "connection": "AzureWebJobsStorage",
            }
        ]
    else:
        bindings = [{"name": "req", "type": "httpTrigger", "direction": "IN", "authLevel": "FUNCTION"}]
    return {
        "id": f"{SITE}/functions/{name}",
        "name": f"{APP}/{name}",
        "type": "Microsoft.Web/sites/functions",
        "properties": {"language": "python", "isDisabled": False, "config": {"bindings": bindings}},
    }


def healthy(expected: Expected, altinn: str = "tt02") -> dict[tuple[str, str], Any]:
    """(method, path) -> JSON body of a deployment that matches ``expected``."""
    from devtools.runner.functions import load_app, read_functions
    from devtools.verify_deploy import ROOT

    # The bindings the host would index from this checkout's function_app.py.
    queue_of = {f.name: f.queue_name for f in read_functions(load_app(ROOT)).queue}
    address, host = ALTINN[altinn]
    queues = sorted(expected.queues)
    half = len(queues) // 2

    def listed(kind: str, names: list[str]) -> list[dict[str, Any]]:
        return [
            {"id": f"{ACCOUNT}/{kind}/{n}", "name": n, "type": f"Microsoft.Storage/storageAccounts/{kind}"}
            for n in names
        ]

    queue_path = f"{ACCOUNT}/queueServices/default/queues"
    return {
        ("GET", f"{SITE}/functions"): {
            "value": [function_envelope(name, queue_of.get(name)) for name in sorted(expected.functions)]
        },
        ("POST", f"{SITE}/config/appsettings/list"): {
            "id": f"{SITE}/config/appsettings",
            "name": "appsettings",
            "type": "Microsoft.Web/sites/config",
            "properties": {
                "AzureWebJobsStorage__credential": "managedidentity",
                "AzureWebJobsStorage__clientId": "22222222-0000-0000-0000-000000000000",
                "AzureWebJobsStorage__blobServiceUri": f"https://{STORAGE}.blob.core.windows.net/",
                "AzureWebJobsStorage__queueServiceUri": f"https://{STORAGE}.queue.core.windows.net/",
                "AzureWebJobsStorage__tableServiceUri": f"https://{STORAGE}.table.core.windows.net/",
                "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                "IngestionEndpoint=https://norwayeast-0.in.applicationinsights.azure.com/",
                "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=22222222-0000-0000-0000-000000000000;"
                "Authorization=AAD",
                "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "1100000",
                "ALLOWED_RESOURCES": "",
                "ALLOWED_SOURCE_HOSTS": host,
            },
        },
        ("GET", f"{SITE}/config/web"): {
            "id": f"{SITE}/config/web",
            "name": "web",
            "type": "Microsoft.Web/sites/config",
            "properties": {
                "minTlsVersion": "1.2",
                "http20Enabled": True,
                "ipSecurityRestrictions": [
                    {"ipAddress": address, "action": "Allow", "priority": 100, "name": f"altinn-{altinn}"},
                    {
                        "ipAddress": "Any",
                        "action": "Deny",
                        "priority": 2147483647,
                        "name": "Deny all",
                        "description": "Deny all access",
                    },
                ],
                "ipSecurityRestrictionsDefaultAction": "Deny",
                "scmIpSecurityRestrictionsDefaultAction": "Allow",
            },
        },
        ("GET", SITE): {
            "id": SITE,
            "name": APP,
            "type": "Microsoft.Web/sites",
            "kind": "functionapp,linux",
            "location": "Norway East",
            "properties": {"state": "Running", "defaultHostName": f"{APP}.azurewebsites.net", "httpsOnly": True},
        },
        ("POST", f"{SITE}/functions/webhook/listkeys"): {"default": FUNCTION_KEY},
        ("GET", f"{SITE}/hostruntime/admin/host/status"): {
            "id": "a1b2c3",
            "state": "Running",
            "version": "4.1036.1.1",
            "versionDetails": "4.1036.1.1 Commit hash: synthetic",
            "platformVersion": "",
            "instanceId": "synthetic",
            "computerName": "",
            "processUptime": 123456,
            "functionAppContentEditingState": "NotAllowed",
            "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "4.20.0"},
        },
        # Two pages: the checker must follow nextLink.
        ("GET", queue_path): {
            "value": listed("queueServices/default/queues", queues[:half]),
            "nextLink": f"{queue_path}?api-version=2023-05-01&$skipToken=page2",
        },
        ("GET", f"{queue_path}#page2"): {"value": listed("queueServices/default/queues", queues[half:])},
        ("GET", f"{ACCOUNT}/tableServices/default/tables"): {
            "value": listed("tableServices/default/tables", sorted(expected.tables))
        },
        ("GET", f"{ACCOUNT}/blobServices/default/containers"): {
            "value": listed("blobServices/default/containers", [*sorted(expected.containers), "azure-webjobs-hosts"])
        },
        ("GET", WORKSPACE_ID): {
            "id": WORKSPACE_ID,
            "name": WORKSPACE,
            "type": "Microsoft.OperationalInsights/workspaces",
            "location": "norwayeast",
            "properties": {"customerId": CUSTOMER_ID, "provisioningState": "Succeeded", "retentionInDays": 30},
        },
        ("POST", f"/v1/workspaces/{CUSTOMER_ID}/query"): {
            "tables": [{"name": "PrimaryResult", "columns": [{"name": "n", "type": "long"}], "rows": [[42]]}]
        },
    }


@dataclass
class FakeAzure:
    responses: dict[tuple[str, str], Any]
    #: (method, path) -> HTTP status to answer instead (e.g. 403 for a missing role).
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    #: What the front end answers a POST to /api/events from "this machine".
    webhook_post_status: int = 403
    requests: list[tuple[str, str, dict[str, list[str]], str]] = field(default_factory=list)
    base: str = ""


@contextmanager
def serve(fake: FakeAzure) -> Iterator[FakeAzure]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
            return

        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            fake.requests.append((self.command, url.path, query, self.headers.get("Authorization", "")))
            if url.path == "/api/events":
                if self.command == "POST":
                    self._answer(fake.webhook_post_status, {"message": "Ip Forbidden"})
                elif self.command == "OPTIONS" and query.get("code") == [FUNCTION_KEY]:
                    origin = self.headers.get("WebHook-Request-Origin", "")
                    self._answer(200, None, {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
                else:
                    self._answer(401, None)
                return
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                self._answer(401, {"error": {"code": "AuthenticationFailed", "message": "no bearer token"}})
                return
            key = (self.command, url.path)
            if "$skipToken" in query:
                key = (self.command, f"{url.path}#page2")
            if not url.path.startswith("/v1/") and "api-version" not in query:
                self._answer(400, {"error": {"code": "MissingApiVersionParameter", "message": "api-version"}})
            elif key in fake.errors:
                self._answer(fake.errors[key], {"error": {"code": "AuthorizationFailed", "message": "synthetic"}})
            elif key in fake.responses:
                self._answer(200, fake.responses[key])
            else:
                self._answer(404, {"error": {"code": "ResourceNotFound", "message": f"{key} not faked"}})

        do_GET = do_POST = do_OPTIONS = _handle  # http.server's naming

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    # nextLink must point at this server too.
    for body in fake.responses.values():
        if isinstance(body, dict) and isinstance(body.get("nextLink"), str) and body["nextLink"].startswith("/"):
            body["nextLink"] = fake.base + body["nextLink"]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
