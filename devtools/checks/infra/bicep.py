"""The Bicep templates as pycep parses them, with what the rules need to read them.

pycep (the parser checkov uses) turns a template into nested dicts. An
identifier and a string literal are both plain ``str`` there, so a reference is
recognised by its name: a string that names a parameter, variable, resource or
module of the file is read as a reference to it. Interpolations (``'${a.b}'``)
are scanned for identifier chains.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from pycep import BicepParser

#: Properties of a resource that are known when the deployment starts. Everything
#: else (``properties.*``, a module's ``outputs``) exists only once the resource
#: has been created or read. Source: the Bicep compiler's deploy-time constant
#: check (src/Bicep.Core/TypeSystem/DeployTimeConstantValidator.cs and its visitors) and
#: the docs of BCP120/BCP178/BCP182, which name ``id``, ``name``, ``type`` and
#: ``apiVersion`` as the properties readable at the start.
DEPLOY_TIME_RESOURCE_PROPERTIES = frozenset({"id", "name", "type", "apiVersion"})
#: Of a module only its ``name`` is known at the start.
DEPLOY_TIME_MODULE_PROPERTIES = frozenset({"name"})
#: Functions whose value is read from a deployed resource (pycep's snake_case names).
RUNTIME_FUNCTIONS = frozenset({"reference", "list_keys", "list_account_sas", "list_service_sas", "list"})

_INTERPOLATION = re.compile(r"\$\{(.*?)\}")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
_CHAIN = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?!\s*\()")

Path_ = tuple[str, ...]


@cache
def _parser() -> BicepParser:
    return BicepParser()


@cache
def _parse_text(text: str) -> dict[str, Any]:
    tree: dict[str, Any] = dict(_parser().parse(text=text))
    return tree


def parse(path: Path) -> dict[str, Any]:
    """The parsed template (shared between callers for the same text: never modify it)."""
    return _parse_text(path.read_text(encoding="utf-8"))


def is_loop(node: Any) -> bool:
    return isinstance(node, dict) and "loop_type" in node and "config" in node


def loop_source(loop: dict[str, Any]) -> Any:
    return loop["loop_type"]["detail"]["array_name"]


def loop_locals(loop: dict[str, Any]) -> set[str]:
    detail = loop["loop_type"]["detail"]
    return {detail[k] for k in ("item_name", "index_name") if isinstance(detail.get(k), str)}


def _accessor_path(node: Any) -> tuple[Path_, list[Any]]:
    """The access path of an expression like ``a.b[c].d``, and sub-expressions read on the way."""
    if isinstance(node, str):
        return (node,), []
    if isinstance(node, dict) and "operator" in node:
        op = node["operator"]
        operands = op["operands"]
        if op["type"] == "property_accessor":
            left, left_reads = _accessor_path(operands["operand_1"])
            right, right_reads = _accessor_path(operands["operand_2"])
            return left + right, left_reads + right_reads
        if op["type"] == "index_accessor":
            left, left_reads = _accessor_path(operands["operand_1"])
            return (*left, "[]"), [*left_reads, operands["operand_2"]]
    return ("<expression>",), [node]


def reads(node: Any) -> Iterator[Path_]:
    """Every access path an expression reads (loop variables included; the caller resolves them)."""
    if isinstance(node, str):
        if "${" in node:
            for inner in _INTERPOLATION.findall(node):
                for chain in _CHAIN.findall(_QUOTED.sub("''", inner)):
                    yield tuple(chain.split("."))
        else:
            yield (node,)
        return
    if isinstance(node, list):
        for item in node:
            yield from reads(item)
        return
    if not isinstance(node, dict):
        return
    if "operator" in node and node["operator"]["type"] in ("property_accessor", "index_accessor"):
        path, sub = _accessor_path(node)
        if path[0] != "<expression>":
            yield path
        for expression in sub:
            yield from reads(expression)
        return
    if "function" in node:
        function = node["function"]
        if function["type"] in RUNTIME_FUNCTIONS or str(function["type"]).startswith("list_"):
            yield (f"{function['type']}()",)
        for value in function["parameters"].values():
            yield from reads(value)
        return
    for key, value in node.items():
        if isinstance(key, str) and "${" in key:
            yield from reads(key)
        yield from reads(value)


@dataclass(frozen=True)
class Template:
    """One .bicep file, parsed."""

    path: Path

    @cached_property
    def tree(self) -> dict[str, Any]:
        return parse(self.path)

    @property
    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = self.tree.get("parameters", {})
        return params

    @property
    def variables(self) -> dict[str, Any]:
        variables: dict[str, Any] = self.tree.get("variables", {})
        return variables

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.tree.get("resources", {})
        return resources

    @property
    def modules(self) -> dict[str, Any]:
        modules: dict[str, Any] = self.tree.get("modules", {})
        return modules

    def body(self, symbol: str) -> dict[str, Any]:
        """A resource's or module's body: inside its condition and its loop, if any."""
        declared = self.resources.get(symbol) or self.modules[symbol]
        config: dict[str, Any] = declared["config"]
        if "condition" in config and "config" in config and not is_loop(config):
            config = config["config"]
        if is_loop(config):
            config = config["config"]
        return config

    def condition(self, symbol: str) -> Any:
        declared = self.resources.get(symbol) or self.modules[symbol]
        config = declared["config"]
        if is_loop(config):
            return config.get("condition")
        return config.get("condition") if "config" in config else None

    @cached_property
    def source(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def name_is_literal(self, symbol: str) -> bool:
        """Whether the declaration's ``name`` is a quoted literal (pycep drops the quotes)."""
        header = re.search(rf"^(?:resource|module)\s+{re.escape(symbol)}\s", self.source, re.MULTILINE)
        if header is None:
            return False
        name = re.compile(r"^\s*name:\s*(\S)", re.MULTILINE).search(self.source, header.end())
        return (
            name is not None
            and name.group(1) == "'"
            and "${" not in self.source[name.start() : self.source.find("\n", name.start())]
        )

    def decorator(self, param: str, kind: str) -> Any:
        for decorator in self.parameters[param].get("decorators", []):
            if decorator["type"] == kind:
                return decorator["argument"]
        return None

    def module_path(self, symbol: str) -> Path:
        relative: str = self.modules[symbol]["detail"]["path"]
        return (self.path.parent / relative).resolve()

    def runtime_reads(self, node: Any, local: frozenset[str] = frozenset()) -> list[str]:
        """Why ``node`` cannot be computed at the start of the deployment (empty: it can).

        Each entry names the access that reads a runtime value, followed through
        variables (``appSettings -> storage.properties...``).
        """
        return self._runtime_reads(node, local, ())

    def _runtime_reads(self, node: Any, local: frozenset[str], via: tuple[str, ...]) -> list[str]:
        found: list[str] = []
        for path in reads(node):
            head = path[0]
            shown = " -> ".join((*via, ".".join(path)))
            if head.endswith("()"):
                found.append(shown)
            elif head in local or head in self.parameters:
                continue
            elif head in self.variables and head not in via:
                value = self.variables[head]["value"]
                inner_local = local
                if is_loop(value):
                    inner_local = local | loop_locals(value)
                found += self._runtime_reads(value, inner_local, (*via, head))
            elif head in self.resources:
                if len(path) < 2 or path[1] not in DEPLOY_TIME_RESOURCE_PROPERTIES:
                    found.append(shown)
            elif head in self.modules and (len(path) < 2 or path[1] not in DEPLOY_TIME_MODULE_PROPERTIES):
                found.append(shown)
        return found


def templates(infra: Path) -> list[Template]:
    return [Template(p) for p in sorted(infra.rglob("*.bicep"))]


def walk(node: Any, where: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) below ``node``; list items get their index as path element."""
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*where, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*where, str(i)))
