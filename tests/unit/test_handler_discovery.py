"""A handler module dropped into the handlers package runs without being named; a broken one fails loudly."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import shared.handlers
from shared.events.models import DialogSeen
from shared.handlers import registry

PACKAGE = "discovery_probe"


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package shaped like ``shared/handlers``: its ``__init__`` names no module and calls ``discover``."""
    root = tmp_path / PACKAGE
    root.mkdir()
    (root / "__init__.py").write_text(
        "from shared.processing.registry import discover\n"
        "DISCOVERED = discover(__name__, __path__, skip=('helpers',))\n",
        encoding="utf-8",
    )
    (root / "helpers.py").write_text("raise AssertionError('skipped modules are not imported')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_a_module_nobody_imports_by_name_registers_its_handler(package: Path) -> None:
    (package / "audit.py").write_text(
        textwrap.dedent(
            """
            from shared.events.models import DialogSeen
            from shared.processing.registry import handles

            @handles(DialogSeen)
            def audit_seen(event: DialogSeen) -> None:
                pass
            """
        ),
        encoding="utf-8",
    )
    module = __import__(PACKAGE)
    try:
        assert module.DISCOVERED == ["audit"]
        assert [fn.__name__ for fn in registry.handlers_for(DialogSeen)][-1] == "audit_seen"
    finally:
        registry.unregister(sys.modules[f"{PACKAGE}.audit"].audit_seen)


def test_a_module_that_fails_to_import_fails_the_package(package: Path) -> None:
    (package / "broken.py").write_text("from shared.events.models import NoSuchModel\n", encoding="utf-8")
    with pytest.raises(ImportError, match="NoSuchModel"):
        __import__(PACKAGE)


def test_the_real_package_imports_every_module_it_holds() -> None:
    folder = Path(shared.handlers.__file__).parent
    on_disk = {p.stem for p in folder.glob("*.py")} - {"__init__", "registry", "state"}
    assert set(shared.handlers.DISCOVERED) == on_disk
    assert all(f"shared.handlers.{name}" in sys.modules for name in on_disk)


def test_the_defaults_run_before_handlers_of_discovered_modules() -> None:
    first = registry.handlers_for(DialogSeen)[0]
    assert (first.__module__, first.__name__) == ("shared.handlers.dialog", "keep_dialog_state")
