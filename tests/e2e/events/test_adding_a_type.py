"""The "Adding an event type" steps of docs/handlers.md, followed in a copy of the tree: one row, one model, one
command.

The row, the model and the command are read from the docs themselves, so the
steps cannot drift from what works. ``make test`` is stood in for by the tests
that a new type reaches: the catalog, the models, the docs' event table, routing,
the processing of the new type on a real Azurite, and the generated-files checks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.events.catalog import BY_TYPE
from tests import docs_support
from tests.conftest import ROOT

#: The page whose event table ``make catalog`` rewrites (``devtools/docs.py``).
EVENT_TABLE = "docs/webhook.md"
#: Not copied: environments (linked instead), caches and local state.
SKIP = shutil.ignore_patterns(
    ".git", ".venv", ".venv-checkov", "node_modules", ".make", "__pycache__", "*.pyc", ".pytest_cache",
    ".mypy_cache", ".ruff_cache", ".hypothesis", ".azurite", ".altinn-sim", ".azure", "*.egg-info",
)  # fmt: skip


def steps() -> tuple[str, str, list[str]]:
    """The catalog row, the model and the commands of the docs' section."""
    section = docs_support.section("## Adding an event type").text
    python = docs_support.python_blocks(section)
    assert len(python) == 2, "the section shows a catalog row and a model"
    assert len(docs_support.blocks(section, "bash")) == 1, "the section shows one command block"
    return python[0].strip(), python[1].strip() + "\n", docs_support.commands(section)


def run(command: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.azurite
def test_the_docs_steps_add_a_type_that_is_routed_processed_documented_and_deployed(tmp_path: Path) -> None:
    row, model, commands = steps()
    new_type = re.search(r'"(dialogporten\.[a-z.\-]+\.v1)"', row).group(1)  # type: ignore[union-attr]
    model_name = re.search(r"class (\w+)\(", model).group(1)  # type: ignore[union-attr]
    assert new_type not in BY_TYPE, "the docs' example must be a type the catalog does not have yet"
    assert commands[0] == "make catalog"
    assert commands[-1] == "make test"

    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=SKIP)
    (tree / ".venv").symlink_to(ROOT / ".venv")
    (tree / "node_modules").symlink_to(ROOT / "node_modules")
    if (ROOT.parent / "shared").is_dir():  # the reference material beside the checkout (seed, conformance vectors)
        (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    original = {p: (ROOT / p).read_text(encoding="utf-8") for p in (EVENT_TABLE, "infra/catalog.json")}

    # Step 1: the row, at the end of CATALOG.
    catalog_py = tree / "shared" / "events" / "catalog.py"
    text = catalog_py.read_text(encoding="utf-8")
    assert text.count("\n)\n\nBY_TYPE") == 1
    catalog_py.write_text(text.replace("\n)\n\nBY_TYPE", f"\n    {row},\n)\n\nBY_TYPE"), encoding="utf-8")
    # Step 2: the model, below the other models.
    events_py = tree / "shared" / "events" / "models.py"
    text = events_py.read_text(encoding="utf-8")
    last_model = max(m.end() for m in re.finditer(r"\nclass \w+\((?:Dialog|Transmission|Activity)Event\):\n.*\n", text))
    events_py.write_text(text[:last_model] + "\n\n" + model + text[last_model:], encoding="utf-8")

    # Step 3: `make catalog` (its venv prerequisite is the linked one, never rebuilt here).
    made = run(["make", "-o", ".make/venv", *commands[0].split()[1:]], tree)
    assert made.returncode == 0, made.stdout + made.stderr
    queue = new_type.replace(".", "-")
    assert f'"{queue}"' in (tree / "infra" / "catalog.json").read_text(encoding="utf-8")
    assert f'"{queue}-poison"' in (tree / "infra" / "catalog.json").read_text(encoding="utf-8")
    assert f"| `{new_type}` | `{queue}` | `{model_name}` |" in (tree / EVENT_TABLE).read_text(encoding="utf-8")

    # `make test`, for what a new type touches: the generated files' checks and the catalog-driven tests.
    python = str(tree / ".venv" / "bin" / "python")
    for check in (["-m", "devtools.export_catalog", "--check"], ["-m", "devtools.docs", "--check"]):
        done = run([python, *check], tree)
        assert done.returncode == 0, done.stdout + done.stderr
    suite = [
        "tests/unit/events/test_catalog.py", "tests/unit/events/test_models.py", "tests/unit/devtools/test_docs.py",
        "tests/unit/intake/test_plan.py", "tests/unit/test_function_app.py",
        f"tests/integration/processing/test_pipeline.py::test_each_type_reaches_its_handler_typed_and_updates_the_dialog_row[{new_type}]",
    ]  # fmt: skip
    tested = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *suite], tree, timeout=280)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    passed = {line.split(" ", 1)[1] for line in tested.stdout.splitlines() if line.startswith("PASSED ")}
    for test in (
        "tests/unit/events/test_catalog.py::test_queue_name_is_the_type_with_hyphens_and_valid_with_poison_suffix",
        "tests/unit/events/test_models.py::test_every_catalog_type_parses_into_its_own_model",
        "tests/unit/intake/test_plan.py::test_every_catalog_type_goes_to_its_own_queue",
        "tests/integration/processing/test_pipeline.py::test_each_type_reaches_its_handler_typed_and_updates_the_dialog_row",
    ):
        assert f"{test}[{new_type}]" in passed, tested.stdout[-4000:]
    assert "tests/unit/devtools/test_docs.py::test_the_docs_name_every_type_queue_and_setting" in passed

    # The copy was changed, never the tree under test.
    assert {p: (ROOT / p).read_text(encoding="utf-8") for p in original} == original
