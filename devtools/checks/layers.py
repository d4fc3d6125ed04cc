"""``shared/`` imports run one way, down its layers, and never in a circle: the rule of the house, checked.

From top to bottom; a module may import from its own package or from a layer below, and from a package of
its own layer only where :data:`SIDEWAYS` says so:

1. ``shared.functions`` (the Azure adapters) and ``shared.handlers`` (the user's room, with the
   ``shared.dialogporten`` path it has always imported);
2. ``shared.intake`` and ``shared.processing``, which do not import each other;
3. ``shared.events``, ``shared.stores``, ``shared.altinn``: events imports neither of the others; stores and
   altinn import events, never each other;
4. ``shared.errors``, ``shared.settings``, ``shared.logs``.

``function_app`` (the composition root) sits above them all. An import under ``if TYPE_CHECKING:`` does not
count (it never runs); an import inside a function does (a lazy import is still a dependency), and so does
``importlib.import_module`` of a constant name. Processing finds the user's handlers by *discovery* (a
package name given at run time), which is the point: it never imports them by name.

    python -m devtools.checks.layers      # prints every violation and circle; exit 1 if any
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]

#: Top to bottom; the index is the layer's number (0: the composition root).
LAYERS: Final[tuple[tuple[str, ...], ...]] = (
    ("function_app",),
    ("shared.functions", "shared.handlers", "shared.dialogporten"),
    ("shared.intake", "shared.processing"),
    ("shared.events", "shared.stores", "shared.altinn"),
    ("shared.errors", "shared.settings", "shared.logs"),
)
#: Imports allowed between different packages of one layer.
SIDEWAYS: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        ("shared.handlers", "shared.dialogporten"),  # the public path handlers have always used
        ("shared.stores", "shared.events"),
        ("shared.altinn", "shared.events"),
        ("shared.settings", "shared.errors"),
        ("shared.logs", "shared.errors"),
    }
)


def unit_of(module: str) -> str:
    """The package a module belongs to for the rule: ``shared.X`` (or ``function_app``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "shared" and len(parts) > 1 else parts[0]


def layer_of(unit: str) -> int | None:
    for depth, units in enumerate(LAYERS):
        if unit in units:
            return depth
    return None


def sources(root: Path = ROOT, package: str = "shared") -> dict[str, str]:
    """Every module of ``package``, by dotted name (with ``function_app`` for the app's ``shared``)."""
    found = {"function_app": (root / "function_app.py").read_text(encoding="utf-8")} if package == "shared" else {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path.read_text(encoding="utf-8")
    return found


def packages_of(root: Path = ROOT, package: str = "shared") -> set[str]:
    return {".".join(p.relative_to(root).parts[:-1]) for p in (root / package).rglob("__init__.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _package_of(module: str, is_package: bool) -> str:
    return module if is_package else module.rpartition(".")[0]


def imports_of(module: str, source: str, modules: Iterable[str], *, is_package: bool = False) -> set[str]:
    """The app modules ``module`` imports, at any depth of its code, except under ``if TYPE_CHECKING:``."""
    known = set(modules)
    found: set[str] = set()

    def resolve(name: str) -> None:
        while name and name not in known:  # `import shared.events.models.x` names a module or an attribute
            name = name.rpartition(".")[0]
        if name:
            found.add(name)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(module, is_package)
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                resolve(candidate if candidate in known else base)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            resolve(node.args[0].value)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    found.discard(module)
    return found


@dataclass(frozen=True, slots=True)
class Violation:
    importer: str
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.importer} imports {self.imported}: {self.why}"


def graph(modules: Mapping[str, str], packages: Iterable[str] = ()) -> dict[str, set[str]]:
    pkgs = set(packages)
    return {name: imports_of(name, text, modules, is_package=name in pkgs) for name, text in modules.items()}


def violations(edges: Mapping[str, set[str]]) -> list[Violation]:
    found = []
    for importer, imported_all in sorted(edges.items()):
        for imported in sorted(imported_all):
            mine, theirs = unit_of(importer), unit_of(imported)
            if mine == theirs:
                continue
            here, there = layer_of(mine), layer_of(theirs)
            if here is None or there is None:
                found.append(Violation(importer, imported, f"{mine if here is None else theirs} is in no layer"))
            elif there < here:
                found.append(Violation(importer, imported, f"upward: layer {here} may not import layer {there}"))
            elif there == here and (mine, theirs) not in SIDEWAYS:
                found.append(Violation(importer, imported, f"sideways: {mine} may not import {theirs}"))
    return found


def circles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Every set of modules that import each other, directly or around (Tarjan's strongly connected parts)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def strong(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                strong(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(edges):
        if node not in index:
            strong(node)
    return found


def check(root: Path = ROOT) -> list[str]:
    """Every violation and circle in the tree at ``root``, as lines (empty: the house is in order)."""
    modules = sources(root)
    edges = graph(modules, packages_of(root))
    return [str(v) for v in violations(edges)] + [f"circle: {' <-> '.join(c)}" for c in circles(edges)]


def main() -> int:
    problems = check()
    for line in problems:
        print(line)
    print(f"layers: {len(problems)} problem(s) in {len(sources())} modules")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
