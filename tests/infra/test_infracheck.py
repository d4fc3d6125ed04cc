"""The offline checker (devtools/checks/infra): silent on the real templates, loud on broken copies.

Each test copies infra/ (and pyproject.toml) into a temporary checkout, breaks
one thing the way the Bicep compiler or ARM would refuse, and expects the
matching rule to report it. The first mutants are the failures the templates
once had: the BCP178 loop over runtime app settings, ftpsState on Flex and a
maximumInstanceCount allowed below 40.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from devtools.checks import infra as infracheck
from devtools.checks.infra import __main__ as cli
from devtools.checks.infra.bicep import templates
from devtools.checks.infra.sdk_models import MODELS, UNCHECKED, api_versions, model_shape, sdk_api_version

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "infra", tmp_path / "infra")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def mutate(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{relative}: the mutation's anchor {old!r} must occur once"
    path.write_text(text.replace(old, new), encoding="utf-8")


def messages(root: Path, rule: str) -> list[str]:
    return [str(f) for f in infracheck.check(root, [rule])]


FUNCTION = "infra/app/function.bicep"
MAIN = "infra/main.bicep"
STORAGE = "infra/app/storage.bicep"
RBAC = "infra/app/rbac.bicep"
ALERTS = "infra/app/alerts.bicep"


def setting(name: str, value: str) -> str:
    """One app setting entry as the templates write it."""
    return f"        {{\n          name: '{name}'\n          value: '{value}'\n        }}\n"


APP_SETTINGS_LIST = re.compile(r"^      appSettings: \[\n.*?^      \]\n", re.MULTILINE | re.DOTALL)


def test_the_real_templates_pass_every_rule() -> None:
    assert infracheck.check(ROOT) == []


def test_every_rule_has_a_docstring_citing_its_source() -> None:
    for name, rule in infracheck.ALL_RULES.items():
        doc = rule.__doc__ or ""
        assert re.search(r"Source|source", doc), f"rule {name} names no source"


# --------------------------------------------------------------------------- deploy-time constants


def test_bcp178_a_for_over_a_variable_holding_runtime_values(checkout: Path) -> None:
    """The templates' own former failure: app settings looped from a variable with storage endpoints."""
    text = (checkout / FUNCTION).read_text(encoding="utf-8")
    text = APP_SETTINGS_LIST.sub(
        "      appSettings: [\n"
        "        for setting in items(appSettings): {\n"
        "          name: setting.key\n"
        "          value: setting.value\n"
        "        }\n"
        "      ]\n",
        text,
        count=1,
    )
    text = text.replace(
        "resource functionApp ",
        "resource stg 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {\n  name: 'stexample'\n}\n\n"
        "var appSettings = {\n"
        "  AzureWebJobsStorage__blobServiceUri: stg.properties.primaryEndpoints.blob\n"
        "  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString\n"
        "}\n\n"
        "resource functionApp ",
        1,
    )
    (checkout / FUNCTION).write_text(text, encoding="utf-8")
    found = messages(checkout, "deploy-time-constant")
    assert any("BCP178" in m and "appSettings -> stg.properties.primaryEndpoints.blob" in m for m in found), found
    assert any("applicationInsights.properties.ConnectionString" in m for m in found), found


def test_bcp178_a_for_over_a_module_output(checkout: Path) -> None:
    mutate(
        checkout,
        MAIN,
        "  for (cidr, i) in additionalAllowedIpAddresses: {",
        "  for (cidr, i) in storage.outputs.queueEndpoint: {",
    )
    found = messages(checkout, "deploy-time-constant")
    assert any("BCP178" in m and "storage.outputs.queueEndpoint" in m for m in found), found


def test_bcp182_a_variable_loop_body_reading_a_runtime_value(checkout: Path) -> None:
    mutate(checkout, FUNCTION, "    name: rule.name\n", "    name: applicationInsights.properties.AppId\n")
    found = messages(checkout, "deploy-time-constant")
    assert any("BCP182" in m and "applicationInsights.properties.AppId" in m for m in found), found


def test_bcp120_a_resource_name_from_a_runtime_property(checkout: Path) -> None:
    mutate(
        checkout,
        RBAC,
        "name: guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)",
        "name: guid(applicationInsights.properties.AppId, appPrincipalId, roles.monitoringMetricsPublisher)",
    )
    found = messages(checkout, "deploy-time-constant")
    assert any("BCP120" in m and "appMetricsPublisher" in m for m in found), found


def test_bcp120_an_existing_resource_named_by_a_runtime_property(checkout: Path) -> None:
    mutate(checkout, FUNCTION, "  name: applicationInsightsName\n", "  name: plan.properties.status\n")
    found = messages(checkout, "deploy-time-constant")
    assert any("BCP120" in m and "applicationInsights" in m and "plan.properties.status" in m for m in found), found


def test_bcp177_a_module_condition_on_a_runtime_property(checkout: Path) -> None:
    mutate(checkout, MAIN, "if (!empty(alertEmail))", "if (!empty(identity.properties.clientId))")
    found = messages(checkout, "deploy-time-constant")
    assert any("BCP177" in m and "identity.properties.clientId" in m for m in found), found


def test_id_name_and_parameters_stay_allowed(checkout: Path) -> None:
    """No false alarm: a resource's id and a module parameter are known at the start."""
    assert messages(checkout, "deploy-time-constant") == []


# --------------------------------------------------------------------------- Flex Consumption


@pytest.mark.parametrize(
    ("anchor", "replacement", "expected"),
    [
        (
            "      minTlsVersion: '1.2'\n",
            "      minTlsVersion: '1.2'\n      ftpsState: 'Disabled'\n",
            "siteConfig.ftpsState",
        ),
        (
            "      minTlsVersion: '1.2'\n",
            "      minTlsVersion: '1.2'\n      linuxFxVersion: 'Python|3.11'\n",
            "siteConfig.linuxFxVersion",
        ),
        (
            "      appSettings: [\n",
            "      appSettings: [\n" + setting("FUNCTIONS_WORKER_RUNTIME", "python"),
            "app setting FUNCTIONS_WORKER_RUNTIME",
        ),
        (
            "      appSettings: [\n",
            "      appSettings: [\n" + setting("WEBSITE_RUN_FROM_PACKAGE", "1"),
            "app setting WEBSITE_RUN_FROM_PACKAGE",
        ),
        (
            "      appSettings: [\n",
            "      appSettings: [\n" + setting("FUNCTIONS_EXTENSION_VERSION", "~4"),
            "app setting FUNCTIONS_EXTENSION_VERSION",
        ),
        (
            "      appSettings: [\n",
            "      appSettings: [\n" + setting("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
            "app setting AzureWebJobsStorage",
        ),
        (
            "      appSettings: [\n",
            "      appSettings: [\n" + setting("TZ", "Europe/Oslo"),
            "app setting TZ",
        ),
        (
            "      appSettings: [\n",
            "      appSettings: [\n" + setting("WEBSITE_CONTENTSHARE", "x"),
            "app setting WEBSITE_CONTENTSHARE",
        ),
    ],
)
def test_flex_rejects_deprecated_properties_and_settings(
    checkout: Path, anchor: str, replacement: str, expected: str
) -> None:
    mutate(checkout, FUNCTION, anchor, replacement)
    found = messages(checkout, "flex-rejected")
    assert any(expected in m for m in found), found


def test_flex_needs_app_settings_it_can_read(checkout: Path) -> None:
    text = (checkout / FUNCTION).read_text(encoding="utf-8")
    text = APP_SETTINGS_LIST.sub(
        "      appSettings: [for s in items({a: 'b'}): {\n        name: s.key\n        value: s.value\n      }]\n", text
    )
    (checkout / FUNCTION).write_text(text, encoding="utf-8")
    found = messages(checkout, "flex-rejected")
    assert any("must be a literal list" in m for m in found), found


# --------------------------------------------------------------------------- parameter bounds


@pytest.mark.parametrize(
    ("relative", "anchor", "replacement", "expected"),
    [
        # The templates' former bound: 1..1000 lets a deployment ask for what Flex refuses.
        (
            MAIN,
            "@minValue(40)\n@maxValue(1000)\nparam maximumInstanceCount",
            "@minValue(1)\n@maxValue(1000)\nparam maximumInstanceCount",
            "maximumInstanceCount needs @minValue(>=40)",
        ),
        (
            FUNCTION,
            "@minValue(40)\n@maxValue(1000)\nparam maximumInstanceCount",
            "@minValue(1)\n@maxValue(1000)\nparam maximumInstanceCount",
            "maximumInstanceCount needs @minValue(>=40)",
        ),
        (
            MAIN,
            "@maxValue(1000)\nparam maximumInstanceCount int = 40",
            "@maxValue(1000)\nparam maximumInstanceCount int = 39",
            "39 is outside",
        ),
        (
            "infra/main.parameters.json",
            '"maximumInstanceCount": {\n      "value": 40',
            '"maximumInstanceCount": {\n      "value": 10',
            "10 is outside",
        ),
        (
            MAIN,
            "  512\n  2048\n  4096\n])\nparam instanceMemoryMB",
            "  512\n  1024\n  2048\n])\nparam instanceMemoryMB",
            "instanceMemoryMB must be @allowed within",
        ),
        (FUNCTION, "        version: '3.11'", "        version: '3.9'", "python at one of"),
        (FUNCTION, "        version: '3.11'", "        version: '3.12'", "differs from the project's Python 3.11"),
    ],
)
def test_parameter_bounds_are_flex_consumptions(
    checkout: Path, relative: str, anchor: str, replacement: str, expected: str
) -> None:
    mutate(checkout, relative, anchor, replacement)
    found = messages(checkout, "param-bounds")
    assert any(expected in m for m in found), found


# --------------------------------------------------------------------------- SDK models


@pytest.mark.parametrize(
    ("relative", "anchor", "replacement", "expected"),
    [
        (FUNCTION, "      minTlsVersion: '1.2'\n", "      minTlsVersoin: '1.2'\n", "siteConfig.minTlsVersoin"),
        (
            FUNCTION,
            "    httpsOnly: true\n",
            "    httpsOnly: true\n    minTlsVersion: '1.2'\n",
            "properties.minTlsVersion",
        ),
        (STORAGE, "    allowSharedKeyAccess: false\n", "    allowSharedKeyAcess: false\n", "allowSharedKeyAcess"),
        (
            STORAGE,
            "    deleteRetentionPolicy: {\n      enabled: true\n",
            "    deleteRetentionPolicy: {\n      enable: true\n",
            "deleteRetentionPolicy.enable",
        ),
        (ALERTS, "    autoMitigate: true\n", "    autoMitigated: true\n", "autoMitigated"),
        (
            RBAC,
            "      principalType: 'ServicePrincipal'\n    }\n  }\n]",
            "      principalKind: 'ServicePrincipal'\n    }\n  }\n]",
            "principalKind",
        ),
        (
            "infra/app/monitoring.bicep",
            "    DisableLocalAuth: true\n",
            "    DisableLocalAuthentication: true\n",
            "DisableLocalAuthentication",
        ),
        (
            MAIN,
            "  location: location\n  tags: allTags\n}",
            "  location: location\n  tags: allTags\n  properties: {\n    isolationScope: 'None'\n"
            "    colour: 'red'\n  }\n}",
            "properties.colour",
        ),
    ],
)
def test_unknown_property_names_are_found(
    checkout: Path, relative: str, anchor: str, replacement: str, expected: str
) -> None:
    mutate(checkout, relative, anchor, replacement)
    found = messages(checkout, "sdk-properties")
    assert any(expected in m for m in found), found
    assert len(found) == 1, found


def test_a_resource_type_without_a_model_is_a_finding(checkout: Path) -> None:
    mutate(
        checkout,
        STORAGE,
        "output name string = storage.name",
        "resource other 'Microsoft.Example/widgets@2024-01-01' = {\n  name: 'w'\n}\n\n"
        "output name string = storage.name",
    )
    assert any("no SDK model mapped for Microsoft.Example/widgets" in m for m in messages(checkout, "sdk-properties"))


def test_every_mapped_model_imports_and_knows_its_properties() -> None:
    for resource_type, spec in MODELS.items():
        shape = model_shape(spec)
        assert shape.kind == "object", resource_type
        assert shape.fields, resource_type
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", sdk_api_version(spec)), resource_type
    site = model_shape(MODELS["Microsoft.Web/sites"])
    properties = site.field("properties")
    assert properties is not None
    site_config = properties.field("siteConfig")
    assert site_config is not None
    assert site_config.field("appSettings") is not None
    assert properties.field("functionAppConfig") is not None


def test_api_version_differences_are_recorded_and_unchecked_types_named() -> None:
    notes, unchecked = api_versions(templates(ROOT / "infra"), ROOT)
    for note in notes:
        assert note.template_version != note.sdk_version
        assert MODELS[note.resource_type]
    assert all(any(t in line for t in UNCHECKED) for line in unchecked)
    assert any("diagnosticSettings" in line for line in unchecked)


def test_cli_prints_findings_and_api_versions(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "infracheck: 0 finding(s)" in out
    assert "checked against the SDK's" in out
    mutate(
        checkout, FUNCTION, "      minTlsVersion: '1.2'\n", "      minTlsVersion: '1.2'\n      ftpsState: 'Disabled'\n"
    )
    assert cli.main([str(checkout)]) == 1
    assert "[flex-rejected]" in capsys.readouterr().out


# --------------------------------------------------------------------------- the Maskinporten key's vault

KEYVAULT = "infra/app/keyvault.bicep"


def test_the_vault_is_rbac_only_and_the_app_may_only_read_secrets() -> None:
    assert messages(ROOT, "key-vault") == []


@pytest.mark.parametrize(
    ("relative", "old", "new", "fragment"),
    [
        (KEYVAULT, "enableRbacAuthorization: true", "enableRbacAuthorization: false", "RBAC mode"),
        (
            KEYVAULT,
            "accessPolicies: []",
            "accessPolicies: [\n      {\n        tenantId: subscription().tenantId\n        objectId: appPrincipalId\n"
            "        permissions: {\n          secrets: [\n            'get'\n          ]\n        }\n      }\n    ]",
            "accessPolicies",
        ),
        (
            KEYVAULT,
            "var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'",
            "var keyVaultSecretsUser = '00482a5a-887f-4fb3-b363-3b7fe8e74483'",  # Key Vault Administrator
            "other than Key Vault Secrets User",
        ),
        (
            KEYVAULT,
            "output name string = vault.name",
            "output name string = vault.name\noutput "
            "secretUri string = 'https://${vault.name}.vault.azure.net/secrets/x'\noutput privateKey string = name",
            "output privateKey",
        ),
        (
            MAIN,
            "output VAULT_NAME string = enrichment ? vaultName : ''",
            "output VAULT_NAME string = enrichment ? vaultName : ''\n"
            "output KEY_REF string = "
            "'@Microsoft.KeyVault(VaultName=${vaultName};SecretName=${maskinportenKeySecretName})'",
            "output KEY_REF",
        ),
        (
            MAIN,
            "maskinportenPrivateKey: enrichment ? '@Microsoft.KeyVault(VaultName=",
            "maskinportenPrivateKey: enrichment ? 'inline-(VaultName=",
            "must be a Key Vault reference",
        ),
    ],
)
def test_the_key_vault_rule_refuses_a_weaker_vault(
    checkout: Path, relative: str, old: str, new: str, fragment: str
) -> None:
    mutate(checkout, relative, old, new)
    found = messages(checkout, "key-vault")
    assert found
    assert any(fragment in m for m in found), found


# --------------------------------------------------------------------------- the dashboard's workbook

WORKBOOK = "infra/app/workbook.bicep"
WORKBOOK_JSON = "infra/app/workbook.json"
WORKBOOK_NAME = "name: guid(resourceGroup().id, environmentName, 'dialogporten-events-workbook')"
LOADED = "replace(loadTextContent('workbook.json'), '__LOG_ANALYTICS_WORKSPACE_ID__', logAnalyticsId)"


def test_the_workbook_passes_its_rule() -> None:
    assert messages(ROOT, "workbook") == []


@pytest.mark.parametrize(
    ("relative", "old", "new", "fragment"),
    [
        # ARM refuses a workbook name that is not a GUID.
        (MAIN, WORKBOOK_NAME, "name: 'dialogporten-dashboard'", "must be a GUID"),
        (WORKBOOK, "  name: name\n", "  name: '${name}-v2'\n", "must be a GUID"),
        # A name that changes: every redeploy would create a second workbook with the same display name.
        (
            MAIN,
            WORKBOOK_NAME,
            "name: guid(resourceGroup().id, deploymentSeed)",
            "a new workbook on every deployment",
        ),
        (WORKBOOK, "  kind: 'shared'\n", "  kind: 'user'\n", "must be one of ['shared']"),
        (WORKBOOK, "    category: 'workbook'\n", "", "properties.category"),
        (WORKBOOK, "    displayName: displayName\n", "", "properties.displayName"),
        (WORKBOOK, "    sourceId: logAnalyticsId\n", "", "properties.sourceId"),
        (WORKBOOK, "loadTextContent('workbook.json')", "loadTextContent('dashboard.json')", "does not exist"),
        (WORKBOOK, LOADED, '\'{"version":"Notebook/1.0","items":[]}\'', "must come from one loadTextContent"),
    ],
)
def test_the_workbook_rule_refuses_a_broken_workbook(
    checkout: Path, relative: str, old: str, new: str, fragment: str
) -> None:
    if "deploymentSeed" in new:
        mutate(
            checkout, MAIN, "param tags object = {}", "param tags object = {}\nparam deploymentSeed string = newGuid()"
        )
    mutate(checkout, relative, old, new)
    found = messages(checkout, "workbook")
    assert any(fragment in m for m in found), found


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"version": "Notebook/1.0", "items": [' + " " * 131_072 + "]}", "loadTextContent() takes 131072"),
        ('{"version": "Notebook/1.0", "items": [', "is not JSON"),
        ('{"version": "Notebook/1.0", "items": []}', "is not a workbook"),
        ('{"items": [{"type": 1, "content": {"json": "x"}}]}', "is not a workbook"),
    ],
)
def test_the_workbook_rule_reads_the_loaded_file(checkout: Path, content: str, fragment: str) -> None:
    (checkout / WORKBOOK_JSON).write_text(content, encoding="utf-8")
    found = messages(checkout, "workbook")
    assert any(fragment in m for m in found), found


def test_the_workbooks_properties_are_checked_against_the_sdk_model(checkout: Path) -> None:
    mutate(checkout, WORKBOOK, "    category: 'workbook'\n", "    categroy: 'workbook'\n")
    found = messages(checkout, "sdk-properties")
    assert found == ["infra/app/workbook.bicep: workbook.properties.categroy (not in Workbook): [sdk-properties] "
                     "unknown property of Microsoft.Insights/workbooks"]  # fmt: skip


def test_the_workbook_module_is_held_to_the_deploy_time_rules(checkout: Path) -> None:
    mutate(checkout, MAIN, "module workbook 'app/workbook.bicep' = {", "module workbook 'app/workbook.bicep' = if "
           "(!empty(monitoring.outputs.logAnalyticsId)) {")  # fmt: skip
    found = messages(checkout, "deploy-time-constant")
    assert any("BCP177" in m and "monitoring.outputs.logAnalyticsId" in m for m in found), found
