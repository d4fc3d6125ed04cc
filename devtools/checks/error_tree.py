"""Every exception the app raises derives from the one root of ``shared/errors.py``, and is defined there.

Read from the source (an AST walk of every module of ``shared``), so a new exception class elsewhere, or a
``raise`` of a class outside the tree, is found without running the code. Python's own exceptions are
allowed only where :data:`ALLOWED` names the module and says why (a protocol or a library asks for them).

    python -m devtools.checks.error_tree     # prints every finding; exit 1 if any
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Mapping
from typing import Final

from devtools.checks.layers import ROOT, sources

ROOT_CLASS: Final = "DialogportenError"
ERRORS_MODULE: Final = "shared.errors"

#: (module, builtin exception) pairs that stay, each for a reason outside the app's control.
ALLOWED: Final[Mapping[tuple[str, str], str]] = {
    ("shared.events", "AttributeError"): "a module __getattr__ must raise AttributeError (PEP 562)",
    ("shared.events.models", "ValueError"): "a pydantic validator raises ValueError, pydantic makes it the field error",
    (
        "shared.events.jsonformat",
        "ValueError",
    ): "json.loads hooks raise ValueError; parse_json turns it into InvalidJson",
    ("shared.processing.registry", "TypeError"): "a wrong argument to @handles is a programming error, Python's kind",
    ("shared.settings", "KeyError"): "reading an undeclared setting is a programming error, caught by the tests",
    ("shared.errors", "TypeError"): "RetryLater given a naive datetime is a programming error, Python's kind",
}


def _classes(tree: ast.Module) -> list[ast.ClassDef]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def _base_names(node: ast.ClassDef) -> list[str]:
    names = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def _tree_of_errors(errors_source: str) -> set[str]:
    """The classes of the errors module that derive from the root (the root included)."""
    bases = {node.name: _base_names(node) for node in _classes(ast.parse(errors_source))}
    inside = {ROOT_CLASS}
    changed = True
    while changed:
        changed = False
        for name, parents in bases.items():
            if name not in inside and any(parent in inside for parent in parents):
                inside.add(name)
                changed = True
    return inside


def _is_exception_class(node: ast.ClassDef, known_exceptions: set[str]) -> bool:
    for name in _base_names(node):
        if name in known_exceptions:
            return True
        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            return True
    return False


def _raised_name(node: ast.Raise) -> str | None:
    exc = node.exc
    if isinstance(exc, ast.Call):
        exc = exc.func
    if isinstance(exc, ast.Name):
        return exc.id
    if isinstance(exc, ast.Attribute):
        return exc.attr
    return None  # a bare `raise`, or an exception object (caught and re-raised): no class to check


def findings(modules: Mapping[str, str]) -> list[str]:
    tree = _tree_of_errors(modules[ERRORS_MODULE])
    found: list[str] = []
    for module, source in sorted(modules.items()):
        parsed = ast.parse(source)
        local_exceptions = set(tree)
        for node in _classes(parsed):
            if _is_exception_class(node, local_exceptions):
                local_exceptions.add(node.name)
                if module != ERRORS_MODULE:
                    found.append(f"{module}: exception class {node.name} is defined outside {ERRORS_MODULE}")
                elif node.name not in tree:
                    found.append(f"{module}: exception class {node.name} does not derive from {ROOT_CLASS}")
        for raised in ast.walk(parsed):
            if not isinstance(raised, ast.Raise):
                continue
            name = _raised_name(raised)
            builtin = getattr(builtins, name, None) if name else None
            if isinstance(builtin, type) and issubclass(builtin, BaseException) and (module, name) not in ALLOWED:
                found.append(f"{module}:{raised.lineno}: raises {name}, which is outside the app's error tree")
    return found


def main() -> int:
    found = findings(sources(ROOT))
    for line in found:
        print(line)
    print(f"error tree: {len(found)} finding(s)")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
