"""``@handles(Model)`` is typed: mypy rejects a handler whose parameter does not take the model.

Run through mypy's own API on small modules, one that must pass and mutants that must fail, so the
typing of the registry is proven by the checker that enforces it (``make typecheck``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

from tests.conftest import ROOT

HEADER = """\
from shared.events import ActivityEvent, DialogCreated, DialogEvent, DialogUpdated
from shared.handlers import HandlerContext, handles
"""

GOOD = """\
@handles(DialogCreated)
def one(event: DialogCreated) -> None: ...

@handles(DialogCreated)
def with_context(event: DialogCreated, ctx: HandlerContext) -> None: ...

@handles(DialogCreated, DialogUpdated)
def both(event: DialogEvent) -> None: ...

@handles(DialogCreated)
def wider(event: DialogEvent) -> None: ...
"""

MUTANTS = {
    "another family": """\
@handles(DialogCreated)
def wrong(event: ActivityEvent) -> None: ...
""",
    "a narrower model than one of the registered": """\
@handles(DialogCreated, DialogUpdated)
def narrow(event: DialogCreated) -> None: ...
""",
    "a second argument that is not the context": """\
@handles(DialogCreated)
def wrong_ctx(event: DialogCreated, ctx: int) -> None: ...
""",
    "not a model": """\
@handles(int)
def not_a_model(event: int) -> None: ...
""",
}


def test_mypy_accepts_matching_handlers_and_rejects_each_mutant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the project's config and its warm cache (one run for all modules: mypy is slow)
    files = {"good": GOOD} | {f"mutant_{i}": body for i, body in enumerate(MUTANTS.values())}
    for name, body in files.items():
        (tmp_path / f"{name}.py").write_text(HEADER + "\n" + textwrap.dedent(body), encoding="utf-8")
    out, err, status = api.run(
        ["--strict", "--config-file", str(ROOT / "pyproject.toml"), *(str(tmp_path / f"{n}.py") for n in files)]
    )
    errors = [line for line in (out + err).splitlines() if ": error:" in line]
    assert status == 1, out + err
    assert not [line for line in errors if "good.py" in line], errors
    for i, name in enumerate(MUTANTS):
        assert [line for line in errors if f"mutant_{i}.py" in line], f"mypy accepted the mutant: {name}\n{out}"
