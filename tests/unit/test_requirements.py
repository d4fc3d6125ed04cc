"""What Azure installs (``requirements.txt``) is all the deployed app imports: the test-only SDKs stay out."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

#: Used only by the tests (and dev tools): listed in requirements-dev.txt, absent from the deployment.
DEV_ONLY = ["cloudevents", "pytest", "hypothesis", "typer", "rich"]

# Every module the host can load: the app as indexed, then every shared module and
# every handler, as the queue functions import them with their first message.
_IMPORT_THE_APP = """
import importlib, pkgutil, sys
for name in {blocked!r}:
    sys.modules[name] = None  # any import of it now raises ImportError
import function_app
function_app.app.get_functions()
import shared
for module in pkgutil.walk_packages(shared.__path__, "shared."):
    importlib.import_module(module.name)
print("imported", len([m for m in sys.modules if m.startswith("shared.")]))
"""


def _requirement_names(path: str) -> set[str]:
    names = set()
    for line in (ROOT / path).read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.\-]+)", line)
        if match and not line.lstrip().startswith(("#", "-r")):
            names.add(match.group(1).lower())
    return names


def test_dev_only_packages_are_not_runtime_requirements() -> None:
    runtime = _requirement_names("requirements.txt")
    assert "cloudevents" in _requirement_names("requirements-dev.txt")
    assert not runtime & set(DEV_ONLY)


def _import_app_without(blocked: list[str]) -> subprocess.CompletedProcess[str]:
    code = _IMPORT_THE_APP.format(blocked=blocked)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)


def test_the_deployed_app_imports_no_dev_only_package() -> None:
    result = _import_app_without(DEV_ONLY)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("imported ")


@pytest.mark.parametrize("needed", ["pydantic", "azure.storage.queue"])
def test_the_probe_fails_when_a_module_the_app_needs_is_missing(needed: str) -> None:
    # The check above could pass by importing nothing: blocking a runtime requirement must fail it.
    result = _import_app_without([needed])
    assert result.returncode != 0
    assert "ImportError" in result.stderr or "ModuleNotFoundError" in result.stderr
