"""The azd hooks (infra/hooks/*.sh), run by sh against a fake Azure CLI.

Neither Azure nor the Azure CLI exists here, so ``az`` and ``azd`` are small
local fakes on PATH that answer the few commands the hooks use, in the shapes
the CLI documents:
- ``az provider show --query registrationState -o tsv``: ``Registered``,
  ``NotRegistered``, ``Registering`` (learn.microsoft.com/cli/azure/provider);
- ``az account show --query user.type -o tsv``: ``user`` or
  ``servicePrincipal`` (learn.microsoft.com/cli/azure/account);
- ``az rest`` on ``<app id>/hostruntime/admin/host/status``: the host status
  object, whose ``state`` is ``Running`` once the host has started (the
  Functions host's admin API, proxied by ARM).
Each fake records its calls so that the tests see what the hooks did.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import docs_support

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "infra" / "hooks"
APP_ID = "/subscriptions/s1/resourceGroups/rg-dp/providers/Microsoft.Web/sites/func-dp-events-abc"

FAKE_AZ = r'''#!PYTHON
"""Fake Azure CLI for the hook tests: answers from environment variables, logs every call."""
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
    log.write("az " + " ".join(args) + "\n")
def arg(name):
    return args[args.index(name) + 1] if name in args else None
if args[:2] == ["provider", "show"]:
    print(os.environ.get("FAKE_PROVIDER_" + arg("--namespace").replace(".", "_"), "NotRegistered"))
elif args[:2] == ["provider", "register"]:
    pass
elif args[:2] == ["account", "show"]:
    print(os.environ["FAKE_USER_TYPE"])
elif args[:2] == ["functionapp", "show"]:
    print(os.environ["FAKE_APP_ID"])
elif args[0] == "rest":
    status = "https://management.azure.com" + os.environ["FAKE_APP_ID"] + "/hostruntime/admin/host/status"
    assert arg("--url").startswith(status + "?api-version=")
    counter = os.environ["FAKE_LOG"] + ".polls"
    polls = int(open(counter).read()) if os.path.exists(counter) else 0
    states = os.environ["FAKE_HOST_STATES"].split(",")
    if arg("--query") == "errors":
        print(json.dumps(["Azure.Storage: This request is not authorized to perform this operation (403)."]))
        sys.exit(0)
    open(counter, "w").write(str(polls + 1))
    state = states[min(polls, len(states) - 1)]
    if state == "fail":
        sys.exit(1)
    print(state)
else:
    sys.exit("fake az: unexpected command " + " ".join(args))
'''

FAKE_AZD = r"""#!/bin/sh
echo "azd $*" >> "$FAKE_LOG"
"""


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.replace("#!PYTHON", f"#!{sys.executable}"), encoding="utf-8")
    azd = bin_dir / "azd"
    azd.write_text(FAKE_AZD, encoding="utf-8")
    for tool in (az, azd):
        tool.chmod(0o755)
    return bin_dir


def run_hook(
    name: str, fake_bin: Path, tmp_path: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = tmp_path / "calls.log"
    environment = {
        "PATH": f"{fake_bin}:/usr/bin:/bin",
        "FAKE_LOG": str(log),
        "FAKE_APP_ID": APP_ID,
        "HOME": str(tmp_path),
        **env,
    }
    sh = shutil.which("sh") or "/bin/sh"
    completed = subprocess.run(
        [sh, str(HOOKS / name)], env=environment, capture_output=True, text=True, timeout=60, check=False
    )
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return completed, calls


def test_azure_yaml_runs_both_hooks() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    assert "  preprovision:\n    posix:\n      shell: sh\n      run: infra/hooks/preprovision.sh\n" in text
    assert "  postprovision:\n    posix:\n      shell: sh\n      run: infra/hooks/postprovision.sh\n" in text
    for hook in ("preprovision.sh", "postprovision.sh"):
        assert os.access(HOOKS / hook, os.X_OK), f"{hook} must be executable"


def test_preprovision_registers_the_providers_flex_needs(fake_bin: Path, tmp_path: Path) -> None:
    completed, calls = run_hook(
        "preprovision.sh",
        fake_bin,
        tmp_path,
        FAKE_USER_TYPE="user",
        FAKE_PROVIDER_Microsoft_Web="Registered",
        AZURE_SUBSCRIPTION_ID="s1",
        AZURE_ENV_NAME="dp-tt02",
    )
    assert completed.returncode == 0, completed.stderr
    registered = [c for c in calls if c.startswith("az provider register")]
    assert registered == ["az provider register --namespace Microsoft.App --subscription=s1 --wait"]
    assert "Microsoft.Web is registered" in completed.stdout


def test_preprovision_sets_service_principal_for_a_service_principal(fake_bin: Path, tmp_path: Path) -> None:
    """CI runs azd as a service principal: its role assignments must say so (UnmatchedPrincipalType)."""
    completed, calls = run_hook(
        "preprovision.sh",
        fake_bin,
        tmp_path,
        FAKE_USER_TYPE="servicePrincipal",
        FAKE_PROVIDER_Microsoft_Web="Registered",
        FAKE_PROVIDER_Microsoft_App="Registered",
        AZURE_ENV_NAME="dp-ci",
    )
    assert completed.returncode == 0, completed.stderr
    assert "azd env set AZURE_PRINCIPAL_TYPE ServicePrincipal" in calls
    assert not [c for c in calls if c.startswith("az provider register")]


def test_preprovision_sets_user_for_a_user_and_keeps_a_given_type(fake_bin: Path, tmp_path: Path) -> None:
    completed, calls = run_hook("preprovision.sh", fake_bin, tmp_path, FAKE_USER_TYPE="user", AZURE_ENV_NAME="dp-tt02")
    assert completed.returncode == 0, completed.stderr
    assert "azd env set AZURE_PRINCIPAL_TYPE User" in calls
    (tmp_path / "calls.log").unlink()
    completed, calls = run_hook(
        "preprovision.sh",
        fake_bin,
        tmp_path,
        FAKE_USER_TYPE="user",
        AZURE_ENV_NAME="dp-tt02",
        AZURE_PRINCIPAL_TYPE="Group",
    )
    assert completed.returncode == 0, completed.stderr
    assert not [c for c in calls if c.startswith("azd env set")]


def test_preprovision_says_what_is_missing_without_az(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    completed, _ = run_hook("preprovision.sh", empty, tmp_path)
    assert completed.returncode == 1
    assert "the Azure CLI (az) is required" in completed.stderr


def test_postprovision_waits_until_the_host_runs(fake_bin: Path, tmp_path: Path) -> None:
    """The new identity's roles propagate in minutes: the hook waits instead of letting the upload fail."""
    completed, calls = run_hook(
        "postprovision.sh",
        fake_bin,
        tmp_path,
        AZURE_RESOURCE_GROUP="rg-dp",
        FUNCTION_APP_NAME="func-dp-events-abc",
        FAKE_HOST_STATES="fail,Error,Error,Running",
        POSTPROVISION_INTERVAL_SECONDS="0",
    )
    assert completed.returncode == 0, completed.stderr
    polls = [c for c in calls if c.startswith("az rest")]
    assert len(polls) == 4
    assert "runs (after" in completed.stdout
    assert "host state 'Error'" in completed.stdout


def test_postprovision_gives_up_with_the_hosts_errors(fake_bin: Path, tmp_path: Path) -> None:
    completed, _ = run_hook(
        "postprovision.sh",
        fake_bin,
        tmp_path,
        AZURE_RESOURCE_GROUP="rg-dp",
        FUNCTION_APP_NAME="func-dp-events-abc",
        FAKE_HOST_STATES="Error",
        POSTPROVISION_INTERVAL_SECONDS="1",
        POSTPROVISION_TIMEOUT_SECONDS="2",
    )
    assert completed.returncode == 1
    assert "is still 'Error'" in completed.stderr
    assert "not authorized" in completed.stderr
    assert "see docs/deploy.md, 'When the deployment fails'." in completed.stderr
    assert docs_support.section("## When the deployment fails").page == docs_support.DOCS / "deploy.md"


def test_postprovision_needs_the_deployment_outputs(fake_bin: Path, tmp_path: Path) -> None:
    completed, _ = run_hook("postprovision.sh", fake_bin, tmp_path, FAKE_HOST_STATES="Running")
    assert completed.returncode != 0
    assert "AZURE_RESOURCE_GROUP" in completed.stderr


def test_the_docs_hook_lines_run_as_written(fake_bin: Path, tmp_path: Path) -> None:
    """docs/deploy.md's path without azd runs both hooks by hand (``sh infra/hooks/...``, the resource group and
    the app named inline): as written, from the checkout, against the fake az, they do what azd's hooks do."""
    lines = docs_support.commands(docs_support.section("## Without azd: `az` and Core Tools").text)
    hooks = [line for line in lines if "sh infra/hooks/" in line]
    assert [h.split("sh infra/hooks/", 1)[1].split()[0] for h in hooks] == ["preprovision.sh", "postprovision.sh"]
    log = tmp_path / "calls.log"
    environment = {
        "PATH": f"{fake_bin}:/usr/bin:/bin",
        "FAKE_LOG": str(log),
        "FAKE_APP_ID": APP_ID,
        "HOME": str(tmp_path),
        "FAKE_USER_TYPE": "user",
        "FAKE_HOST_STATES": "Error,Running",
        "POSTPROVISION_INTERVAL_SECONDS": "0",
        "RG": "rg-dp",
        "APP": "func-dp-events-abc",
    }
    for line in hooks:
        done = subprocess.run(
            ["sh", "-c", line], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (line, done.stdout, done.stderr)
    calls = log.read_text(encoding="utf-8").splitlines()
    assert "az provider register --namespace Microsoft.App --wait" in calls, calls
    assert "az provider register --namespace Microsoft.Web --wait" in calls, calls
    assert any(c.startswith("az functionapp show") and "rg-dp" in c and "func-dp-events-abc" in c for c in calls), calls
    assert sum(c.startswith("az rest") for c in calls) >= 2  # waited until the host ran
