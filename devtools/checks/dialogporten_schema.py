"""Dialogporten's pinned OpenAPI document: the contract the dialog models and the local fake must keep.

The document is ``swagger.verified.json`` of the npm package ``@digdir/dialogporten-schema`` (ISC),
pinned in package.json's devDependencies and installed by ``make install``.

python -m devtools.checks.dialogporten_schema --check   exit 1 when the models of shared.altinn.dialogporten
                                                 disagree with the pinned document (a test runs it)

Rules of :func:`check` (each is what lets a model silently disagree with Dialogporten):

- every enum of the models has exactly the values of its schema enum;
- every typed field of a model is a property of its schema (by its camelCase alias);
- its type matches: ``string``/``date-time`` -> datetime, ``string``/``guid`` -> UUID, other strings
  -> str (or an enum, when the schema refers to one), ``integer`` -> int, ``boolean`` -> bool,
  ``array`` -> list (of the mapped model when the items refer to one), objects -> dict or the model;
- a property the schema marks ``nullable`` must accept None in the model.

Properties the models do not type are fine: they are kept as extra fields.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import types
import typing
import uuid
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel

from devtools.azurite import ROOT
from shared.altinn import dialogporten as dp

PACKAGE: Final = "@digdir/dialogporten-schema"
SCHEMA_PATH: Final = ROOT / "node_modules" / "@digdir" / "dialogporten-schema" / "swagger.verified.json"
DIALOG_ROUTE: Final = "/api/v1/serviceowner/dialogs/{dialogId}"

MODELS: Final[dict[type[BaseModel], str]] = {
    dp.Dialog: "V1ServiceOwnerDialogsQueriesGet_Dialog",
    dp.Activity: "V1ServiceOwnerDialogsQueriesGet_DialogActivity",
    dp.Transmission: "V1ServiceOwnerDialogsQueriesGet_DialogTransmission",
}
ENUMS: Final[dict[type[Enum], str]] = {
    dp.DialogStatus: "DialogsEntities_DialogStatus",
    dp.ActivityType: "DialogsEntitiesActivities_DialogActivityType",
    dp.TransmissionType: "DialogsEntitiesTransmissions_DialogTransmissionType",
}


def load(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """The document (it starts with a UTF-8 byte order mark)."""
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make install` (npm ci installs {PACKAGE})")
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return document


@lru_cache(maxsize=1)
def pinned() -> dict[str, Any]:
    return load()


def _ref_name(prop: dict[str, Any]) -> str | None:
    ref = prop.get("$ref")
    if ref is None:
        one_of = prop.get("oneOf") or prop.get("allOf") or []
        if len(one_of) == 1:
            ref = one_of[0].get("$ref")
    return str(ref).rsplit("/", 1)[1] if ref else None


def _parts(annotation: Any) -> tuple[set[Any], bool]:
    """The members of a union annotation, and whether None is one of them."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = set(typing.get_args(annotation))
    else:
        members = {annotation}
    nullable = type(None) in members
    members.discard(type(None))
    return members, nullable


def _expected(prop: dict[str, Any], schemas: dict[str, Any]) -> set[Any] | str:
    """The Python types a property maps to (any of them will do), or a problem text."""
    name = _ref_name(prop)
    if name is not None:
        target = schemas.get(name, {})
        if "enum" in target:
            return {e for e, s in ENUMS.items() if s == name} or {str}
        return {m for m, s in MODELS.items() if s == name} | {dict}
    kind, fmt = prop.get("type"), prop.get("format")
    if kind == "string":
        return {dt.datetime} if fmt == "date-time" else {uuid.UUID} if fmt == "guid" else {str}
    if kind == "integer":
        return {int}
    if kind == "boolean":
        return {bool}
    if kind == "object":
        return {dict}
    if kind == "array":
        return {"array"}
    return f"a schema type this checker does not know: {json.dumps(prop)[:120]}"


def _origin(member: Any) -> Any:
    return typing.get_origin(member) or member


def check(document: dict[str, Any]) -> list[str]:
    """Every disagreement between the models of shared.altinn.dialogporten and ``document``."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    problems: list[str] = []
    for enum, name in ENUMS.items():
        values = schemas.get(name, {}).get("enum")
        if values is None:
            problems.append(f"{enum.__name__}: the schema {name} is gone")
        elif set(values) != {e.value for e in enum}:
            added, removed = set(values) - {e.value for e in enum}, {e.value for e in enum} - set(values)
            problems.append(f"{enum.__name__} vs {name}: missing {sorted(added)}, not in the schema {sorted(removed)}")
    for model, name in MODELS.items():
        schema = schemas.get(name)
        if schema is None:
            problems.append(f"{model.__name__}: the schema {name} is gone")
            continue
        properties: dict[str, Any] = schema.get("properties", {})
        for field_name, info in model.model_fields.items():
            alias = info.alias or field_name
            where = f"{model.__name__}.{field_name} ({name}.{alias})"
            prop = properties.get(alias)
            if prop is None:
                problems.append(f"{where}: not a property of the schema")
                continue
            members, accepts_none = _parts(info.annotation)
            if prop.get("nullable") and not accepts_none:
                problems.append(f"{where}: nullable in the schema, but the model does not accept None")
            expected = _expected(prop, schemas)
            if isinstance(expected, str):
                problems.append(f"{where}: {expected}")
            elif expected == {"array"}:
                item = prop.get("items", {})
                item_types = _expected(item, schemas)
                lists = [m for m in members if _origin(m) is list]
                if not lists:
                    problems.append(f"{where}: an array in the schema, not a list in the model")
                elif isinstance(item_types, set):
                    (inner,) = typing.get_args(lists[0]) or (Any,)
                    if inner is not Any and _origin(inner) not in item_types:
                        wanted = sorted(t.__name__ for t in item_types if isinstance(t, type))
                        problems.append(f"{where}: items are {inner}, the schema's are {wanted}")
            elif not any(_origin(m) in expected for m in members):
                wanted = sorted(t.__name__ for t in expected if isinstance(t, type))
                problems.append(f"{where}: typed {info.annotation}, the schema says {wanted}")
    return problems


def response_schema(document: dict[str, Any], route: str, method: str, status: int) -> dict[str, Any] | None:
    """The documented response of ``method route`` for ``status``: ``{content_type: schema}``; None if undocumented."""
    operation = document["paths"][route][method.lower()]
    response = operation["responses"].get(str(status))
    if response is None:
        return None
    return {ctype: body.get("schema", {}) for ctype, body in (response.get("content") or {}).items()}


#: Dialogporten answers 410 for a deleted dialog (#127), but the document lists no 410: its body is
#: checked as the ProblemDetails the other errors carry.
UNDOCUMENTED: Final = {410: "ProblemDetails"}


def validate_answer(
    document: dict[str, Any], route: str, method: str, *, status: int, content_type: str | None, body: bytes
) -> None:
    """Raise ``ValueError`` unless this answer is one the document describes for ``method route``."""
    from openapi_schema_validator import OAS30Validator  # a dev dependency: tests and the fake only

    documented = response_schema(document, route, method, status)
    if documented is None:
        if status not in UNDOCUMENTED:
            raise ValueError(f"{method} {route}: status {status} is not documented")
        documented = {"application/problem+json": {"$ref": f"#/components/schemas/{UNDOCUMENTED[status]}"}}
    if not documented:
        if body:
            raise ValueError(f"{method} {route} {status}: documented without a body, got {body[:80]!r}")
        return
    ctype = (content_type or "").split(";")[0].strip()
    if ctype not in documented:
        raise ValueError(f"{method} {route} {status}: content type {ctype!r}, documented {sorted(documented)}")
    schema = documented[ctype]
    value: Any = body.decode("utf-8")
    if "json" in ctype:
        value = json.loads(body)
    validator = OAS30Validator({**schema, "components": document["components"]})
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(map(str, first.absolute_path)) or "(root)"
        raise ValueError(f"{method} {route} {status}: {len(errors)} schema error(s), first at {where}: {first.message}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 on any disagreement (the default action)")
    parser.parse_args(argv)
    document = load()
    problems = check(document)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"shared/altinn/dialogporten.py disagrees with the pinned {PACKAGE}: fix the models", file=sys.stderr)
        return 1
    print(f"shared/altinn/dialogporten.py agrees with {PACKAGE} (OpenAPI {document['info'].get('version')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
