"""Every exception the app raises has the one root of shared/errors.py: read from the source, and walked live."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import shared
from devtools.checks import error_tree, layers
from shared.errors import DialogportenError

REAL = layers.sources()


def with_added(module: str, text: str) -> list[str]:
    return error_tree.findings(dict(REAL) | {module: REAL[module] + "\n" + text + "\n"})


def test_the_source_has_one_error_tree() -> None:
    assert error_tree.findings(REAL) == []


def test_every_exception_class_of_the_package_derives_from_the_root_and_is_defined_in_errors() -> None:
    seen = []
    for info in pkgutil.walk_packages(shared.__path__, "shared."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__.startswith("shared"):
                seen.append(cls)
                assert issubclass(cls, DialogportenError), cls
                assert cls.__module__ == "shared.errors", cls
    assert len({c.__name__ for c in seen}) >= 30  # the walk saw the tree, not nothing


@pytest.mark.parametrize(
    ("module", "added", "expected"),
    [
        ("shared.stores.sink", "class Oops(Exception):\n    pass", "exception class Oops is defined outside"),
        ("shared.stores.sink", "class Oops(ValueError):\n    pass", "exception class Oops is defined outside"),
        ("shared.errors", "class Stray(ValueError):\n    pass", "exception class Stray does not derive from"),
        ("shared.intake.plan", "def f() -> None:\n    raise RuntimeError('x')", "raises RuntimeError"),
        ("shared.stores.dialogs", "def f() -> None:\n    raise ValueError", "raises ValueError"),
    ],
)
def test_each_mutant_is_found(module: str, added: str, expected: str) -> None:
    assert [f for f in with_added(module, added) if expected in f]


def test_a_derived_class_in_errors_and_a_raise_of_it_are_fine() -> None:
    assert with_added("shared.errors", "class Later(TransientError):\n    pass") == []
    assert with_added("shared.intake.plan", "def f() -> None:\n    raise StorageUnavailable('x')") == []
