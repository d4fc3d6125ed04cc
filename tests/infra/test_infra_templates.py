"""The Bicep templates, read as data: security properties, the catalog, the settings contract.

The Bicep CLI is not available everywhere the tests run, so the templates are
parsed with pycep (the parser checkov uses too) and the parsed tree is checked.
The expressions pycep returns are rendered back to short strings (``render``)
so that a check reads like the Bicep it checks.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from devtools import export_catalog
from shared import logs, settings
from shared.events import catalog, messages
from tests import docs_support

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
STORAGE = INFRA / "app" / "storage.bicep"
FUNCTION = INFRA / "app" / "function.bicep"
RBAC = INFRA / "app" / "rbac.bicep"
MONITORING = INFRA / "app" / "monitoring.bicep"
ALERTS = INFRA / "app" / "alerts.bicep"

ALTINN_TT02 = "20.100.24.41/32"
ALTINN_PRODUCTION = "20.100.46.139/32"

#: App settings Bicep may set although the code never reads them: the platform reads them.
PLATFORM_SETTINGS = {
    # Read by the Functions host: where to send telemetry.
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the host sends telemetry to Application Insights",
    # Makes the host authenticate telemetry with the managed identity (App Insights local auth is off).
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra ID auth for telemetry",
    # The host refuses larger request bodies before buffering them.
    "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "the host's request body limit",
}
#: Declared by the code but set only locally: in Azure the identity-based ``AzureWebJobsStorage__*`` form is used.
LOCAL_ONLY_SETTINGS = {settings.STORAGE_CONNECTION}

ROLE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
ROLE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
ROLE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
ROLE_MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
#: Control-plane roles that would let the app read account keys or change anything: never granted.
BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "81a9662b-bebf-436f-a333-f67b29880f12": "Storage Account Key Operator Service Role",
}


# --------------------------------------------------------------------------- helpers


@cache
def parse(path: Path) -> dict[str, Any]:
    parsed: dict[str, Any] = dict(BicepParser().parse(file_path=path))
    return parsed


def render(node: Any) -> Any:
    """A pycep expression as short Bicep-like text; literals are returned unchanged."""
    if isinstance(node, dict) and "operator" in node:
        op = node["operator"]
        operands = op["operands"]
        if op["type"] == "property_accessor":
            return f"{render(operands['operand_1'])}.{render(operands['operand_2'])}"
        if op["type"] == "conditional":
            cond, yes, no = (render(operands[k]) for k in ("condition", "true_value", "false_value"))
            return f"{cond} ? {yes!r} : {no!r}"
        if op["type"] == "not":
            return f"!{render(operands['bool_value'])}"
        if op["type"] == "index_accessor":
            return f"{render(operands['operand_1'])}[{render(operands['operand_2'])}]"
        return {op["type"]: {k: render(v) for k, v in operands.items()}}
    if isinstance(node, dict) and "function" in node:
        fn = node["function"]
        args = ", ".join(str(render(v)) for v in fn["parameters"].values() if v is not None)
        return f"{fn['type']}({args})"
    return node


def resource(path: Path, name: str) -> dict[str, Any]:
    """The body of a resource (inside the loop or the condition, for one declared with ``for`` or ``if``)."""
    config: dict[str, Any] = parse(path)["resources"][name]["config"]
    if "loop_type" in config or ("condition" in config and "config" in config):
        inner: dict[str, Any] = config["config"]
        return inner
    return config


def resources_of_type(path: Path, type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in parse(path)["resources"].items() if r["type"] == type_}


def variable(path: Path, name: str) -> Any:
    return parse(path)["variables"][name]["value"]


def param_default(path: Path, name: str) -> Any:
    return parse(path)["parameters"][name]["default"]


def app_settings() -> dict[str, Any]:
    """Every app setting of the function app, by name, with its rendered value."""
    site_config = resource(FUNCTION, "functionApp")["properties"]["siteConfig"]
    entries = site_config["appSettings"]
    # A literal list of {name, value}: a for-expression over runtime values does not compile (BCP178).
    assert isinstance(entries, list), "appSettings must be a literal list of {name, value}"
    assert all(set(entry) == {"name", "value"} for entry in entries)
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), "an app setting is set twice"
    # No other place sets app settings (a sites/config 'appsettings' resource would replace them all).
    assert not resources_of_type(FUNCTION, "Microsoft.Web/sites/config")
    return {entry["name"]: render(entry["value"]) for entry in entries}


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def module_params(name: str) -> dict[str, Any]:
    """What main.bicep passes to a module (a conditional module nests its body under ``config``)."""
    config: dict[str, Any] = parse(MAIN)["modules"][name]["config"]
    params: dict[str, Any] = config["config"]["params"] if "condition" in config else config["params"]
    return params


def module_path(module: dict[str, Any]) -> Path:
    relative: str = module["detail"]["path"]
    return (INFRA / relative).resolve()


# --------------------------------------------------------------------------- parsing and wiring


def test_every_bicep_file_is_found() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    assert {"main.bicep", "app/storage.bicep", "app/function.bicep", "app/rbac.bicep"} <= names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path: Path) -> None:
    parsed = parse(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path} declares nothing"


def test_every_module_exists_and_is_used() -> None:
    modules = parse(MAIN)["modules"]
    used = {module_path(m) for m in modules.values()}
    assert all(p.is_file() for p in used), used
    assert used == {p.resolve() for p in (INFRA / "app").glob("*.bicep")}, "a module file is not wired into main"


def test_module_calls_match_module_parameters() -> None:
    """What `bicep build` would reject: unknown parameters, or a required one left out."""
    for name, module in parse(MAIN)["modules"].items():
        declared = parse(module_path(module))["parameters"]
        required = {p for p, spec in declared.items() if spec["default"] is None}
        given = set(module_params(name))
        assert given <= set(declared), f"module {name} passes unknown params {given - set(declared)}"
        assert required <= given, f"module {name} misses required params {required - given}"


def test_parameters_file_matches_main() -> None:
    file_params = set(json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"])
    declared = parse(MAIN)["parameters"]
    required = {p for p, spec in declared.items() if spec["default"] is None}
    assert file_params <= set(declared), f"unknown parameters {file_params - set(declared)}"
    assert required <= file_params, f"required parameters missing {required - file_params}"


def test_azd_service_is_tagged_on_the_function_app() -> None:
    azure_yaml = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    services = re.search(r"^services:\n((?:[ ].*\n)+)", azure_yaml, re.MULTILINE)
    assert services, "azure.yaml has no services"
    service_names = re.findall(r"^  ([a-z][\w-]*):$", services.group(1), re.MULTILINE)
    assert service_names == ["api"]
    assert re.search(r"^    host: function$", services.group(1), re.MULTILINE)
    assert re.search(r"^    language: python$", services.group(1), re.MULTILINE)
    # azd finds the app to deploy to by this tag; pycep keeps the quotes of a quoted key.
    tags = resource(FUNCTION, "functionApp")["tags"]["function"]
    assert tags["type"] == "union"
    assert tags["parameters"]["arg_2"] == {"'azd-service-name'": service_names[0]}


# --------------------------------------------------------------------------- catalog <-> storage


def test_catalog_json_is_generated_from_the_catalog() -> None:
    on_disk = json.loads((INFRA / "catalog.json").read_text(encoding="utf-8"))
    assert on_disk["queues"] == catalog.all_queues()
    assert on_disk["containers"]["claimCheck"] == messages.CLAIM_CHECK_CONTAINER
    assert set(on_disk["tables"]) == {"idempotency", "dialogs", "catchup", "poisonreasons"}
    assert (INFRA / "catalog.json").read_text(encoding="utf-8") == export_catalog.render(), (
        "infra/catalog.json is stale: run `python -m devtools.export_catalog`"
    )


def test_catalog_json_tables_are_the_tables_the_handlers_use() -> None:
    from shared.stores import cursors, dialogs, idempotency, poison

    tables = json.loads((INFRA / "catalog.json").read_text(encoding="utf-8"))["tables"]
    assert sorted(tables) == sorted(
        [idempotency.IDEMPOTENCY_TABLE, dialogs.DIALOGS_TABLE, cursors.CATCHUP_TABLE, poison.POISON_TABLE]
    )


def test_catalog_json_lists_every_type_with_its_poison_queue_and_the_unrouted_queue() -> None:
    queues = json.loads((INFRA / "catalog.json").read_text(encoding="utf-8"))["queues"]
    for row in catalog.CATALOG:
        assert row.queue in queues
        assert row.poison_queue in queues
    assert catalog.UNROUTED_QUEUE in queues
    assert catalog.poison_queue_for(catalog.UNROUTED_QUEUE) in queues
    assert len(queues) == len(set(queues)) == 2 * (len(catalog.CATALOG) + 1)
    assert all(catalog.is_valid_queue_name(q) for q in queues)


def test_export_check_detects_drift(tmp_path: Path) -> None:
    target = tmp_path / "catalog.json"
    assert export_catalog.main(["--check", "--path", str(target)]) == 1  # missing
    stale = export_catalog.build()
    stale["queues"] = stale["queues"][:-2]  # as if a type were added to the catalog but not exported
    target.write_text(json.dumps(stale, indent=2) + "\n", encoding="utf-8")
    assert export_catalog.main(["--check", "--path", str(target)]) == 1
    assert export_catalog.main(["--path", str(target)]) == 0
    assert export_catalog.main(["--check", "--path", str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8"))["queues"] == catalog.all_queues()


def test_storage_creates_queues_tables_and_containers_from_catalog_json() -> None:
    load = variable(STORAGE, "appStorage")["function"]
    assert load["type"] == "load_json_content"
    assert (STORAGE.parent / load["parameters"]["file_path"]).resolve() == (INFRA / "catalog.json").resolve()

    queues = parse(STORAGE)["resources"]["queues"]
    assert queues["type"] == "Microsoft.Storage/storageAccounts/queueServices/queues"
    loop = queues["config"]["loop_type"]["detail"]
    assert render(loop["array_name"]) == "appStorage.queues"
    assert queues["config"]["config"]["name"] == loop["item_name"]

    tables = parse(STORAGE)["resources"]["tables"]
    assert tables["type"] == "Microsoft.Storage/storageAccounts/tableServices/tables"
    loop = tables["config"]["loop_type"]["detail"]
    assert render(loop["array_name"]) == "appStorage.tables"
    assert tables["config"]["config"]["name"] == loop["item_name"]

    containers = {
        render(r["config"]["name"]): r["config"]["properties"]
        for r in resources_of_type(STORAGE, "Microsoft.Storage/storageAccounts/blobServices/containers").values()
    }
    assert set(containers) == {"appStorage.containers.deployment", "appStorage.containers.claimCheck"}
    assert all(props["publicAccess"] == "None" for props in containers.values())
    # No queue, table or container is created anywhere else under a literal name.
    for path in bicep_files():
        for name, r in parse(path)["resources"].items():
            if r["type"].endswith(("/queues", "/tables", "/containers")) and not r["existing"]:
                assert path == STORAGE, f"{path}: {name} creates storage outside storage.bicep"


def test_deployment_package_container_is_the_one_the_function_app_deploys_from() -> None:
    deployment = resource(FUNCTION, "functionApp")["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["value"] == "${storageBlobEndpoint}${deploymentContainerName}"
    assert deployment["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    function_module = module_params("functionApp")
    assert render(function_module["deploymentContainerName"]) == "storage.outputs.deploymentContainerName"
    assert render(function_module["storageBlobEndpoint"]) == "storage.outputs.blobEndpoint"
    assert render(parse(STORAGE)["outputs"]["deploymentContainerName"]["value"]) == "deploymentContainer.name"


# --------------------------------------------------------------------------- storage security


def test_storage_account_is_entra_only_tls12_https_and_private_blobs() -> None:
    props = resource(STORAGE, "storage")["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["allowBlobPublicAccess"] is False
    assert props["defaultToOAuthAuthentication"] is True
    assert props["isLocalUserEnabled"] is False


def test_blob_soft_delete_is_on() -> None:
    props = resource(STORAGE, "blobService")["properties"]
    for policy in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
        assert props[policy]["enabled"] is True
        assert props[policy]["days"] == "softDeleteRetentionDays"
    assert param_default(MAIN, "softDeleteRetentionDays") >= 1


def test_claim_check_blobs_expire_after_the_retention_parameter() -> None:
    rules = resource(STORAGE, "lifecycle")["properties"]["policy"]["rules"]
    [rule] = rules
    assert rule["enabled"] is True
    assert rule["definition"]["filters"]["prefixMatch"] == ["${appStorage.containers.claimCheck}/"]
    delete = rule["definition"]["actions"]["baseBlob"]["delete"]
    assert delete == {"daysAfterModificationGreaterThan": "claimCheckRetentionDays"}
    assert param_default(MAIN, "claimCheckRetentionDays") == 30
    given = module_params("storage")
    assert given["claimCheckRetentionDays"] == "claimCheckRetentionDays"


def test_no_secret_is_read_or_written_by_any_template() -> None:
    forbidden = re.compile(
        r"listKeys|listAccountSas|listServiceSas|AccountKey=|SharedAccessSignature|InstrumentationKey=|@secure",
        re.IGNORECASE,
    )
    for path in [*bicep_files(), INFRA / "main.parameters.json"]:
        hits = forbidden.findall(path.read_text(encoding="utf-8"))
        assert not hits, f"{path.relative_to(ROOT)} mentions {hits}"


# --------------------------------------------------------------------------- function app


def test_plan_is_flex_consumption() -> None:
    plan = resource(FUNCTION, "plan")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True  # Linux


def test_function_app_runs_python_311_with_scale_parameters() -> None:
    site = resource(FUNCTION, "functionApp")
    assert site["kind"] == "functionapp,linux"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["scaleAndConcurrency"] == {
        "maximumInstanceCount": "maximumInstanceCount",
        "instanceMemoryMB": "instanceMemoryMB",
    }
    given = module_params("functionApp")
    assert given["maximumInstanceCount"] == "maximumInstanceCount"
    assert given["instanceMemoryMB"] == "instanceMemoryMB"
    assert isinstance(param_default(MAIN, "maximumInstanceCount"), int)
    assert param_default(MAIN, "instanceMemoryMB") in (512, 2048, 4096)


def test_function_app_is_https_only_tls12_no_ftp_no_remote_debugging() -> None:
    props = resource(FUNCTION, "functionApp")["properties"]
    assert props["httpsOnly"] is True
    site_config = props["siteConfig"]
    assert site_config["minTlsVersion"] == "1.2"
    assert site_config["scmMinTlsVersion"] == "1.2"
    # Flex Consumption has no FTP and rejects ftpsState; FTP publishing is off by policy instead.
    assert "ftpsState" not in site_config
    assert site_config["remoteDebuggingEnabled"] is False


def test_basic_publishing_credentials_are_off() -> None:
    policies = resources_of_type(FUNCTION, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    by_name = {r["config"]["name"]: r["config"] for r in policies.values()}
    assert set(by_name) == {"ftp", "scm"}
    for policy in by_name.values():
        assert policy["parent"] == "functionApp"
        assert policy["properties"] == {"allow": False}


def test_function_app_uses_only_the_user_assigned_identity() -> None:
    identity = resource(FUNCTION, "functionApp")["identity"]
    assert identity["type"] == "UserAssigned"
    assert list(identity["userAssignedIdentities"]) == ["'${identityId}'"]  # pycep keeps the key's quotes
    given = module_params("functionApp")
    assert render(given["identityId"]) == "identity.id"
    assert render(given["identityClientId"]) == "identity.properties.clientId"
    assert parse(MAIN)["resources"]["identity"]["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"


def test_storage_connection_is_identity_based() -> None:
    app = app_settings()
    prefix = settings.STORAGE_CONNECTION + "__"
    assert app[prefix + "credential"] == "managedidentity"
    assert app[prefix + "clientId"] == "identityClientId"
    assert app[prefix + "blobServiceUri"] == "storageBlobEndpoint"
    assert app[prefix + "queueServiceUri"] == "storageQueueEndpoint"
    assert app[prefix + "tableServiceUri"] == "storageTableEndpoint"
    assert settings.STORAGE_CONNECTION not in app, "a bare AzureWebJobsStorage would be a connection string"
    # The endpoints are those of the account this deployment creates.
    given = module_params("functionApp")
    outputs = parse(STORAGE)["outputs"]
    for service in ("blob", "queue", "table"):
        assert render(given[f"storage{service.title()}Endpoint"]) == f"storage.outputs.{service}Endpoint"
        assert render(outputs[f"{service}Endpoint"]["value"]) == f"storage.properties.primaryEndpoints.{service}"


def test_telemetry_is_authenticated_with_the_identity() -> None:
    app = app_settings()
    assert app["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    assert app["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "applicationInsights.properties.ConnectionString"
    insights = resource(MONITORING, "applicationInsights")["properties"]
    assert insights["DisableLocalAuth"] is True
    assert render(insights["WorkspaceResourceId"]) == "logAnalytics.id"


def test_settings_contract_every_required_setting_is_set_by_bicep() -> None:
    """Each setting the code reads without a safe default reaches Azure."""
    app = app_settings()
    needed = {s.name for s in settings.DECLARED if s.default is None} - LOCAL_ONLY_SETTINGS
    assert needed, "settings.DECLARED has no setting without default: the contract test would be vacuous"
    missing = needed - set(app)
    assert not missing, f"the code reads {sorted(missing)} (no default) but Bicep does not set them"


def test_settings_contract_bicep_sets_nothing_the_code_does_not_read() -> None:
    app = app_settings()
    unknown = set(app) - settings.DECLARED_NAMES - set(PLATFORM_SETTINGS)
    assert not unknown, f"Bicep sets {sorted(unknown)}, which neither the code nor the platform reads"
    assert LOCAL_ONLY_SETTINGS <= settings.DECLARED_NAMES


def test_allow_lists_for_events_are_parameters() -> None:
    app = app_settings()
    assert app["ALLOWED_RESOURCES"] == "join(allowedResources, ,)"
    assert app["ALLOWED_SOURCE_HOSTS"] == "join(allowedSourceHosts, ,)"
    assert param_default(MAIN, "allowedResources") == []
    assert "allowedSourceHosts" not in parse(MAIN)["parameters"], "the Altinn environment sets the source host"


def test_request_body_limit_sits_just_above_the_webhooks_limit() -> None:
    """The host refuses what the webhook would refuse anyway, before buffering it, but never less."""
    from shared.intake import plan as ingest

    app = app_settings()
    assert app["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"] == "string(requestBodySizeLimitBytes)"
    limit = param_default(FUNCTION, "requestBodySizeLimitBytes")
    assert isinstance(limit, int)
    # Above the webhook's own limit plus room for headers, and not far above.
    assert ingest.MAX_BODY_BYTES + 16 * 1024 <= limit <= ingest.MAX_BODY_BYTES + 128 * 1024, (
        limit,
        ingest.MAX_BODY_BYTES,
    )
    assert "requestBodySizeLimitBytes" not in module_params("functionApp"), "main must not override the limit"


# --------------------------------------------------------------------------- network


ALTINN_ENVIRONMENTS = {
    "tt02": (ALTINN_TT02, "platform.tt02.altinn.no"),
    "prod": (ALTINN_PRODUCTION, "platform.altinn.no"),
}


def test_one_parameter_names_the_altinn_environment() -> None:
    """tt02 or prod sets both the IP allow list (that environment's address only) and the source host."""
    declared = parse(MAIN)["parameters"]["altinnEnvironment"]
    allowed = [d["argument"] for d in declared["decorators"] if d["type"] == "allowed"]
    assert allowed == [sorted(ALTINN_ENVIRONMENTS, reverse=True)]
    assert declared["default"] is None, "the environment must be chosen, not defaulted"
    assert "altinnIpRules" not in parse(MAIN)["parameters"], "both addresses at once would admit the other environment"
    table = variable(MAIN, "altinn")
    for environment, (address, host) in ALTINN_ENVIRONMENTS.items():
        assert table[environment]["ipRule"]["ipAddress"] == address
        assert table[environment]["sourceHost"] == host
    given = module_params("functionApp")
    assert [render(r) for r in given["allowedIpRules"]["function"]["parameters"]["arg_1"]] == [
        "altinn[altinnEnvironment].ipRule"
    ]
    assert [render(h) for h in given["allowedSourceHosts"]] == ["altinn[altinnEnvironment].sourceHost"]
    azd_parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert azd_parameters["altinnEnvironment"] == {"value": "${ALTINN_ENVIRONMENT}"}


def test_ip_allow_list_admits_only_altinn_by_default() -> None:
    assert param_default(MAIN, "additionalAllowedIpAddresses") == []
    assert param_default(MAIN, "allowAllIps") is False

    given = module_params("functionApp")
    assert given["allowedIpRules"]["function"]["type"] == "concat"
    assert given["allowedIpRules"]["function"]["parameters"]["arg_2"] == "extraIpRules"
    assert given["allowAllIps"] == "allowAllIps"
    extra = variable(MAIN, "extraIpRules")
    assert render(extra["loop_type"]["detail"]["array_name"]) == "additionalAllowedIpAddresses"
    assert extra["config"]["ipAddress"] == extra["loop_type"]["detail"]["item_name"]

    site_config = resource(FUNCTION, "functionApp")["properties"]["siteConfig"]
    # Anything not on the list is denied unless the operator deliberately opens the app.
    assert render(site_config["ipSecurityRestrictionsDefaultAction"]) == "allowAllIps ? 'Allow' : 'Deny'"
    assert site_config["ipSecurityRestrictions"] == "ipSecurityRestrictions"
    rules = variable(FUNCTION, "ipSecurityRestrictions")
    assert rules["loop_type"]["detail"]["array_name"] == "allowedIpRules"
    assert rules["config"]["action"] == "Allow"
    assert render(rules["config"]["ipAddress"]) == "rule.ipAddress"


# --------------------------------------------------------------------------- least privilege


def _role_ids(path: Path, var_name: str) -> set[str]:
    roles: dict[str, str] = variable(path, "roles")
    return {roles[render(item).removeprefix("roles.")] for item in variable(path, var_name)}


def test_app_identity_gets_data_roles_on_its_storage_account_only() -> None:
    assert _role_ids(RBAC, "storageRolesForApp") == {
        ROLE_BLOB_DATA_OWNER,
        ROLE_QUEUE_DATA_CONTRIBUTOR,
        ROLE_TABLE_DATA_CONTRIBUTOR,
    }
    assignment = parse(RBAC)["resources"]["appStorageRoles"]["config"]
    assert assignment["loop_type"]["detail"]["array_name"] == "storageRolesForApp"
    body = assignment["config"]
    assert body["scope"] == "storage"
    assert render(body["name"]) == "guid(storage.id, appPrincipalId, roleId)"
    assert body["properties"]["principalId"] == "appPrincipalId"
    assert body["properties"]["principalType"] == "ServicePrincipal"
    given = module_params("rbac")
    assert render(given["appPrincipalId"]) == "identity.properties.principalId"


def test_app_identity_may_publish_telemetry() -> None:
    body = resource(RBAC, "appMetricsPublisher")
    assert body["scope"] == "applicationInsights"
    assert render(body["name"]) == "guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)"
    assert variable(RBAC, "roles")["monitoringMetricsPublisher"] == ROLE_MONITORING_METRICS_PUBLISHER


def test_every_role_assignment_has_a_stable_name_and_no_broad_role() -> None:
    assignments = 0
    for path in bicep_files():
        text = path.read_text(encoding="utf-8")
        for role_id, role in BROAD_ROLES.items():
            assert role_id not in text, f"{path.relative_to(ROOT)} grants {role}"
        for name in resources_of_type(path, "Microsoft.Authorization/roleAssignments"):
            assignments += 1
            assert str(render(resource(path, name)["name"])).startswith("guid("), f"{name} has no guid() name"
    assert assignments >= 3


ROLE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


def test_operator_roles_exist_only_when_an_operator_is_given() -> None:
    loop = parse(RBAC)["resources"]["operatorStorageRoles"]["config"]["loop_type"]["detail"]["array_name"]
    assert render(loop) == "empty(operatorPrincipalId) ? [] : 'storageRolesForOperator'"
    assert ROLE_BLOB_DATA_OWNER not in _role_ids(RBAC, "storageRolesForOperator")
    assert ROLE_TABLE_DATA_CONTRIBUTOR not in _role_ids(RBAC, "storageRolesForOperator")
    reader = parse(RBAC)["resources"]["operatorClaimCheckReader"]["config"]
    assert render(reader["condition"]) == "!empty(operatorPrincipalId)"


def test_operator_reads_only_the_claim_check_container() -> None:
    """Not the account: it also holds the host's keys (azure-webjobs-secrets) and the deployment package."""
    account_wide = _role_ids(RBAC, "storageRolesForOperator")
    assert ROLE_BLOB_DATA_READER not in account_wide
    assert ROLE_BLOB_DATA_OWNER not in account_wide
    body = resource(RBAC, "operatorClaimCheckReader")
    assert body["scope"] == "claimCheckContainer"
    assert render(body["properties"]["roleDefinitionId"]).endswith("roles.storageBlobDataReader)")
    assert variable(RBAC, "roles")["storageBlobDataReader"] == ROLE_BLOB_DATA_READER
    container = parse(RBAC)["resources"]["claimCheckContainer"]
    assert container["existing"] is True
    assert container["type"] == "Microsoft.Storage/storageAccounts/blobServices/containers"
    assert container["config"]["name"] == "${storageAccountName}/default/${claimCheckContainerName}"
    assert render(module_params("rbac")["claimCheckContainerName"]) == "storage.outputs.claimCheckContainerName"
    assert render(parse(STORAGE)["outputs"]["claimCheckContainerName"]["value"]) == "claimCheckContainer.name"


def test_principal_type_comes_from_the_caller() -> None:
    """A service principal running azd (CI) is not a User: ARM refuses the mismatch (UnmatchedPrincipalType)."""
    azd_parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert azd_parameters["operatorPrincipalType"] == {"value": "${AZURE_PRINCIPAL_TYPE=User}"}
    assert module_params("rbac")["operatorPrincipalType"] == "operatorPrincipalType"
    hook = (INFRA / "hooks" / "preprovision.sh").read_text(encoding="utf-8")
    assert "azd env set AZURE_PRINCIPAL_TYPE" in hook


# --------------------------------------------------------------------------- monitoring


def _alert_query() -> str:
    query: str = variable(ALERTS, "query")
    return query


#: Application Insights cuts a trace message at this many characters.
TRACE_MESSAGE_LIMIT = 32_768
HOST_POISON_LINE = "Message has reached MaxDequeueCount of 5. Moving message to queue '{queue}'."


def _kql_alert(query: str, message: str) -> str | None:
    """The alert query replayed in Python on one AppTraces ``Message``: the queue dimension, or None.

    Every literal and regular expression comes from the query text (RE2 and
    Python agree on the constructs used); if the query changes shape, the
    asserts below fail rather than replay something else.
    """
    assert "parse_json" not in query, "the alert must not parse the whole (possibly cut) line"
    prefixes = re.findall(r'Message startswith_cs "([^"]+)"', query)
    assert len(prefixes) == 2, prefixes
    [head_length] = re.findall(r"extend head = substring\(Message, 0, (\d+)\)", query)
    [host_prefix] = re.findall(r'iff\(head startswith_cs "([^"]+)", "poisoned"', query)
    [outcome_re] = re.findall(r"extract\(@'([^']+)', 1, head\)", query)
    [outcomes] = re.findall(r"where outcome in \(([^)]*)\)", query)
    [(host_queue_re, host_scope)] = re.findall(r'extract\(@"([^"]+)", 1, substring\(Message, 0, (\d+)\)\)', query)
    [app_queue_re] = re.findall(r"extract\(@'([^']+)', 1, Message\)", query)
    assert host_prefix in prefixes

    message = message[:TRACE_MESSAGE_LIMIT]
    if not any(message.startswith(prefix) for prefix in prefixes):
        return None
    head = message[: int(head_length)]
    if head.startswith(host_prefix):
        outcome = "poisoned"
    else:
        found = re.search(outcome_re, head)
        outcome = found.group(1) if found else ""
    if outcome not in re.findall(r'"([^"]+)"', outcomes):
        return None
    for pattern, text in ((host_queue_re, message[: int(host_scope)]), (app_queue_re, message)):
        found = re.search(pattern, text)
        if found and found.group(1):
            return found.group(1)
    return "unknown"


def _line(kind: str, outcome: str, **fields: Any) -> str:
    defaults: dict[str, Any] = {"event_id": "e1", "event_type": "x.y", "dialog_id": "d1", "queue": "q-1"}
    return logs.event_line(kind, outcome, {**defaults, **fields, "dequeue_count": 5})


@pytest.mark.parametrize(
    ("kind", "outcome", "fires"),
    [
        (logs.PROCESS, "poisoned", True),
        (logs.INGEST, "parked", True),
        (logs.PROCESS, "parked", True),
        (logs.PROCESS, "done", False),
        (logs.INGEST, "enqueued", False),
        (logs.INGEST, "accepted", False),
    ],
)
def test_alert_fires_on_poisoned_and_parked_log_lines(kind: str, outcome: str, fires: bool) -> None:
    queue = _kql_alert(_alert_query(), _line(kind, outcome, queue="dialogporten-unrouted"))
    assert queue == ("dialogporten-unrouted" if fires else None)


def test_alert_fires_on_the_hosts_own_poison_line() -> None:
    """Messages the host moves itself (a timeout or crash on the last attempt) are alerted on too."""
    line = HOST_POISON_LINE.format(queue="dialogporten-dialog-created-v1-poison")
    assert _kql_alert(_alert_query(), line) == "dialogporten-dialog-created-v1-poison"
    assert _kql_alert(_alert_query(), "Message has been processed") is None


def test_alert_fires_on_a_line_cut_by_application_insights() -> None:
    """A line longer than a trace may be is cut: the outcome is still read.

    The app's own lines are bounded well below the limit (``shared.logs``; ``tests/unit/test_logs.py``),
    so the over-long line is built by hand, as an unbounded writer (an older release) would write it.
    """
    assert len(_line(logs.PROCESS, "poisoned", event_id="x" * 40_000)) < TRACE_MESSAGE_LIMIT
    line = (
        'dialogporten.process {"outcome":"poisoned","event_id":"' + "x" * 40_000
        + '","queue":"dialogporten-dialog-seen-v1","dequeue_count":5}'
    )  # fmt: skip
    assert len(line) > TRACE_MESSAGE_LIMIT
    with pytest.raises(json.JSONDecodeError):
        json.loads(line[:TRACE_MESSAGE_LIMIT].split(" ", 1)[1])  # what parse_json would have faced
    assert _kql_alert(_alert_query(), line) == "unknown"  # the queue field was cut off, the alert still fires


def test_alert_ignores_outcomes_and_queues_forged_inside_fields() -> None:
    """JSON escapes quotes inside a field, so a forged outcome or queue never matches."""
    forged = '{"outcome":"poisoned","queue":"forged-queue"}'
    assert _kql_alert(_alert_query(), _line(logs.INGEST, "accepted", event_id=forged)) is None
    line = _line(logs.PROCESS, "poisoned", event_id=',"queue":"forged-queue"', queue="real-queue")
    assert _kql_alert(_alert_query(), line) == "real-queue"


def test_alert_window_tolerates_ingestion_delay() -> None:
    """Each run looks back longer than its period and counts a line once, by ingestion time."""
    evaluation = variable(ALERTS, "evaluationFrequency")
    window = variable(ALERTS, "windowSize")
    minutes = {"PT5M": 5, "PT10M": 10, "PT15M": 15, "PT30M": 30}
    assert minutes[window] >= minutes[evaluation] + 10, "room for at least 10 minutes of ingestion delay"
    [ago] = re.findall(r"where ingestion_time\(\) > ago\((\d+)m\)", _alert_query())
    assert int(ago) == minutes[evaluation], "the ingestion-time filter must equal the evaluation period"
    rule = resource(ALERTS, "poisonedOrParked")["properties"]
    assert (rule["evaluationFrequency"], rule["windowSize"]) == ("evaluationFrequency", "windowSize")
    [dimension] = rule["criteria"]["allOf"][0]["dimensions"]
    assert dimension["name"] == "queue"
    assert "project TimeGenerated, outcome, queue" in _alert_query()


def test_alert_is_optional_and_mails_the_given_address() -> None:
    alerts = parse(MAIN)["modules"]["alerts"]["config"]
    assert render(alerts["condition"]) == "!empty(alertEmail)"
    assert param_default(MAIN, "alertEmail") == ""
    rule = resource(ALERTS, "poisonedOrParked")
    assert parse(ALERTS)["resources"]["poisonedOrParked"]["type"] == "Microsoft.Insights/scheduledQueryRules"
    assert rule["properties"]["scopes"] == ["logAnalyticsId"]
    criterion = rule["properties"]["criteria"]["allOf"][0]
    assert criterion["query"] == "query"
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
    assert [render(a) for a in rule["properties"]["actions"]["actionGroups"]] == ["actionGroup.id"]
    receivers = resource(ALERTS, "actionGroup")["properties"]["emailReceivers"]
    assert [r["emailAddress"] for r in receivers] == ["alertEmail"]
    assert len(resource(ALERTS, "actionGroup")["properties"]["groupShortName"]) <= 12


# --------------------------------------------------------------------------- outputs


def test_outputs_name_the_app_and_give_the_webhook_url_without_key() -> None:
    outputs = {name: render(o["value"]) for name, o in parse(MAIN)["outputs"].items()}
    assert outputs["FUNCTION_APP_NAME"] == "functionApp.outputs.name"
    assert outputs["FUNCTION_APP_HOSTNAME"] == "functionApp.outputs.defaultHostName"
    assert outputs["WEBHOOK_URL"] == "https://${functionApp.outputs.defaultHostName}/api/events"
    assert outputs["STORAGE_ACCOUNT_NAME"] == "storage.outputs.name"
    for path in bicep_files():
        for name, output in parse(path).get("outputs", {}).items():
            text = json.dumps(output)
            assert not re.search(r"ConnectionString|code=|key|secret|password", text, re.IGNORECASE), (
                f"{path.relative_to(ROOT)} output {name} may leak a secret: {text}"
            )


def test_deploy_guide_documents_every_parameter() -> None:
    table = docs_support.section("## Parameters").text
    rows = set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE))
    assert rows == set(parse(MAIN)["parameters"]), "docs/deploy.md's parameter table and main.bicep differ"
