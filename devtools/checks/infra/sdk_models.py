"""Every property a template sets exists in the Azure management SDK's model of its type.

The azure-mgmt-* packages are generated from the same REST API specifications
ARM validates requests against, so a property name they do not know is a typo
or a property of another API version or resource type, which ARM ignores or
refuses. It is a superset check: the models list every property, read-only ones
included, of the SDK's default API version, which may be newer than the
template's; the difference is reported, not failed.

Two generations of generated models are read: the older ones (msrest style,
``_attribute_map`` with dotted REST keys such as ``properties.minimumTlsVersion``)
and the newer ones (TypeSpec style, ``rest_field`` descriptors with type hints).
"""

from __future__ import annotations

import importlib
import re
import types
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from devtools.checks.infra.bicep import Template
from devtools.checks.infra.rules import Finding, _rel


@dataclass(frozen=True)
class ModelSpec:
    models: str
    model: str
    #: The module whose source holds the default api-version (operations module,
    #: ``_configuration`` or the client), when the models module's name does not say it.
    api_source: str | None = None


#: The SDK model of each resource type the templates declare (the body of a PUT).
MODELS: dict[str, ModelSpec] = {
    "Microsoft.Web/sites": ModelSpec("azure.mgmt.web.models", "Site", "azure.mgmt.web._configuration"),
    "Microsoft.Web/serverfarms": ModelSpec("azure.mgmt.web.models", "AppServicePlan", "azure.mgmt.web._configuration"),
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": ModelSpec(
        "azure.mgmt.web.models", "CsmPublishingCredentialsPoliciesEntity", "azure.mgmt.web._configuration"
    ),
    "Microsoft.Storage/storageAccounts": ModelSpec(
        "azure.mgmt.storage.models", "StorageAccountCreateParameters", "azure.mgmt.storage._configuration"
    ),
    "Microsoft.Storage/storageAccounts/blobServices": ModelSpec(
        "azure.mgmt.storage.models", "BlobServiceProperties", "azure.mgmt.storage._configuration"
    ),
    "Microsoft.Storage/storageAccounts/blobServices/containers": ModelSpec(
        "azure.mgmt.storage.models", "BlobContainer", "azure.mgmt.storage._configuration"
    ),
    "Microsoft.Storage/storageAccounts/queueServices": ModelSpec(
        "azure.mgmt.storage.models", "QueueServiceProperties", "azure.mgmt.storage._configuration"
    ),
    "Microsoft.Storage/storageAccounts/queueServices/queues": ModelSpec(
        "azure.mgmt.storage.models", "StorageQueue", "azure.mgmt.storage._configuration"
    ),
    "Microsoft.Storage/storageAccounts/tableServices": ModelSpec(
        "azure.mgmt.storage.models", "TableServiceProperties", "azure.mgmt.storage._configuration"
    ),
    "Microsoft.Storage/storageAccounts/tableServices/tables": ModelSpec(
        "azure.mgmt.storage.models", "Table", "azure.mgmt.storage._configuration"
    ),
    "Microsoft.Storage/storageAccounts/managementPolicies": ModelSpec(
        "azure.mgmt.storage.models", "ManagementPolicy", "azure.mgmt.storage._configuration"
    ),
    "Microsoft.ManagedIdentity/userAssignedIdentities": ModelSpec("azure.mgmt.msi.v2024_11_30.models", "Identity"),
    "Microsoft.OperationalInsights/workspaces": ModelSpec(
        "azure.mgmt.loganalytics.models", "Workspace", "azure.mgmt.loganalytics._configuration"
    ),
    "Microsoft.Insights/components": ModelSpec(
        "azure.mgmt.applicationinsights.v2020_02_02.models", "ApplicationInsightsComponent"
    ),
    "Microsoft.Insights/actionGroups": ModelSpec(
        "azure.mgmt.monitor.models", "ActionGroupResource", "azure.mgmt.monitor.operations._action_groups_operations"
    ),
    "Microsoft.Insights/scheduledQueryRules": ModelSpec(
        "azure.mgmt.monitor.models",
        "ScheduledQueryRuleResource",
        "azure.mgmt.monitor.operations._scheduled_query_rules_operations",
    ),
    "Microsoft.Insights/workbooks": ModelSpec("azure.mgmt.applicationinsights.v2023_06_01.models", "Workbook"),
    "Microsoft.KeyVault/vaults": ModelSpec(
        "azure.mgmt.keyvault.models", "VaultCreateOrUpdateParameters", "azure.mgmt.keyvault._configuration"
    ),
    "Microsoft.Authorization/roleAssignments": ModelSpec(
        "azure.mgmt.authorization.v2022_04_01.models", "RoleAssignmentCreateParameters"
    ),
}

#: Types no installed SDK models, each with the reason; reported, not checked.
UNCHECKED: dict[str, str] = {
    "Microsoft.Insights/diagnosticSettings": "azure-mgmt-monitor 7 no longer ships the diagnostic settings models",
}

#: Keys of a resource declaration that are Bicep's, not the REST body's.
BICEP_KEYS = frozenset({"parent", "scope", "dependsOn", "name"})

_LEAF = "leaf"
_OPEN = "open"


@dataclass(frozen=True)
class Shape:
    """What a value may look like: a leaf, anything (open), an object with fields, a list or a map."""

    kind: str  # leaf | open | object | list | map
    fields: tuple[tuple[str, Shape], ...] = ()
    item: Shape | None = None
    model: str = ""

    def field(self, name: str) -> Shape | None:
        for key, shape in self.fields:
            if key == name:
                return shape
        return None


LEAF = Shape(_LEAF)
OPEN = Shape(_OPEN)
_MSREST_LEAVES = frozenset(
    {
        "str",
        "bool",
        "int",
        "long",
        "float",
        "object",
        "iso-8601",
        "rfc-1123",
        "duration",
        "date",
        "unix-time",
        "bytearray",
        "base64",
        "time",
        "decimal",
    }
)


def _split_key(key: str) -> list[str]:
    # msrest escapes a literal dot in a REST name as "\\."
    return [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", key)]


def _msrest_shape(type_name: str, namespace: dict[str, Any], seen: frozenset[str]) -> Shape:
    if type_name.startswith("[") and type_name.endswith("]"):
        return Shape("list", item=_msrest_shape(type_name[1:-1], namespace, seen))
    if type_name.startswith("{") and type_name.endswith("}"):
        return Shape("map", item=_msrest_shape(type_name[1:-1], namespace, seen))
    if type_name in _MSREST_LEAVES or type_name not in namespace:
        return LEAF
    return _shape_of(namespace[type_name], seen)


def _hint_shape(hint: Any, seen: frozenset[str]) -> Shape:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        shapes = [_hint_shape(a, seen) for a in args if a is not type(None)]
        return next((s for s in shapes if s.kind != _LEAF), shapes[0] if shapes else LEAF)
    if origin in (list, typing.List):  # noqa: UP006
        return Shape("list", item=_hint_shape(args[0], seen) if args else OPEN)
    if origin in (dict, typing.Dict):  # noqa: UP006
        return Shape("map", item=_hint_shape(args[1], seen) if len(args) == 2 else OPEN)
    if isinstance(hint, type) and (hasattr(hint, "_attribute_map") or _rest_fields(hint)):
        return _shape_of(hint, seen)
    if hint is Any:
        return OPEN
    return LEAF


def _rest_fields(cls: type) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if type(value).__name__ == "_RestField":
                found[attr] = value
    return found


@cache
def _shape_of_cached(cls: type, seen: frozenset[str]) -> Shape:
    name = f"{cls.__module__}.{cls.__qualname__}"
    if name in seen:
        return OPEN  # a recursive model: stop, accept anything below
    seen = seen | {name}
    tree: dict[str, Any] = {}
    attribute_map = getattr(cls, "_attribute_map", None)
    if isinstance(attribute_map, dict):
        namespace = vars(importlib.import_module(cls.__module__.rsplit(".", 1)[0]))
        for spec in attribute_map.values():
            key, type_name = spec["key"], spec["type"]
            if key == "":
                return OPEN  # additional properties: anything goes
            parts = _split_key(key)
            node = tree
            for part in parts[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    break
            else:
                node[parts[-1]] = _msrest_shape(type_name, namespace, seen)
    else:
        fields = _rest_fields(cls)
        module = importlib.import_module(cls.__module__)
        # The generated modules import their models package as `_models` only for type checkers.
        package = importlib.import_module(cls.__module__.rsplit(".", 1)[0])
        hints = typing.get_type_hints(cls, globalns=vars(module), localns={"_models": package, **vars(module)})
        for attr, rest_field in fields.items():
            rest_name = rest_field._rest_name_input or attr
            tree[rest_name] = _hint_shape(hints.get(attr, Any), seen)

    def build(node: dict[str, Any], model: str) -> Shape:
        return Shape(
            "object",
            fields=tuple((k, v if isinstance(v, Shape) else build(v, model)) for k, v in sorted(node.items())),
            model=model,
        )

    return build(tree, cls.__qualname__)


def _shape_of(cls: type, seen: frozenset[str] = frozenset()) -> Shape:
    return _shape_of_cached(cls, seen)


def model_shape(spec: ModelSpec) -> Shape:
    return _shape_of(getattr(importlib.import_module(spec.models), spec.model))


def sdk_api_version(spec: ModelSpec) -> str:
    """The API version the SDK speaks for this type by default."""
    match = re.search(r"\.v(\d{4})_(\d{2})_(\d{2})(_preview)?\.", spec.models + ".")
    if match:
        return f"{match[1]}-{match[2]}-{match[3]}" + ("-preview" if match[4] else "")
    if not spec.api_source:
        raise LookupError(f"{spec.model}: no source for its API version")
    module = importlib.import_module(spec.api_source)
    source = Path(str(module.__file__)).read_text(encoding="utf-8")
    found = re.search(r'pop\("api[-_]version", (?:_params\.pop\("api-version", )?"([^"]+)"', source)
    if not found:
        raise LookupError(f"no default api-version in {spec.api_source}")
    return found.group(1)


def _is_expression(node: Any) -> bool:
    return isinstance(node, dict) and ("operator" in node or "function" in node or "loop_type" in node)


def unknown_properties(node: Any, shape: Shape, where: str) -> list[str]:
    """Paths below ``node`` whose name ``shape`` does not know."""
    if shape.kind in (_OPEN, _LEAF) or _is_expression(node):
        return []
    if isinstance(node, list):
        if shape.kind == "list" and shape.item is not None:
            return [p for i, item in enumerate(node) for p in unknown_properties(item, shape.item, f"{where}[{i}]")]
        return []
    if not isinstance(node, dict):
        return []
    if shape.kind == "map" and shape.item is not None:
        return [p for key, value in node.items() for p in unknown_properties(value, shape.item, f"{where}.{key}")]
    if shape.kind != "object":
        return []
    problems = []
    for key, value in node.items():
        name = key.strip("'")
        child = shape.field(name)
        if child is None:
            problems.append(f"{where}.{name} (not in {shape.model})")
        else:
            problems += unknown_properties(value, child, f"{where}.{name}")
    return problems


@dataclass(frozen=True)
class ApiNote:
    file: str
    symbol: str
    resource_type: str
    template_version: str
    sdk_version: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.symbol} {self.resource_type}@{self.template_version}: "
            f"checked against the SDK's {self.sdk_version}"
        )


def sdk_properties(templates: list[Template], root: Path) -> list[Finding]:
    """Every property name a template sets exists in the SDK model of its resource type.

    Source: the azure-mgmt-* packages (generated from the Azure REST API
    specifications, azure-rest-api-specs), e.g. azure.mgmt.web.models.Site.
    A resource type with no model here is a finding until it is mapped in
    MODELS (or listed, with its reason, in UNCHECKED).
    """
    findings: list[Finding] = []
    for template in templates:
        file = _rel(template, root)
        for symbol, declared in template.resources.items():
            if declared.get("existing"):
                continue
            resource_type = declared["type"]
            if resource_type in UNCHECKED:
                continue
            spec = MODELS.get(resource_type)
            if spec is None:
                findings.append(Finding("sdk-properties", file, symbol, f"no SDK model mapped for {resource_type}"))
                continue
            body = {k: v for k, v in template.body(symbol).items() if k not in BICEP_KEYS}
            for problem in unknown_properties(body, model_shape(spec), symbol):
                findings.append(Finding("sdk-properties", file, problem, f"unknown property of {resource_type}"))
    return findings


def api_versions(templates: list[Template], root: Path) -> tuple[list[ApiNote], list[str]]:
    """Where a template's API version differs from the SDK's, and the types left unchecked."""
    notes: list[ApiNote] = []
    unchecked: list[str] = []
    for template in templates:
        for symbol, declared in template.resources.items():
            if declared.get("existing"):
                continue
            resource_type = declared["type"]
            spec = MODELS.get(resource_type)
            if spec is None:
                if resource_type in UNCHECKED:
                    unchecked.append(f"{_rel(template, root)}: {symbol} {resource_type}: {UNCHECKED[resource_type]}")
                continue
            sdk = sdk_api_version(spec)
            if sdk != declared["api_version"]:
                notes.append(ApiNote(_rel(template, root), symbol, resource_type, declared["api_version"], sdk))
    return notes, unchecked
