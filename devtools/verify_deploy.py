"""After the first ``azd up``: check that the deployment in Azure is the one the code expects.

    make verify-deploy                       # values from `azd env get-values` (and the shell's variables)
    make verify-deploy ARGS="--prefer azd"   # when the shell's variables and azd's differ: azd's win
    python -m devtools.verify_deploy --resource-group RG --app FUNC --storage ST --workspace LOG --altinn tt02

An option names a value outright; else it is the shell's variable (AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP,
FUNCTION_APP_NAME, STORAGE_ACCOUNT_NAME, LOG_ANALYTICS_WORKSPACE_NAME, ALTINN_ENVIRONMENT) or azd's. Where the
shell and azd both have one and they differ, it refuses to run (exit 2, naming each with both values, before any
request) unless ``--prefer azd`` or ``--prefer shell`` says which wins: a stale ``export`` would otherwise point
the checks, the function-key listing and the POST to the webhook at another deployment.

With your ``az login`` (or any credential DefaultAzureCredential finds) it reads
the deployment through Azure Resource Manager's REST API and checks:

- the function list: one queue function per catalog queue, plus the webhook,
  the dialog API and the timers, exactly the functions this checkout defines;
- every catalog queue, table and blob container exists;
- the app settings are identity-based, with no connection string or key;
- the inbound IP allow list admits the chosen Altinn environment and denies the
  rest, and a POST from this machine to the webhook is refused (403);
- the host runs (read through ARM, which the allow list does not apply to);
- with ``--from-allowed-address`` (your address is in
  additionalAllowedIpAddresses): the webhook's OPTIONS handshake answers;
- telemetry arrives in the Log Analytics workspace.

Each check prints ok, FAIL or skip with what to do, and the last line is the
dashboard's link (main.bicep's output WORKBOOK_URL) when azd or the shell has it;
the exit code is 1 if any check failed. Nothing is written to Azure, and no key or setting value is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

ROOT = Path(__file__).resolve().parents[1]
ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
LOG_ANALYTICS = "https://api.loganalytics.io"
LOG_ANALYTICS_SCOPE = "https://api.loganalytics.io/.default"
WEB_API = "2024-04-01"
HOST_STATUS_API = "2022-03-01"
STORAGE_API = "2023-05-01"
WORKSPACE_API = "2023-09-01"

#: Altinn Events' outbound address and event source host per environment.
ALTINN = {
    "tt02": ("20.100.24.41/32", "platform.tt02.altinn.no"),
    "prod": ("20.100.46.139/32", "platform.altinn.no"),
}
#: Values that betray a key or a connection string in an app setting.
SECRET_MARKERS = ("AccountKey=", "SharedAccessSignature=", "DefaultEndpointsProtocol=", "sig=")


class Arm(Protocol):
    """JSON over HTTPS with a bearer token: Azure Resource Manager and the Log Analytics query API."""

    def get(self, url: str, scope: str) -> Any: ...

    def post(self, url: str, scope: str, body: Any = None) -> Any: ...


class ArmError(RuntimeError):
    def __init__(self, status: int, url: str, message: str) -> None:
        super().__init__(f"{status} from {url.split('?', maxsplit=1)[0]}: {message}")
        self.status = status


class RestArm:
    """The real thing: azure-core's pipeline with the user's credential (az login by default)."""

    def __init__(self, credential: Any, *, allow_http: bool = False) -> None:
        self._credential = credential
        self._allow_http = allow_http  # loopback test servers only

    def _send(self, method: str, url: str, scope: str, body: Any) -> Any:
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy
        from azure.core.rest import HttpRequest

        policies: list[Any] = [
            RetryPolicy(),
            BearerTokenCredentialPolicy(self._credential, scope),
        ]
        client: Any = PipelineClient(base_url=url, policies=policies)
        request = HttpRequest(method, url, json=body if method == "POST" else None)
        with client:
            response = client.send_request(request, enforce_https=not self._allow_http)
        if response.status_code >= 400:
            raise ArmError(response.status_code, url, response.text()[:300])
        return response.json() if response.content else None

    def get(self, url: str, scope: str) -> Any:
        return self._send("GET", url, scope, None)

    def post(self, url: str, scope: str, body: Any = None) -> Any:
        return self._send("POST", url, scope, body)


def unusable(value: str | None, *, url: bool = False) -> str | None:
    """Why ``value`` cannot go into a URL (None: it can): missing, blank, or a name with white space or ``/?#&%``."""
    if value is None or not value.strip():
        return "is missing"
    if any(c.isspace() for c in value) or (not url and any(c in "/?#&%" for c in value)):
        return f"{value!r} is not a name"
    return None


@dataclass(frozen=True)
class Target:
    subscription: str
    resource_group: str
    app: str
    storage: str
    workspace: str
    altinn: str
    arm: str = ARM
    log_analytics: str = LOG_ANALYTICS
    #: Where the app answers HTTP; by default https://<defaultHostName> read from ARM.
    webhook_base: str | None = None

    def __post_init__(self) -> None:
        """Every part of an ARM URL is a name: never an empty one (``.../resourceGroups//...``) or one with ``/?#``."""
        for name in ("subscription", "resource_group", "app", "storage", "workspace", "altinn", "arm", "log_analytics"):
            if problem := unusable(getattr(self, name), url=name in ("arm", "log_analytics")):
                raise ValueError(f"{name} {problem}")

    def id(self, provider: str, name: str) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/{provider}/{name}"

    @property
    def site(self) -> str:
        return f"{self.arm}{self.id('Microsoft.Web/sites', self.app)}"

    @property
    def account(self) -> str:
        return f"{self.arm}{self.id('Microsoft.Storage/storageAccounts', self.storage)}"


@dataclass(frozen=True)
class Expected:
    functions: frozenset[str]
    trigger_queues: frozenset[str]
    queues: frozenset[str]
    tables: frozenset[str]
    containers: frozenset[str]

    @staticmethod
    def from_checkout(root: Path = ROOT) -> Expected:
        """What this checkout deploys: its functions (indexed as the host does) and its catalog."""
        from devtools import export_catalog
        from devtools.runner.functions import load_app, read_functions
        from shared.events import catalog

        functions = read_functions(load_app(root))
        storage = export_catalog.build()
        return Expected(
            functions=frozenset(functions.names),
            # The parking queue has no trigger on purpose: parked events wait there for an operator.
            trigger_queues=frozenset(row.queue for row in catalog.CATALOG),
            queues=frozenset(storage["queues"]),
            tables=frozenset(storage["tables"]),
            containers=frozenset(storage["containers"].values()),
        )


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str = ""

    def __str__(self) -> str:
        status = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        return f"{status} {self.name}" + (f": {self.detail}" if self.detail else "")


HttpProbe = Callable[[str, str, Mapping[str, str]], tuple[int, dict[str, str]]]


def http_probe(method: str, url: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str]]:
    """One real HTTP request; the status and headers, whatever the status (a 3xx is answered, never followed:
    the URL carries the function key)."""
    import requests

    with requests.Session() as session:
        session.trust_env = False
        response = session.request(
            method,
            url,
            headers=dict(headers),
            data=b"{}" if method == "POST" else None,
            timeout=30,
            allow_redirects=False,
        )
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}


# --------------------------------------------------------------------------- the checks, on SDK models


def check_functions(envelopes: Iterable[Any], expected: Expected) -> list[Check]:
    """ARM names functions ``<app>/<function>``; queue triggers carry their queueName in config.bindings."""
    names = {str(e.name).split("/")[-1] for e in envelopes}
    queues = set()
    for envelope in envelopes:
        config = (envelope.properties.config if envelope.properties else None) or {}
        for binding in config.get("bindings", []):
            if str(binding.get("type", "")).lower() == "queuetrigger":
                queues.add(binding.get("queueName"))
    missing, extra = sorted(expected.functions - names), sorted(names - expected.functions)
    untriggered = sorted(expected.trigger_queues - queues)
    return [
        Check(
            "functions",
            not missing and not extra,
            f"{len(names)} deployed"
            + (f"; missing {missing} (was the code published? run `azd deploy`)" if missing else "")
            + (f"; not in this checkout {extra}" if extra else ""),
        ),
        Check(
            "queue triggers",
            not untriggered,
            f"one per catalog queue ({len(expected.trigger_queues)})"
            + (f"; no function listens on {untriggered}" if untriggered else ""),
        ),
    ]


def check_storage(kind: str, found: Iterable[str], expected: frozenset[str]) -> Check:
    missing = sorted(expected - set(found))
    return Check(
        kind,
        not missing,
        f"{len(expected)} expected" + (f"; missing {missing} (run `azd provision`)" if missing else ""),
    )


def check_app_settings(settings: Mapping[str, str], altinn: str) -> Check:
    problems = []
    prefix = "AzureWebJobsStorage"
    if prefix in settings:
        problems.append(f"{prefix} is set: a connection string, not the identity")
    if settings.get(f"{prefix}__credential") != "managedidentity":
        problems.append(f"{prefix}__credential is not 'managedidentity'")
    for service in ("blob", "queue", "table"):
        if not settings.get(f"{prefix}__{service}ServiceUri", "").startswith("https://"):
            problems.append(f"{prefix}__{service}ServiceUri is not an https endpoint")
    if not settings.get(f"{prefix}__clientId"):
        problems.append(f"{prefix}__clientId is empty")
    if "Authorization=AAD" not in settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", ""):
        problems.append("telemetry is not authenticated with the identity")
    problems += [
        f"{name} holds a key or connection string"
        for name, value in settings.items()
        if any(marker in value for marker in SECRET_MARKERS)
    ]
    host = ALTINN[altinn][1]
    if settings.get("ALLOWED_SOURCE_HOSTS") != host:
        problems.append(f"ALLOWED_SOURCE_HOSTS is not {host}")
    if not settings.get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"):
        problems.append("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT is not set")
    return Check("app settings", not problems, "; ".join(problems) or "identity-based, no key or connection string")


def check_ip_rules(config: Any, altinn: str) -> Check:
    address = ALTINN[altinn][0]
    other = next(a for env, (a, _) in ALTINN.items() if env != altinn)
    rules = config.properties.ip_security_restrictions or []
    allowed = {r.ip_address for r in rules if (r.action or "Allow") == "Allow"}
    problems = []
    if address not in allowed:
        problems.append(f"{address} (Altinn {altinn}) is not allowed")
    if other in allowed:
        problems.append(f"{other} (the other Altinn environment) is allowed")
    if config.properties.ip_security_restrictions_default_action != "Deny":
        problems.append("addresses not on the list are not denied (allowAllIps?)")
    return Check("IP allow list", not problems, "; ".join(problems) or f"Altinn {altinn} {address}, others denied")


def check_refused_from_here(status: int) -> Check:
    """Azure's front end answers 403 (Ip Forbidden) before the host sees the request."""
    if status == 403:
        return Check("webhook refuses this machine", True, "403: the IP allow list works")
    hint = "the app is open to this machine: is your address in additionalAllowedIpAddresses, or allowAllIps true?"
    return Check("webhook refuses this machine", False, f"{status}; {hint} (use --from-allowed-address if so)")


def check_handshake(status: int, headers: Mapping[str, str], origin: str) -> Check:
    ok = status == 200 and headers.get("webhook-allowed-origin") == origin
    return Check(
        "webhook OPTIONS handshake", ok, f"{status}, WebHook-Allowed-Origin {headers.get('webhook-allowed-origin')!r}"
    )


def check_host(status: Mapping[str, Any]) -> Check:
    state = status.get("state")
    errors = status.get("errors") or []
    detail = f"state {state}" + (f"; errors: {errors[:3]}" if errors else "")
    return Check("host runs", state == "Running", detail)


def check_telemetry(rows: int, minutes: int) -> Check:
    return Check(
        "telemetry arrives",
        rows > 0,
        f"{rows} trace(s)/request(s) in the last {minutes} min"
        + ("" if rows else " (the first can take a few minutes after the host starts; run again)"),
    )


# --------------------------------------------------------------------------- reading the deployment


def _guard(name: str, read: Callable[[], list[Check]]) -> list[Check]:
    try:
        return read()
    except ArmError as error:
        hint = " (your account needs Reader on the resource group)" if error.status in (401, 403) else ""
        return [Check(name, False, f"{error}{hint}")]
    except OSError as error:  # the webhook probe: requests' errors are OSErrors (no such host, a timeout)
        return [Check(name, False, f"could not reach it: {error}")]


def _functions(arm: Arm, target: Target, expected: Expected) -> list[Check]:
    from azure.mgmt.web.models import FunctionEnvelope

    envelopes = [FunctionEnvelope(e) for e in _all(arm, f"{target.site}/functions?api-version={WEB_API}")]
    return check_functions(envelopes, expected)


def _storage(arm: Arm, target: Target, expected: Expected) -> list[Check]:
    from azure.mgmt.storage.models import BlobContainer, StorageQueue, Table

    checks = []
    for kind, path, model, wanted in (
        ("queues", "queueServices/default/queues", StorageQueue, expected.queues),
        ("tables", "tableServices/default/tables", Table, expected.tables),
        ("containers", "blobServices/default/containers", BlobContainer, expected.containers),
    ):
        items = _all(arm, f"{target.account}/{path}?api-version={STORAGE_API}")
        checks.append(check_storage(kind, [str(model(item).name) for item in items], wanted))
    return checks


def _app_settings(arm: Arm, target: Target) -> list[Check]:
    from azure.mgmt.web.models import StringDictionary

    listed = StringDictionary(arm.post(f"{target.site}/config/appsettings/list?api-version={WEB_API}", ARM_SCOPE))
    return [check_app_settings(listed.properties or {}, target.altinn)]


def _ip_rules(arm: Arm, target: Target) -> list[Check]:
    from azure.mgmt.web.models import SiteConfigResource

    config = SiteConfigResource(arm.get(f"{target.site}/config/web?api-version={WEB_API}", ARM_SCOPE))
    return [check_ip_rules(config, target.altinn)]


def _host(arm: Arm, target: Target) -> list[Check]:
    # No SDK model: the body is the Functions host's admin status, proxied by ARM.
    return [
        check_host(arm.get(f"{target.site}/hostruntime/admin/host/status?api-version={HOST_STATUS_API}", ARM_SCOPE))
    ]


def _webhook(arm: Arm, target: Target, probe: HttpProbe, from_allowed_address: bool) -> list[Check]:
    from azure.mgmt.web.models import Site

    base = target.webhook_base
    if not base:
        properties = Site(arm.get(f"{target.site}?api-version={WEB_API}", ARM_SCOPE)).properties
        host = properties.default_host_name if properties else None
        if problem := unusable(host):
            return [
                Check(
                    "webhook refuses this machine",
                    False,
                    f"ARM's answer for {target.app} has no usable defaultHostName ({problem}): is the app deployed?",
                ),
                Check("webhook OPTIONS handshake", None, "skipped: no host name to send it to"),
            ]
        base = f"https://{host}"
    url = f"{base}/api/events"
    if from_allowed_address:
        return [
            Check("webhook refuses this machine", None, "skipped: --from-allowed-address"),
            *_handshake(arm, target.site, url, probe),
        ]
    status, _ = probe("POST", url, {"Content-Type": "application/json"})
    return [
        check_refused_from_here(status),
        Check(
            "webhook OPTIONS handshake",
            None,
            "skipped: needs an allowed address "
            "(add yours to additionalAllowedIpAddresses, then --from-allowed-address)",
        ),
    ]


def _telemetry(arm: Arm, target: Target, minutes: int) -> list[Check]:
    from azure.mgmt.loganalytics.models import Workspace

    workspace_id = target.id("Microsoft.OperationalInsights/workspaces", target.workspace)
    workspace = Workspace(arm.get(f"{target.arm}{workspace_id}?api-version={WORKSPACE_API}", ARM_SCOPE))
    customer_id = workspace.properties.customer_id if workspace.properties else None
    if problem := unusable(customer_id):
        return [Check("telemetry arrives", False, f"ARM's answer for {target.workspace} has no customerId ({problem})")]
    query = f"union isfuzzy=true AppTraces, AppRequests | where TimeGenerated > ago({minutes}m) | summarize n = count()"
    # The Log Analytics query API's answer: {"tables": [{"name", "columns", "rows"}]}.
    answer = arm.post(
        f"{target.log_analytics}/v1/workspaces/{customer_id}/query", LOG_ANALYTICS_SCOPE, {"query": query}
    )
    rows = answer["tables"][0]["rows"]
    return [check_telemetry(int(rows[0][0]) if rows else 0, minutes)]


def verify(
    arm: Arm,
    target: Target,
    expected: Expected,
    *,
    probe: HttpProbe = http_probe,
    from_allowed_address: bool = False,
    telemetry_minutes: int = 60,
) -> list[Check]:
    """Every check, each read through the SDK model of its ARM response."""
    steps: list[tuple[str, Callable[[], list[Check]]]] = [
        ("functions", lambda: _functions(arm, target, expected)),
        ("storage", lambda: _storage(arm, target, expected)),
        ("app settings", lambda: _app_settings(arm, target)),
        ("IP allow list", lambda: _ip_rules(arm, target)),
        ("host runs", lambda: _host(arm, target)),
        ("webhook", lambda: _webhook(arm, target, probe, from_allowed_address)),
        ("telemetry arrives", lambda: _telemetry(arm, target, telemetry_minutes)),
    ]
    checks: list[Check] = []
    for name, step in steps:
        checks += _guard(name, step)
    return checks


def _handshake(arm: Arm, site: str, url: str, probe: HttpProbe) -> list[Check]:
    keys = arm.post(f"{site}/functions/webhook/listkeys?api-version={WEB_API}", ARM_SCOPE) or {}
    key = keys.get("default") or next(iter(keys.values()), None)
    if not key:
        return [Check("webhook OPTIONS handshake", False, "the webhook has no function key yet")]
    origin = "eventgrid.azure.net"
    status, headers = probe("OPTIONS", f"{url}?code={key}", {"WebHook-Request-Origin": origin})
    return [check_handshake(status, headers, origin)]


def _all(arm: Arm, url: str) -> list[Any]:
    """Every item of an ARM list, following nextLink."""
    items: list[Any] = []
    next_url: str | None = url
    while next_url:
        page = arm.get(next_url, ARM_SCOPE) or {}
        items += page.get("value", [])
        next_url = page.get("nextLink")
    return items


# --------------------------------------------------------------------------- command line


#: What names the deployment: the option, and the variable the shell and azd (an output of main.bicep) call it.
VARIABLES: Final = {
    "subscription": "AZURE_SUBSCRIPTION_ID",
    "resource_group": "AZURE_RESOURCE_GROUP",
    "app": "FUNCTION_APP_NAME",
    "storage": "STORAGE_ACCOUNT_NAME",
    "workspace": "LOG_ANALYTICS_WORKSPACE_NAME",
    "altinn": "ALTINN_ENVIRONMENT",
}
PREFER: Final = ("azd", "shell")


def azd_values(shell: Mapping[str, str] | None = None) -> dict[str, str]:
    """The azd environment's values (deployment outputs included), or nothing without azd.

    ``shell`` is the environment azd runs in and whose PATH finds it (default: this process's).
    """
    shell = os.environ if shell is None else shell
    azd = shutil.which("azd", path=shell.get("PATH", os.defpath))
    if azd is None:
        return {}
    completed = subprocess.run(
        [azd, "env", "get-values", "--output", "json"], capture_output=True, text=True, check=False, env=dict(shell)
    )
    if completed.returncode != 0:
        return {}
    values = json.loads(completed.stdout)
    return {str(k): str(v) for k, v in values.items() if v is not None} if isinstance(values, dict) else {}


@dataclass(frozen=True)
class Disagreement:
    variable: str
    shell: str
    azd: str

    def __str__(self) -> str:
        return f"{self.variable}: the shell says {self.shell!r}, azd says {self.azd!r}"


def resolve(
    options: Mapping[str, str | None], shell: Mapping[str, str], azd: Mapping[str, str], prefer: str | None
) -> tuple[dict[str, str | None], list[Disagreement]]:
    """Each value from its option, else from the shell or azd; where those two disagree, ``prefer`` says which wins.

    Without ``prefer`` a disagreement is returned (the caller refuses): a stale ``export`` in the shell would
    otherwise point every check, the function-key listing and the POST at another deployment. Names compare
    case-insensitively, as Azure's do.
    """
    values: dict[str, str | None] = {}
    disagreements = []
    for name, variable in VARIABLES.items():
        if options.get(name):
            values[name] = options[name]
            continue
        from_shell, from_azd = (shell.get(variable) or "").strip(), (azd.get(variable) or "").strip()
        if from_shell and from_azd and from_shell.casefold() != from_azd.casefold() and prefer is None:
            disagreements.append(Disagreement(variable, from_shell, from_azd))
        first, second = (from_azd, from_shell) if prefer == "azd" else (from_shell, from_azd)
        values[name] = first or second or None
    return values, disagreements


def main(
    argv: list[str] | None = None,
    *,
    arm: Arm | None = None,
    env: Mapping[str, str] | None = None,
    endpoints: Mapping[str, str] | None = None,
) -> int:
    """``env`` is the shell's environment (default: this process's; its PATH finds azd).

    ``endpoints`` (arm, log_analytics, webhook_base) replace Azure's: for tests against local fakes.
    """
    parser = argparse.ArgumentParser(
        prog="python -m devtools.verify_deploy",
        description=__doc__.split("\n\n")[0],
        epilog="Each value comes from its option, else from the shell's variable or `azd env get-values`. "
        "When the shell and azd disagree (a stale export?) it refuses to run, names each variable with both "
        "values and exits 2 without contacting Azure, unless --prefer says which wins.",
    )
    parser.add_argument("--subscription", help="default: AZURE_SUBSCRIPTION_ID")
    parser.add_argument("--resource-group", help="default: AZURE_RESOURCE_GROUP")
    parser.add_argument("--app", help="default: FUNCTION_APP_NAME")
    parser.add_argument("--storage", help="default: STORAGE_ACCOUNT_NAME")
    parser.add_argument("--workspace", help="default: LOG_ANALYTICS_WORKSPACE_NAME")
    parser.add_argument("--altinn", choices=sorted(ALTINN), help="default: ALTINN_ENVIRONMENT")
    parser.add_argument(
        "--prefer",
        choices=PREFER,
        help="when a variable in the shell and in `azd env get-values` differ: use azd's or the shell's "
        "(default: refuse to run)",
    )
    parser.add_argument("--from-allowed-address", action="store_true", help="this machine is on the IP allow list")
    parser.add_argument("--telemetry-minutes", type=int, default=60)
    args = parser.parse_args(argv)
    shell = os.environ if env is None else env
    azd = azd_values(shell)
    given, disagreements = resolve({name: getattr(args, name) for name in VARIABLES}, shell, azd, args.prefer)
    if disagreements:
        options = " ".join(
            f"--{name.replace('_', '-')}" for name, v in VARIABLES.items() if v in {d.variable for d in disagreements}
        )
        parser.error(
            "the shell and the azd environment disagree on the deployment to check:\n  "
            + "\n  ".join(str(d) for d in disagreements)
            + "\nnothing was checked. Say which wins with --prefer azd or --prefer shell, give "
            + options
            + ", or unset the shell's stale variable(s)."
        )
    missing = [name for name, value in given.items() if not (value or "").strip()]
    if missing:
        parser.error(f"missing {', '.join(missing)}: run in the azd project after `azd up`, or give them as options")
    if given["altinn"] not in ALTINN:
        parser.error(f"ALTINN_ENVIRONMENT is {given['altinn']!r}; it must be one of {', '.join(sorted(ALTINN))}")
    try:
        target = Target(**{k: str(v) for k, v in given.items()}, **dict(endpoints or {}))
    except ValueError as exc:
        parser.error(str(exc))
    if arm is None:
        from azure.identity import DefaultAzureCredential

        arm = RestArm(DefaultAzureCredential())
    checks = verify(
        arm,
        target,
        Expected.from_checkout(),
        from_allowed_address=args.from_allowed_address,
        telemetry_minutes=args.telemetry_minutes,
    )
    from devtools.cli.output import redact

    for check in checks:
        print(redact(str(check)))
    failed = [c for c in checks if c.ok is False]
    print(f"verify-deploy: {len(checks) - len(failed)} of {len(checks)} checks ok or skipped, {len(failed)} failed")
    first, second = (shell, azd) if args.prefer == "shell" else (azd, shell)
    dashboard = first.get("WORKBOOK_URL") or second.get("WORKBOOK_URL")
    if dashboard:  # main.bicep's output: the workbook in the Azure portal
        print(f"dashboard: {dashboard}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
