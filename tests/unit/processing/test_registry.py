"""The app's registry finds every handler module without being told its name; a broken one fails loudly."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import shared.handlers
from shared.events.models import DialogCreated, DialogSeen
from shared.processing import defaults
from shared.processing.registry import Registry, app_registry
from tests.conftest import CATALOG_MODELS

PACKAGE = "discovery_probe"


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package shaped like ``shared/handlers``: its ``__init__`` names no module."""
    root = tmp_path / PACKAGE
    root.mkdir()
    (root / "__init__.py").write_text('"""handlers"""\n', encoding="utf-8")
    (root / "helpers.py").write_text("raise AssertionError('skipped modules are not imported')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_a_module_nobody_imports_by_name_registers_its_handlers_in_the_order_written(package: Path) -> None:
    (package / "audit.py").write_text(
        textwrap.dedent(
            """
            from shared.events import DialogSeen
            from shared.handlers import handles

            @handles(DialogSeen)
            def second_written_first(event: DialogSeen) -> None:
                pass

            def not_a_handler(event: DialogSeen) -> None:
                pass

            @handles(DialogSeen, effects=False)
            def audit_seen(event: DialogSeen) -> None:
                pass
            """
        ),
        encoding="utf-8",
    )
    (package / "zeta.py").write_text(
        "from shared.events import DialogSeen\nfrom shared.handlers import handles\n"
        "from discovery_probe.audit import audit_seen  # imported: not registered twice\n\n"
        "@handles(DialogSeen)\ndef last(event: DialogSeen) -> None:\n    pass\n",
        encoding="utf-8",
    )
    registry = Registry()
    assert registry.discover(PACKAGE, skip=("helpers",)) == ["audit", "zeta"]
    bindings = registry.handlers_for(DialogSeen)
    assert [(b.fn.__name__, b.effects) for b in bindings] == [
        ("second_written_first", True),
        ("audit_seen", False),
        ("last", True),
    ]
    assert registry.handlers_for(DialogCreated) == []


def test_a_module_that_fails_to_import_fails_discovery(package: Path) -> None:
    (package / "broken.py").write_text("from shared.events.models import NoSuchModel\n", encoding="utf-8")
    with pytest.raises(ImportError, match="NoSuchModel"):
        Registry().discover(PACKAGE, skip=("helpers",))


def test_the_app_imports_every_module_of_the_real_package() -> None:
    folder = Path(shared.handlers.__file__).parent
    on_disk = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    registry = app_registry()
    assert set(registry.discovered) == on_disk
    assert all(f"shared.handlers.{name}" in sys.modules for name in on_disk)


def test_the_app_registers_the_default_once_and_first_for_every_type() -> None:
    registry = app_registry()
    for model in CATALOG_MODELS():
        bindings = registry.handlers_for(model)
        assert bindings[0].fn is defaults.keep_dialog_state
        assert not bindings[0].effects
        assert [b.fn for b in bindings].count(defaults.keep_dialog_state) == 1
    # ... and no user-facing file carries a copy of it any more.
    for path in Path(shared.handlers.__file__).parent.glob("*.py"):
        assert "DialogStore" not in path.read_text(encoding="utf-8"), path.name


def test_importing_the_handler_package_registers_nothing_and_imports_no_handler_module() -> None:
    import subprocess

    probe = "import sys, shared.handlers; print(sorted(m for m in sys.modules if m.startswith('shared.handlers.')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
