"""Rules that stand in for the Bicep compiler and for Azure Resource Manager.

Each rule reads the parsed templates and returns findings; an empty list means
the templates pass. Each rule's docstring names its source. Every rule is
proven by a test that feeds it a broken copy of the real templates.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.checks.infra.bicep import Template, is_loop, loop_locals, loop_source, walk


@dataclass(frozen=True, order=True)
class Finding:
    rule: str
    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: [{self.rule}] {self.message}"


Rule = Callable[[list[Template], Path], list[Finding]]


def _rel(template: Template, root: Path) -> str:
    try:
        return template.path.relative_to(root).as_posix()
    except ValueError:
        return template.path.as_posix()


def _symbol_groups(template: Template) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for kind in ("resources", "modules"):
        for symbol, declared in template.tree.get(kind, {}).items():
            yield kind[:-1], symbol, declared


# --------------------------------------------------------------------------- deploy-time constants


def deploy_time_constants(templates: list[Template], root: Path) -> list[Finding]:
    """Values ARM needs before it deploys anything must not read deployed resources.

    - the array of every ``for`` expression (compile error BCP178), and the body
      of a ``for`` in a variable (BCP182): a loop is expanded when the
      deployment starts;
    - the ``name`` of every resource and module, including ``existing`` ones
      (BCP120), and the ``scope`` of an ``existing`` resource;
    - the ``if`` condition of a resource or module (BCP177).

    A runtime value is a resource's property other than id, name, type and
    apiVersion, a module's outputs, or reference()/list*(), read directly or
    through variables. Sources: the Bicep compiler
    (src/Bicep.Core/TypeSystem/DeployTimeConstantValidator.cs, diagnostics BCP120,
    BCP177, BCP178, BCP182 in src/Bicep.Core/Diagnostics/DiagnosticBuilder.cs);
    Azure/bicep#3724 (BCP178 for a ``for`` over a variable holding
    ``properties.primaryEndpoints`` of an ``existing`` storage account).
    """
    findings: list[Finding] = []

    def report(template: Template, where: str, what: str, problems: list[str], code: str) -> None:
        for problem in problems:
            findings.append(
                Finding(
                    "deploy-time-constant",
                    _rel(template, root),
                    where,
                    f"{code}: {what} must be computable at the start of the deployment, but reads {problem}",
                )
            )

    for template in templates:
        # Every for expression, wherever it is (variables, properties, resources, modules, outputs).
        for where, node in walk(template.tree):
            if not is_loop(node):
                continue
            local = frozenset().union(*(loop_locals(n) for _, n in walk(template.tree) if is_loop(n) and n is not node))
            report(
                template,
                ".".join(where),
                "the array of this for-expression",
                template.runtime_reads(loop_source(node), local),
                "BCP178",
            )
        for name, variable in template.variables.items():
            value = variable["value"]
            if is_loop(value):
                report(
                    template,
                    f"variables.{name}",
                    "the body of a for-expression in a variable",
                    template.runtime_reads(value["config"], frozenset(loop_locals(value))),
                    "BCP182",
                )
        for kind, symbol, declared in _symbol_groups(template):
            config = declared["config"]
            local = frozenset(loop_locals(config)) if is_loop(config) else frozenset()
            body = template.body(symbol)
            if not template.name_is_literal(symbol):
                report(
                    template,
                    f"{kind} {symbol}.name",
                    f"the name of {kind} {symbol}",
                    template.runtime_reads(body.get("name"), local),
                    "BCP120",
                )
            if declared.get("existing") and "scope" in body:
                report(
                    template,
                    f"{kind} {symbol}.scope",
                    f"the scope of existing {symbol}",
                    template.runtime_reads(body["scope"], local),
                    "BCP120",
                )
            condition = template.condition(symbol)
            if condition is not None:
                report(
                    template,
                    f"{kind} {symbol} if",
                    f"the condition of {kind} {symbol}",
                    template.runtime_reads(condition, local),
                    "BCP177",
                )
    return findings


# --------------------------------------------------------------------------- Flex Consumption


#: siteConfig properties Flex Consumption does not support. Source: the Flex
#: Consumption plan docs, "Deprecated properties and settings"
#: (learn.microsoft.com/azure/azure-functions/flex-consumption-plan#deprecated-properties-and-settings,
#: which points to functions-app-settings#flex-consumption-plan-deprecations)
#: and ARM error 51021 for ftpsState (Azure/azure-cli#31414).
FLEX_REJECTED_SITE_CONFIG = frozenset(
    {
        "ftpsState",  # "FTPS not supported"
        "linuxFxVersion",  # replaced by functionAppConfig.runtime
        "windowsFxVersion",
        "javaVersion",
        "netFrameworkVersion",
        "powerShellVersion",
        "use32BitWorkerProcess",
        "functionAppScaleLimit",  # replaced by functionAppConfig.scaleAndConcurrency.maximumInstanceCount
        "minimumElasticInstanceCount",  # replaced by always-ready instances
        "preWarmedInstanceCount",
        "healthCheckPath",
    }
)
#: Site properties Flex Consumption does not support (same source).
FLEX_REJECTED_SITE_PROPERTIES = frozenset({"containerSize", "dailyMemoryTimeQuota"})
#: App settings Flex Consumption ignores or overwrites (same source): runtime and
#: version live in functionAppConfig.runtime, the package in
#: functionAppConfig.deployment, scale in functionAppConfig.scaleAndConcurrency,
#: there is no Azure Files content share and no Oryx build on the scm site. ARM
#: accepts them, so a template that sets them claims a configuration it does not
#: get; the siteConfig properties above are refused outright (ARM error 51021).
FLEX_REJECTED_APP_SETTINGS = frozenset(
    {
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_WORKER_RUNTIME_VERSION",
        "FUNCTIONS_MAX_HTTP_CONCURRENCY",
        "FUNCTIONS_WORKER_PROCESS_COUNT",
        "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTOVERVNET",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
        "WEBSITE_MOUNT_ENABLED",
        "WEBSITE_NODE_DEFAULT_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
        "WEBSITE_TIME_ZONE",
        "WEBSITE_USE_PLACEHOLDER_DOTNETISOLATED",
        "WEBSITE_VNET_ROUTE_ALL",
        "WEBSITES_CONTAINER_START_TIME_LIMIT",
        "WEBSITES_ENABLE_APP_SERVICE_STORAGE",
        "TZ",
    }
)
#: This project's own rule, not Flex's: storage is reached with the managed
#: identity only, so the host's connection-string setting must never be set.
PROJECT_REJECTED_APP_SETTINGS = frozenset({"AzureWebJobsStorage"})


def _flex_sites(template: Template) -> Iterable[tuple[str, dict[str, Any]]]:
    for symbol, declared in template.resources.items():
        if declared["type"] == "Microsoft.Web/sites" and not declared.get("existing"):
            body = template.body(symbol)
            if "functionAppConfig" in body.get("properties", {}):
                yield symbol, body


def app_setting_names(body: dict[str, Any]) -> list[str] | None:
    """The names of a site's app settings, or None when they are not a literal list."""
    settings = body.get("properties", {}).get("siteConfig", {}).get("appSettings")
    if settings is None:
        return []
    if not isinstance(settings, list):
        return None
    names = [entry.get("name") for entry in settings if isinstance(entry, dict)]
    if len(names) != len(settings) or not all(isinstance(n, str) and "${" not in n for n in names):
        return None
    return [str(n) for n in names]


def flex_rejected_properties(templates: list[Template], root: Path) -> list[Finding]:
    """No property or app setting that Flex Consumption rejects or ignores.

    Applies to every Microsoft.Web/sites with ``functionAppConfig`` (the Flex
    marker). App settings must be a literal list of ``{name, value}`` so that
    their names can be checked. Source: the Functions app settings reference,
    "Flex Consumption plan deprecations"
    (learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations),
    linked from the Flex Consumption plan docs' "Deprecated properties and
    settings"; azure-cli#31414 (ARM error 51021 for ftpsState on newer stamps).
    """
    findings: list[Finding] = []
    for template in templates:
        file = _rel(template, root)
        for symbol, body in _flex_sites(template):
            properties = body.get("properties", {})
            for key in sorted(set(properties) & FLEX_REJECTED_SITE_PROPERTIES):
                findings.append(Finding("flex-rejected", file, f"{symbol}.properties.{key}", "not supported on Flex"))
            site_config = properties.get("siteConfig", {})
            for key in sorted(set(site_config) & FLEX_REJECTED_SITE_CONFIG):
                findings.append(
                    Finding("flex-rejected", file, f"{symbol}.properties.siteConfig.{key}", "not supported on Flex")
                )
            names = app_setting_names(body)
            if names is None:
                findings.append(
                    Finding(
                        "flex-rejected",
                        file,
                        f"{symbol}.properties.siteConfig.appSettings",
                        "app settings must be a literal list of {name, value} so that their names can be checked",
                    )
                )
                continue
            for name in names:
                if name in FLEX_REJECTED_APP_SETTINGS:
                    findings.append(
                        Finding("flex-rejected", file, f"{symbol} app setting {name}", "ignored or overwritten on Flex")
                    )
                elif name in PROJECT_REJECTED_APP_SETTINGS:
                    findings.append(
                        Finding(
                            "flex-rejected",
                            file,
                            f"{symbol} app setting {name}",
                            "a connection string: use the identity",
                        )
                    )
        for symbol, declared in template.resources.items():
            if declared["type"] == "Microsoft.Web/sites/config" and template.body(symbol).get("name") == "appsettings":
                for name in template.body(symbol).get("properties", {}):
                    if name in FLEX_REJECTED_APP_SETTINGS:
                        findings.append(
                            Finding(
                                "flex-rejected", file, f"{symbol} app setting {name}", "rejected or ignored on Flex"
                            )
                        )
    return findings


# --------------------------------------------------------------------------- parameter bounds


#: Flex Consumption's bounds. Sources: the Flex Consumption plan docs ("Instance
#: memory": 512, 2048 and 4096 MB; "maximumInstanceCount": 40 to 1000, lower
#: values only in a few preview regions; the official Flex samples declare
#: ``@minValue(40)``) and "Supported language stack versions" (Python 3.10 to 3.12).
FLEX_MAX_INSTANCES = (40, 1000)
FLEX_MEMORY_MB = frozenset({512, 2048, 4096})
FLEX_PYTHON_VERSIONS = frozenset({"3.10", "3.11", "3.12"})


def _project_python(root: Path) -> str | None:
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    requires = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["requires-python"]
    match = re.search(r">=\s*(\d+\.\d+)", requires)
    return match.group(1) if match else None


def _check_int_param(
    template: Template, name: str, *, low: int, high: int, allowed: frozenset[int] | None, file: str, where: str
) -> list[Finding]:
    findings = []
    decl = template.parameters[name]
    minimum, maximum = template.decorator(name, "min_value"), template.decorator(name, "max_value")
    choices = template.decorator(name, "allowed")
    default = decl.get("default")
    if allowed is not None:
        if choices is None or not set(choices) <= allowed:
            findings.append(
                Finding("param-bounds", file, where, f"param {name} must be @allowed within {sorted(allowed)}")
            )
    elif minimum is None or maximum is None or minimum < low or maximum > high:
        findings.append(
            Finding("param-bounds", file, where, f"param {name} needs @minValue(>={low}) and @maxValue(<={high})")
        )
    if isinstance(default, int):
        findings += _check_int_value(
            default, low=low, high=high, allowed=allowed, file=file, where=f"{where} (default of {name})"
        )
    return findings


def _check_int_value(
    value: int, *, low: int, high: int, allowed: frozenset[int] | None, file: str, where: str
) -> list[Finding]:
    ok = value in allowed if allowed is not None else low <= value <= high
    expected = sorted(allowed) if allowed is not None else f"{low}..{high}"
    return [] if ok else [Finding("param-bounds", file, where, f"{value} is outside Flex Consumption's {expected}")]


def parameter_bounds(templates: list[Template], root: Path) -> list[Finding]:
    """Scale, memory and Python version within what Flex Consumption accepts.

    ``maximumInstanceCount`` 40..1000, ``instanceMemoryMB`` one of 512/2048/4096,
    runtime ``python`` at a version Flex offers and equal to the project's
    (pyproject.toml). A value given by a parameter is checked on the
    parameter's decorators and default, and on every module call and
    main.parameters.json value that feeds it. Sources: see FLEX_MAX_INSTANCES.
    """
    findings: list[Finding] = []
    by_path = {t.path.resolve(): t for t in templates}
    # (template, param) -> (low, high, allowed) for parameters that feed a Flex bound.
    bounded: dict[tuple[Path, str], tuple[int, int, frozenset[int] | None]] = {}
    for template in templates:
        file = _rel(template, root)
        for symbol, body in _flex_sites(template):
            config = body["properties"]["functionAppConfig"]
            scale = config.get("scaleAndConcurrency", {})
            for key, (low, high, allowed) in {
                "maximumInstanceCount": (*FLEX_MAX_INSTANCES, None),
                "instanceMemoryMB": (0, 0, FLEX_MEMORY_MB),
            }.items():
                value = scale.get(key)
                where = f"{symbol}.functionAppConfig.scaleAndConcurrency.{key}"
                if isinstance(value, int):
                    findings += _check_int_value(value, low=low, high=high, allowed=allowed, file=file, where=where)
                elif isinstance(value, str) and value in template.parameters:
                    bounded[(template.path.resolve(), value)] = (low, high, allowed)
                    findings += _check_int_param(
                        template, value, low=low, high=high, allowed=allowed, file=file, where=where
                    )
                else:
                    findings.append(Finding("param-bounds", file, where, "must be a literal or a parameter"))
            runtime = config.get("runtime", {})
            version = runtime.get("version")
            if runtime.get("name") != "python" or version not in FLEX_PYTHON_VERSIONS:
                findings.append(
                    Finding(
                        "param-bounds",
                        file,
                        f"{symbol}.functionAppConfig.runtime",
                        f"python at one of {sorted(FLEX_PYTHON_VERSIONS)} expected, got {runtime}",
                    )
                )
            project = _project_python(root)
            if project is not None and version != project:
                findings.append(
                    Finding(
                        "param-bounds",
                        file,
                        f"{symbol}.functionAppConfig.runtime.version",
                        f"{version} differs from the project's Python {project} (pyproject.toml)",
                    )
                )
    # Follow bounded module parameters up to the callers' parameters and literals.
    for template in templates:
        file = _rel(template, root)
        for symbol in template.modules:
            target = template.module_path(symbol)
            if target not in by_path:
                continue
            params = template.body(symbol).get("params", {})
            for (path, name), (low, high, allowed) in list(bounded.items()):
                if path != target or name not in params:
                    continue
                given = params[name]
                where = f"module {symbol}.params.{name}"
                if isinstance(given, int):
                    findings += _check_int_value(given, low=low, high=high, allowed=allowed, file=file, where=where)
                elif isinstance(given, str) and given in template.parameters:
                    findings += _check_int_param(
                        template, given, low=low, high=high, allowed=allowed, file=file, where=where
                    )
                    bounded[(template.path.resolve(), given)] = (low, high, allowed)
    parameters_file = root / "infra" / "main.parameters.json"
    main = root / "infra" / "main.bicep"
    if parameters_file.is_file():
        values = json.loads(parameters_file.read_text(encoding="utf-8"))["parameters"]
        for (path, name), (low, high, allowed) in bounded.items():
            if path == main.resolve() and isinstance(values.get(name, {}).get("value"), int):
                findings += _check_int_value(
                    values[name]["value"],
                    low=low,
                    high=high,
                    allowed=allowed,
                    file="infra/main.parameters.json",
                    where=name,
                )
    return findings


#: Built-in role "Key Vault Secrets User": reads secret contents, nothing else (identical in every tenant).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
_SECRET_WORDS = re.compile(
    r"Microsoft\.KeyVault\(|maskinportenPrivateKey|maskinportenKeySecretName|listSecrets|getSecret"
)


def _leaves(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value)


def key_vault_secrets(templates: list[Template], root: Path) -> list[Finding]:
    """The Maskinporten key's vault: RBAC only, the app may only read secrets, nothing secret in outputs.

    Sources (learn.microsoft.com): "Azure RBAC for Key Vault data plane" (key-vault/general/rbac-guide):
    with ``enableRbacAuthorization: true`` access policies are ignored, so none are declared and none
    can be mistaken for the access model; "Key Vault Secrets User" (``4633458b-…``) reads secret contents
    and nothing more. "Use Key Vault references" (app-service/app-service-key-vault-references): the
    setting holds ``@Microsoft.KeyVault(VaultName=…;SecretName=…)``, never the value. Deployment
    outputs are readable by anyone with Reader on the resource group, so none may carry a secret,
    a reference to one, or a ``listSecrets``/``getSecret`` call.
    """
    findings: list[Finding] = []
    for template in templates:
        file = _rel(template, root)
        vaults = {s for s, r in template.resources.items() if r.get("type") == "Microsoft.KeyVault/vaults"}
        for symbol in sorted(vaults):
            props = template.body(symbol).get("properties", {})
            if props.get("enableRbacAuthorization") is not True:
                findings.append(Finding("key-vault", file, symbol, "enableRbacAuthorization must be true (RBAC mode)"))
            if props.get("accessPolicies") not in (None, []):
                findings.append(Finding("key-vault", file, f"{symbol}.properties.accessPolicies", "must be empty"))
        for symbol, declared in template.resources.items():
            if declared.get("type") != "Microsoft.Authorization/roleAssignments":
                continue
            body = template.body(symbol)
            if body.get("scope") not in vaults:
                continue
            role_leaves = set(_leaves(body.get("properties", {}).get("roleDefinitionId")))
            for name in list(role_leaves):
                if name in template.variables:
                    role_leaves |= set(_leaves(template.variables[name].get("value")))
            if KEY_VAULT_SECRETS_USER not in role_leaves:
                findings.append(
                    Finding("key-vault", file, symbol, "a role on the vault other than Key Vault Secrets User")
                )
        for name, output in (template.tree.get("outputs") or {}).items():
            text = " ".join([name, *_leaves(output.get("value"))])
            if _SECRET_WORDS.search(text) or re.search(r"(?i)privatekey|secretvalue", name):
                findings.append(Finding("key-vault", file, f"output {name}", "an output may not carry a secret"))
    main = root / "infra" / "main.bicep"
    if main.is_file():
        source = main.read_text(encoding="utf-8")
        given = re.search(r"^\s*maskinportenPrivateKey:\s*(.*)$", source, re.MULTILINE)
        if given and "'@Microsoft.KeyVault(VaultName=" not in given.group(1):
            findings.append(
                Finding("key-vault", "infra/main.bicep", "maskinportenPrivateKey", "must be a Key Vault reference")
            )
    return findings


# --------------------------------------------------------------------------- workbooks


#: Bicep refuses a larger file in loadTextContent() ("File functions for Bicep",
#: learn.microsoft.com/azure/azure-resource-manager/bicep/bicep-functions-files#loadtextcontent).
LOAD_TEXT_CONTENT_MAX_CHARS = 131_072
#: The only kind the 2023-06-01 API knows (WorkbookSharedTypeKind in azure-mgmt-applicationinsights).
WORKBOOK_KINDS = frozenset({"shared"})
#: Required by the REST API specification's WorkbookProperties; sourceId is this project's: it lists
#: the workbook on the workspace it reads.
WORKBOOK_PROPERTIES = ("displayName", "category", "serializedData", "sourceId")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PER_DEPLOYMENT = frozenset({"new_guid", "utc_now"})


def _given(
    template: Template, node: Any, templates: list[Template], seen: frozenset[str] = frozenset()
) -> list[tuple[Template, Any]]:
    """``node``, or when it names a parameter, every value it can take (each module call's, else its
    default), each with the template that writes it."""
    if not (isinstance(node, str) and node in template.parameters) or node in seen:
        return [(template, node)]
    values: list[tuple[Template, Any]] = []
    for caller in templates:
        for symbol in caller.modules:
            if caller.module_path(symbol) == template.path.resolve():
                passed = caller.body(symbol).get("params", {})
                if node in passed:
                    values += _given(caller, passed[node], templates, seen | {node})
    default = template.parameters[node].get("default")
    if not values and default is not None:
        values.append((template, default))
    return values


def _functions(template: Template, node: Any, seen: frozenset[str] = frozenset()) -> Iterable[dict[str, Any]]:
    """Every function call in ``node``, through the variables and parameter defaults it reads."""
    for _, value in walk(node):
        if isinstance(value, dict) and "function" in value:
            yield value["function"]
        elif isinstance(value, str) and value not in seen:
            if value in template.variables:
                yield from _functions(template, template.variables[value]["value"], seen | {value})
            elif value in template.parameters:
                yield from _functions(template, template.parameters[value].get("default"), seen | {value})


def workbooks(templates: list[Template], root: Path) -> list[Finding]:
    """A workbook ARM accepts, that a redeploy updates in place, with content Bicep can load.

    - its ``name`` is a GUID, given as ``guid(...)`` of values that do not change between
      deployments: ARM refuses any other name ("Invalid Workbook resource name",
      MicrosoftDocs/azure-docs#52844), and a name that changes (from ``newGuid()`` or
      ``utcNow()``) creates a second workbook with the same display name, which ARM refuses
      ("A Workbook with the same name already exists", microsoft/ApplicationInsights-Home#476);
      a parameter is followed to every module call that passes it;
    - ``kind`` is ``shared``, the only kind of the 2023-06-01 API (``WorkbookSharedTypeKind``
      in azure-mgmt-applicationinsights);
    - ``displayName``, ``category`` and ``serializedData`` are set (required by the REST API
      specification's WorkbookProperties), and ``sourceId`` (this project's rule: the workbook
      is listed on the workspace it reads);
    - ``serializedData`` is read with ``loadTextContent()`` from a file next to the template
      (this project's rule, so tests can read it) that exists, is at most 131,072 characters
      (Bicep's limit: "File functions for Bicep", bicep-functions-files#loadtextcontent) and is
      a workbook: JSON with ``version`` ``Notebook/1.0`` and items.
    """
    findings: list[Finding] = []
    for template in templates:
        file = _rel(template, root)
        for symbol, declared in template.resources.items():
            if declared.get("type", "").lower() != "microsoft.insights/workbooks" or declared.get("existing"):
                continue
            body = template.body(symbol)

            def report(where: str, message: str, symbol: str = symbol, file: str = file) -> None:
                findings.append(Finding("workbook", file, f"{symbol}{where}", message))

            for writer, value in _given(template, body.get("name"), templates):
                function = value.get("function", {}) if isinstance(value, dict) else {}
                if function.get("type") == "guid":
                    changing = {f["type"] for f in _functions(writer, value)} & _PER_DEPLOYMENT
                    if changing:
                        report(".name", f"guid() of {sorted(changing)}: a new workbook on every deployment")
                elif not (isinstance(value, str) and _GUID.match(value)):
                    report(".name", f"must be a GUID, from guid(...) of deploy-time values; got {value!r}")
            if body.get("kind") not in WORKBOOK_KINDS:
                report(".kind", f"must be one of {sorted(WORKBOOK_KINDS)}, not {body.get('kind')!r}")
            properties = body.get("properties", {})
            for key in WORKBOOK_PROPERTIES:
                if not properties.get(key):
                    report(f".properties.{key}", "must be set")
            loads = [
                f["parameters"]["file_path"]
                for f in _functions(template, properties.get("serializedData"))
                if f["type"] == "load_text_content"
            ]
            if len(loads) != 1 or not isinstance(loads[0], str):
                report(".properties.serializedData", "must come from one loadTextContent('<file>.json')")
                continue
            path = template.path.parent / loads[0]
            if not path.is_file():
                report(".properties.serializedData", f"loadTextContent: {loads[0]} does not exist")
                continue
            text = path.read_text(encoding="utf-8")
            if len(text) > LOAD_TEXT_CONTENT_MAX_CHARS:
                report(
                    ".properties.serializedData",
                    f"{loads[0]} has {len(text)} characters; loadTextContent() takes {LOAD_TEXT_CONTENT_MAX_CHARS}",
                )
            try:
                content = json.loads(text)
            except ValueError as exc:
                report(".properties.serializedData", f"{loads[0]} is not JSON: {exc}")
                continue
            if not (isinstance(content, dict) and content.get("version") == "Notebook/1.0" and content.get("items")):
                report(".properties.serializedData", f"{loads[0]} is not a workbook (version Notebook/1.0, items)")
    return findings


RULES: dict[str, Rule] = {
    "deploy-time-constant": deploy_time_constants,
    "flex-rejected": flex_rejected_properties,
    "param-bounds": parameter_bounds,
    "key-vault": key_vault_secrets,
    "workbook": workbooks,
}
