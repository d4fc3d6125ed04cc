"""The post-deploy check (devtools/verify_deploy) against a fake Azure over real HTTP.

The fake (tests/infra/fake_arm.py) serves synthetic management-API responses
shaped after the REST references; a test checks every one of them against the
Azure management SDK's models, so the checker is tested on shapes ARM returns.
Each other test breaks one thing a deployment can get wrong and expects that
check, and only that check, to fail.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from devtools import verify_deploy
from devtools.infracheck.sdk_models import MODELS, ModelSpec, model_shape, unknown_properties
from devtools.verify_deploy import Check, Expected, RestArm, Target
from tests.infra import fake_arm
from tests.infra.fake_arm import FakeAzure, serve

pytestmark = pytest.mark.infra


class FakeCredential:
    """Stands in for Entra ID (az login): hands out a fixed bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        assert scopes in (("https://management.azure.com/.default",), ("https://api.loganalytics.io/.default",))
        return AccessToken("synthetic-token", 4_102_444_800)


@pytest.fixture(scope="module")
def expected() -> Expected:
    return Expected.from_checkout()


@pytest.fixture
def fake(expected: Expected) -> Iterator[FakeAzure]:
    with serve(FakeAzure(fake_arm.healthy(expected))) as running:
        yield running


def run(fake: FakeAzure, expected: Expected, **kwargs: Any) -> dict[str, Check]:
    target = Target(
        subscription=fake_arm.SUBSCRIPTION,
        resource_group=fake_arm.RESOURCE_GROUP,
        app=fake_arm.APP,
        storage=fake_arm.STORAGE,
        workspace=fake_arm.WORKSPACE,
        altinn=kwargs.pop("altinn", "tt02"),
        arm=fake.base,
        log_analytics=fake.base,
        webhook_base=fake.base,
    )
    checks = verify_deploy.verify(RestArm(FakeCredential(), allow_http=True), target, expected, **kwargs)
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), names
    return {c.name: c for c in checks}


def failed(checks: dict[str, Check]) -> set[str]:
    return {name for name, check in checks.items() if check.ok is False}


def test_expected_can_be_read_after_the_app_was_indexed_elsewhere() -> None:
    """azure-functions refuses a second get_functions() on one app: the indexers share one result."""
    from tests.conftest import app_functions

    names = {f.get_function_name() for f in app_functions()}
    assert Expected.from_checkout().functions == names


def test_expected_comes_from_the_checkout(expected: Expected) -> None:
    from shared import catalog

    assert {"webhook", "get_dialog", "purge_idempotency"} <= expected.functions
    assert {row.function_name for row in catalog.CATALOG} <= expected.functions
    assert expected.trigger_queues == {row.queue for row in catalog.CATALOG}  # the parking queue has none
    assert set(catalog.all_queues()) == expected.queues
    assert {"idempotency", "dialogs", "catchup"} == expected.tables


def test_a_healthy_deployment_passes(fake: FakeAzure, expected: Expected) -> None:
    checks = run(fake, expected)
    assert failed(checks) == set(), [str(c) for c in checks.values()]
    assert checks["webhook OPTIONS handshake"].ok is None  # needs an allowed address
    assert checks["webhook refuses this machine"].ok is True
    assert checks["telemetry arrives"].ok is True
    # Every ARM call carried a bearer token and an api-version; queues were read over two pages.
    arm_calls = [r for r in fake.requests if r[1] != "/api/events"]
    assert all(auth == "Bearer synthetic-token" for _, _, _, auth in arm_calls)
    assert all("api-version" in query for _, path, query, _ in arm_calls if not path.startswith("/v1/"))
    assert sum(1 for _, path, _, _ in arm_calls if path.endswith("/queueServices/default/queues")) == 2


def test_from_an_allowed_address_the_handshake_is_checked(fake: FakeAzure, expected: Expected) -> None:
    checks = run(fake, expected, from_allowed_address=True)
    assert checks["webhook OPTIONS handshake"].ok is True
    assert checks["webhook refuses this machine"].ok is None
    assert fake_arm.FUNCTION_KEY not in "".join(str(c) for c in checks.values()), "the key must never be printed"


def _without_function(responses: dict[Any, Any], name: str) -> None:
    listing = responses[("GET", f"{fake_arm.SITE}/functions")]
    listing["value"] = [f for f in listing["value"] if not f["name"].endswith(f"/{name}")]


def _settings(responses: dict[Any, Any]) -> dict[str, str]:
    settings: dict[str, str] = responses[("POST", f"{fake_arm.SITE}/config/appsettings/list")]["properties"]
    return settings


def _web(responses: dict[Any, Any]) -> dict[str, Any]:
    web: dict[str, Any] = responses[("GET", f"{fake_arm.SITE}/config/web")]["properties"]
    return web


BREAKAGES: dict[str, tuple[Any, set[str]]] = {
    "code not published (a queue function missing)": (
        lambda r: _without_function(r, "on_dialog_created_v1"),
        {"functions", "queue triggers"},
    ),
    "the catalog's tables missing": (
        lambda r: r[("GET", f"{fake_arm.ACCOUNT}/tableServices/default/tables")].update(value=[]),
        {"tables"},
    ),
    "a connection string": (
        lambda r: _settings(r).update(
            AzureWebJobsStorage="DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0"
        ),
        {"app settings"},
    ),
    "the other environment's source host": (
        lambda r: _settings(r).update(ALLOWED_SOURCE_HOSTS="platform.altinn.no"),
        {"app settings"},
    ),
    "no body size limit": (lambda r: _settings(r).pop("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"), {"app settings"}),
    "both Altinn addresses allowed": (
        lambda r: _web(r)["ipSecurityRestrictions"].insert(0, {"ipAddress": "20.100.46.139/32", "action": "Allow"}),
        {"IP allow list"},
    ),
    "open to everyone": (lambda r: _web(r).update(ipSecurityRestrictionsDefaultAction="Allow"), {"IP allow list"}),
    "host in error": (
        lambda r: r[("GET", f"{fake_arm.SITE}/hostruntime/admin/host/status")].update(
            state="Error", errors=["Azure.Storage: This request is not authorized to perform this operation."]
        ),
        {"host runs"},
    ),
    "no telemetry": (
        lambda r: r[("POST", f"/v1/workspaces/{fake_arm.CUSTOMER_ID}/query")]["tables"][0].update(rows=[[0]]),
        {"telemetry arrives"},
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_breakage_fails_its_check_only(expected: Expected, breakage: str) -> None:
    responses = copy.deepcopy(fake_arm.healthy(expected))
    change, expected_failures = BREAKAGES[breakage]
    change(responses)
    with serve(FakeAzure(responses)) as running:
        checks = run(running, expected)
    assert failed(checks) == expected_failures, [str(c) for c in checks.values()]


def test_the_webhook_answering_this_machine_fails(expected: Expected) -> None:
    """401 means the request reached the host's key check: the IP allow list let this machine in."""
    with serve(FakeAzure(fake_arm.healthy(expected), webhook_post_status=401)) as running:
        checks = run(running, expected)
    assert failed(checks) == {"webhook refuses this machine"}
    assert "additionalAllowedIpAddresses" in checks["webhook refuses this machine"].detail


def test_a_missing_role_is_reported_with_what_to_do(expected: Expected) -> None:
    errors = {("GET", f"{fake_arm.SITE}/functions"): 403}
    with serve(FakeAzure(fake_arm.healthy(expected), errors=errors)) as running:
        checks = run(running, expected)
    assert failed(checks) == {"functions"}
    assert "403" in checks["functions"].detail
    assert "Reader" in checks["functions"].detail


def test_main_reads_the_azd_values_and_exits_by_the_result(
    fake: FakeAzure, expected: Expected, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "AZURE_SUBSCRIPTION_ID": fake_arm.SUBSCRIPTION,
        "AZURE_RESOURCE_GROUP": fake_arm.RESOURCE_GROUP,
        "FUNCTION_APP_NAME": fake_arm.APP,
        "STORAGE_ACCOUNT_NAME": fake_arm.STORAGE,
        "LOG_ANALYTICS_WORKSPACE_NAME": fake_arm.WORKSPACE,
        "ALTINN_ENVIRONMENT": "tt02",
    }
    endpoints = {"arm": fake.base, "log_analytics": fake.base, "webhook_base": fake.base}
    arm = RestArm(FakeCredential(), allow_http=True)
    assert verify_deploy.main([], arm=arm, env=env, endpoints=endpoints) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out
    assert "ok   functions" in out
    assert verify_deploy.main(["--altinn", "prod"], arm=arm, env=env, endpoints=endpoints) == 1
    out = capsys.readouterr().out
    assert "FAIL IP allow list" in out
    assert "FAIL app settings" in out
    with pytest.raises(SystemExit):
        verify_deploy.main([], arm=arm, env={}, endpoints=endpoints)
    assert "missing subscription" in capsys.readouterr().err


# --------------------------------------------------------------------------- the fixtures are ARM's shapes


SYNTHETIC_MODELS: dict[str, ModelSpec] = {
    "functions": ModelSpec("azure.mgmt.web.models", "FunctionEnvelope"),
    "config/appsettings/list": ModelSpec("azure.mgmt.web.models", "StringDictionary"),
    "config/web": ModelSpec("azure.mgmt.web.models", "SiteConfigResource"),
    "site": MODELS["Microsoft.Web/sites"],
    "queues": ModelSpec("azure.mgmt.storage.models", "ListQueue"),
    "tables": ModelSpec("azure.mgmt.storage.models", "Table"),
    "containers": ModelSpec("azure.mgmt.storage.models", "ListContainerItem"),
    "workspace": MODELS["Microsoft.OperationalInsights/workspaces"],
}


def _model_of(path: str) -> tuple[str, bool] | None:
    """Which SDK model a synthetic response is an instance of, and whether it is a list (``value``)."""
    if path.endswith("/functions"):
        return "functions", True
    if path.endswith(("/queues", "/queues#page2")):
        return "queues", True
    for suffix, name in (("/tables", "tables"), ("/containers", "containers")):
        if path.endswith(suffix):
            return name, True
    for suffix, name in (("/config/appsettings/list", "config/appsettings/list"), ("/config/web", "config/web")):
        if path.endswith(suffix):
            return name, False
    if path == fake_arm.SITE:
        return "site", False
    if path == fake_arm.WORKSPACE_ID:
        return "workspace", False
    return None  # no SDK model: host status, function keys, the Log Analytics query answer


def test_every_synthetic_response_has_only_properties_the_sdk_models_know(expected: Expected) -> None:
    checked = 0
    for (_, path), body in fake_arm.healthy(expected).items():
        found = _model_of(path)
        if found is None:
            continue
        name, is_list = found
        shape = model_shape(SYNTHETIC_MODELS[name])
        items = body["value"] if is_list else [body]
        assert set(body) <= ({"value", "nextLink"} if is_list else set(body))
        for item in items:
            assert unknown_properties(item, shape, name) == [], name
            checked += 1
    assert checked > len(expected.queues)


def test_the_sdk_check_would_catch_a_shape_arm_never_returns() -> None:
    shape = model_shape(SYNTHETIC_MODELS["config/web"])
    assert unknown_properties({"properties": {"ipAllowList": []}}, shape, "web") == [
        "web.properties.ipAllowList (not in SiteConfig)"
    ]
