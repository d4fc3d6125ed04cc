"""The post-deploy check (devtools/verify_deploy) against a fake Azure over real HTTP.

The fake (tests/infra/fake_arm.py) serves synthetic management-API responses
shaped after the REST references; a test checks every one of them against the
Azure management SDK's models, so the checker is tested on shapes ARM returns.
Each other test breaks one thing a deployment can get wrong and expects that
check, and only that check, to fail.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from devtools import verify_deploy
from devtools.checks.infra.sdk_models import MODELS, ModelSpec, model_shape, unknown_properties
from devtools.verify_deploy import Check, Expected, RestArm, Target
from tests import docs_support
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
    from shared.events import catalog

    assert {"webhook", "get_dialog", "purge_idempotency"} <= expected.functions
    assert {row.function_name for row in catalog.CATALOG} <= expected.functions
    assert expected.trigger_queues == {row.queue for row in catalog.CATALOG}  # the parking queue has none
    assert set(catalog.all_queues()) == expected.queues
    assert {"idempotency", "dialogs", "catchup", "poisonreasons"} == expected.tables


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


DEPLOYED = {
    "AZURE_SUBSCRIPTION_ID": fake_arm.SUBSCRIPTION,
    "AZURE_RESOURCE_GROUP": fake_arm.RESOURCE_GROUP,
    "FUNCTION_APP_NAME": fake_arm.APP,
    "STORAGE_ACCOUNT_NAME": fake_arm.STORAGE,
    "LOG_ANALYTICS_WORKSPACE_NAME": fake_arm.WORKSPACE,
    "ALTINN_ENVIRONMENT": "tt02",
}
#: What an old shell session may still export: another deployment's subscription and app.
STALE = {"AZURE_SUBSCRIPTION_ID": "99999999-0000-0000-0000-000000000099", "FUNCTION_APP_NAME": "func-dp-events-old"}

FAKE_AZD = r"""#!PYTHON
# Fake Azure Developer CLI: `azd env get-values --output json` prints FAKE_AZD_VALUES; every call is logged.
import os, sys
with open(os.environ["FAKE_AZD_LOG"], "a", encoding="utf-8") as log:
    log.write("azd " + " ".join(sys.argv[1:]) + "\n")
if sys.argv[1:] != ["env", "get-values", "--output", "json"]:
    sys.exit("fake azd: unexpected command " + " ".join(sys.argv[1:]))
print(os.environ["FAKE_AZD_VALUES"])
"""


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """The operator's shell: a fake ``azd`` on PATH with the azd environment's values, and the shell's own variables.

    Returns the fake's call log.
    """

    def setup(azd: Mapping[str, str], exported: Mapping[str, str]) -> Path:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        tool = bin_dir / "azd"
        tool.write_text(FAKE_AZD.replace("#!PYTHON", f"#!{sys.executable}"), encoding="utf-8")
        tool.chmod(0o755)
        log = tmp_path / "azd.log"
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_AZD_LOG", str(log))
        monkeypatch.setenv("FAKE_AZD_VALUES", json.dumps({"AZURE_ENV_NAME": "dialogporten-tt02", **azd}))
        for variable in DEPLOYED:
            monkeypatch.delenv(variable, raising=False)
        for variable, value in exported.items():
            monkeypatch.setenv(variable, value)
        return log

    return setup


def main(fake: FakeAzure, *argv: str) -> int:
    """``make verify-deploy ARGS=...`` in the shell set up by ``shell``, against the fake Azure."""
    endpoints = {"arm": fake.base, "log_analytics": fake.base, "webhook_base": fake.base}
    return verify_deploy.main(list(argv), arm=RestArm(FakeCredential(), allow_http=True), endpoints=endpoints)


def test_main_reads_the_azd_values_and_exits_by_the_result(
    fake: FakeAzure, shell: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    log = shell(azd=DEPLOYED, exported={})
    assert main(fake) == 0
    assert log.read_text().splitlines() == ["azd env get-values --output json"]
    out = capsys.readouterr().out
    assert "0 failed" in out
    assert "ok   functions" in out
    assert main(fake, "--altinn", "prod") == 1
    out = capsys.readouterr().out
    assert "FAIL IP allow list" in out
    assert "FAIL app settings" in out


WORKBOOK_URL = (
    f"https://portal.azure.com/#@/resource/subscriptions/{fake_arm.SUBSCRIPTION}/resourceGroups/rg-dialogporten-tt02"
    "/providers/Microsoft.Insights/workbooks/0f8e3a4c-5b1d-4e2a-9c7f-1a2b3c4d5e6f/workbook"
)


def test_the_dashboards_link_is_printed_last_when_azd_has_it(
    fake: FakeAzure, shell: Callable[..., Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKBOOK_URL", raising=False)
    shell(azd={**DEPLOYED, "WORKBOOK_URL": WORKBOOK_URL}, exported={})
    assert main(fake) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("verify-deploy: ")
    assert lines[-1] == f"dashboard: {WORKBOOK_URL}"
    assert main(fake, "--altinn", "prod") == 1  # a failed check: the link still helps
    assert capsys.readouterr().out.splitlines()[-1] == f"dashboard: {WORKBOOK_URL}"
    # Deployed before the workbook existed (no such output), or no azd: no line, nothing fails.
    shell(azd=DEPLOYED, exported={})
    assert main(fake) == 0
    assert "dashboard" not in capsys.readouterr().out
    # The shell's export serves when azd has none.
    monkeypatch.setenv("WORKBOOK_URL", WORKBOOK_URL)
    assert main(fake) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"dashboard: {WORKBOOK_URL}"


def test_the_shell_and_azd_agreeing_runs_as_before(
    fake: FakeAzure, shell: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Both set, the same values: no refusal (a guard against refusing too much; it passed before too)."""
    shell(azd=DEPLOYED, exported=DEPLOYED)
    assert main(fake) == 0
    assert "0 failed" in capsys.readouterr().out


def test_a_stale_shell_variable_is_refused_before_any_request(
    fake: FakeAzure, shell: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    shell(azd=DEPLOYED, exported={**DEPLOYED, **STALE})
    with pytest.raises(SystemExit) as exited:
        main(fake)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    for variable, stale in STALE.items():
        assert f"{variable}: the shell says {stale!r}, azd says {DEPLOYED[variable]!r}" in err
    assert "AZURE_RESOURCE_GROUP" not in err  # the values that agree are not named
    assert "--prefer azd or --prefer shell" in err
    assert fake.requests == []  # no check, no key listing, no POST to the webhook
    # Naming the values outright settles it too.
    assert main(fake, "--subscription", fake_arm.SUBSCRIPTION, "--app", fake_arm.APP) == 0


def test_with_prefer_azd_it_checks_the_azd_deployment(
    fake: FakeAzure, shell: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    shell(azd=DEPLOYED, exported={**DEPLOYED, **STALE})
    assert main(fake, "--prefer", "azd") == 0, capsys.readouterr().out
    arm_paths = [path for _, path, _, _ in fake.requests if path.startswith("/subscriptions/")]
    assert arm_paths
    assert all(path.startswith(f"/subscriptions/{fake_arm.SUBSCRIPTION}/") for path in arm_paths)
    assert not [path for path in arm_paths if STALE["FUNCTION_APP_NAME"] in path]


def test_with_prefer_shell_it_checks_the_shell_deployment(
    fake: FakeAzure, shell: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    shell(azd={**DEPLOYED, **STALE}, exported=DEPLOYED)  # this time azd's environment is the old one
    assert main(fake, "--prefer", "shell") == 0, capsys.readouterr().out
    arm_paths = [path for _, path, _, _ in fake.requests if path.startswith("/subscriptions/")]
    assert arm_paths
    assert all(path.startswith(f"/subscriptions/{fake_arm.SUBSCRIPTION}/") for path in arm_paths)
    assert not [path for path in arm_paths if STALE["FUNCTION_APP_NAME"] in path]


@pytest.mark.parametrize("value", ["", "   "])
def test_a_missing_value_is_refused_before_any_request(
    fake: FakeAzure, shell: Callable[..., Path], capsys: pytest.CaptureFixture[str], value: str
) -> None:
    shell(azd={**DEPLOYED, "AZURE_RESOURCE_GROUP": value}, exported={})
    with pytest.raises(SystemExit) as exited:
        main(fake)
    assert exited.value.code == 2
    assert "missing resource_group" in capsys.readouterr().err
    assert fake.requests == []


def test_a_name_that_would_change_the_url_is_refused_before_any_request(
    fake: FakeAzure, shell: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    shell(azd=DEPLOYED, exported={})
    with pytest.raises(SystemExit) as exited:
        main(fake, "--app", f"{fake_arm.APP}/functions/webhook")
    assert exited.value.code == 2
    assert "is not a name" in capsys.readouterr().err
    assert fake.requests == []


def test_an_app_without_a_host_name_fails_its_check_without_a_request_to_none(expected: Expected) -> None:
    responses = copy.deepcopy(fake_arm.healthy(expected))
    responses[("GET", fake_arm.SITE)]["properties"].pop("defaultHostName")
    probed: list[str] = []

    def probe(method: str, url: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str]]:
        probed.append(url)
        return 403, {}

    with serve(FakeAzure(responses)) as running:
        target = Target(
            subscription=fake_arm.SUBSCRIPTION,
            resource_group=fake_arm.RESOURCE_GROUP,
            app=fake_arm.APP,
            storage=fake_arm.STORAGE,
            workspace=fake_arm.WORKSPACE,
            altinn="tt02",
            arm=running.base,
            log_analytics=running.base,
        )
        checks = {
            c.name: c
            for c in verify_deploy.verify(RestArm(FakeCredential(), allow_http=True), target, expected, probe=probe)
        }
    assert probed == []  # never https://None/api/events
    assert failed(checks) == {"webhook refuses this machine"}
    assert "defaultHostName" in checks["webhook refuses this machine"].detail


def test_a_workspace_without_a_customer_id_fails_its_check_without_a_request_to_none(expected: Expected) -> None:
    responses = copy.deepcopy(fake_arm.healthy(expected))
    responses[("GET", fake_arm.WORKSPACE_ID)]["properties"].pop("customerId")
    with serve(FakeAzure(responses)) as running:
        checks = run(running, expected)
        paths = [path for _, path, _, _ in running.requests]
    assert failed(checks) == {"telemetry arrives"}
    assert "customerId" in checks["telemetry arrives"].detail
    assert not [path for path in paths if "None" in path]


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


def test_a_webhook_that_cannot_be_reached_fails_its_check_and_the_rest_still_run(
    fake: FakeAzure, expected: Expected
) -> None:
    """A host name that does not resolve (or a timeout): urllib raises; that is a failed check, not a traceback."""
    import urllib.error

    def probe(method: str, url: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str]]:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    checks = run(fake, expected, probe=probe)
    assert failed(checks) == {"webhook"}
    assert "could not reach it" in checks["webhook"].detail
    assert checks["telemetry arrives"].ok is True


def test_the_webhook_probe_never_follows_a_redirect_with_the_function_key() -> None:
    from devtools.altinn_sim import Options, Simulator
    from tests.http_support import Trap

    with Simulator(Options(port=0)) as sim, Trap() as trap:
        sim.redirects["/api/events"] = (302, f"{trap.url}/api/events?code=SECRET-FUNCTION-KEY")  # urllib followed it
        status, headers = verify_deploy.http_probe("POST", f"{sim.base_url}/api/events?code=SECRET-FUNCTION-KEY", {})
    assert (status, headers["location"]) == (302, f"{trap.url}/api/events?code=SECRET-FUNCTION-KEY")
    assert trap.requests == []


def test_the_docs_verify_deploy_lines_pass_on_a_healthy_deployment(
    fake: FakeAzure, shell: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every ``make verify-deploy`` line of the docs (the README's deploy in brief, docs/deploy.md's "After the
    first deploy"), as make runs it (``python -m devtools.verify_deploy $(ARGS)``), in the azd project of a healthy
    deployment; the ``--prefer azd`` line in a shell that still exports another deployment's names."""
    assert "\nverify-deploy: $(STAMPS)/venv\n\t$(PY) -m devtools.verify_deploy $(ARGS)\n" in (
        docs_support.ROOT / "Makefile"
    ).read_text(encoding="utf-8")
    shown = [(where, line) for where, line in docs_support.all_commands() if line.startswith("make verify-deploy")]
    assert {where.heading for where, _ in shown} == {
        "## Deploy to Azure, in brief",
        "## After the first deploy: `make verify-deploy`",
    }
    for _, line in shown:
        words = shlex.split(line)
        assert words[:2] == ["make", "verify-deploy"], line
        assert all(w.startswith("ARGS=") for w in words[2:]), line
        args = [a for w in words[2:] for a in shlex.split(w.removeprefix("ARGS="))]
        shell(azd=DEPLOYED, exported={**DEPLOYED, **STALE} if "--prefer" in args else {})
        assert main(fake, *args) == 0, (line, capsys.readouterr().out)
        assert "0 failed" in capsys.readouterr().out, line
