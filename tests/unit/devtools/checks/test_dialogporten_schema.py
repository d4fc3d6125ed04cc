"""The dialog models and the fake keep to the pinned OpenAPI document; the checks fail on broken input."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from devtools.altinn_sim.dialogporten import sample_dialog
from devtools.azurite import ROOT
from devtools.checks import dialogporten_schema as schema
from shared.altinn import dialogporten as dp

DIALOG = "V1ServiceOwnerDialogsQueriesGet_Dialog"
ROUTE = schema.DIALOG_ROUTE


@pytest.fixture
def document() -> dict[str, Any]:
    return copy.deepcopy(schema.pinned())


def test_the_package_is_pinned_exactly_in_package_json() -> None:
    pins = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert pins[schema.PACKAGE].replace(".", "").isdigit()  # an exact version, no range
    installed = json.loads((schema.SCHEMA_PATH.parent / "package.json").read_text())["version"]
    assert installed == pins[schema.PACKAGE]


def test_the_models_agree_with_the_pinned_document(document: dict[str, Any]) -> None:
    assert schema.check(document) == []
    assert schema.main([]) == 0


def test_a_new_enum_value_is_drift(document: dict[str, Any]) -> None:
    document["components"]["schemas"]["DialogsEntities_DialogStatus"]["enum"].append("Archived")
    assert schema.check(document) == ["DialogStatus vs DialogsEntities_DialogStatus: missing ['Archived'], "
                                      "not in the schema []"]  # fmt: skip


def test_a_removed_retyped_or_newly_nullable_property_is_drift(document: dict[str, Any]) -> None:
    props = document["components"]["schemas"][DIALOG]["properties"]
    del props["revision"]
    props["progress"] = {"type": "string"}
    props["org"]["nullable"] = True
    problems = schema.check(document)
    assert any("Dialog.revision" in p and "not a property" in p for p in problems)
    assert any("Dialog.progress" in p and "['str']" in p for p in problems)
    assert any("Dialog.org" in p and "nullable" in p for p in problems)
    assert len(problems) == 3


def test_list_items_of_another_schema_are_drift(document: dict[str, Any]) -> None:
    props = document["components"]["schemas"][DIALOG]["properties"]
    props["activities"]["items"] = {"$ref": "#/components/schemas/V1ServiceOwnerDialogsQueriesGet_DialogSeenLog"}
    (problem,) = schema.check(document)
    assert "Dialog.activities" in problem
    assert "items" in problem


def test_the_sample_dialog_is_a_valid_200_and_unknown_values_are_kept() -> None:
    raw = sample_dialog()
    schema.validate_answer(
        schema.pinned(), ROUTE, "GET", status=200, content_type="application/json", body=json.dumps(raw).encode()
    )
    dialog = dp.Dialog.model_validate({**raw, "status": "Archived", "somethingNew": 1})
    assert dialog.status == "Archived"
    assert dialog.model_extra is not None
    assert dialog.model_extra["somethingNew"] == 1


@pytest.mark.parametrize(
    ("status", "ctype", "body", "fragment"),
    [
        (200, "application/json", {**sample_dialog(), "notInTheSchema": 1}, "schema error"),
        (200, "application/json", {**sample_dialog(), "status": "Archived"}, "schema error"),
        (418, None, b"", "not documented"),
        (401, "text/plain", b"nope", "without a body"),
        (503, "application/json", {"title": "down"}, "content type"),
        (410, "application/problem+json", {"status": "gone"}, "schema error"),
    ],
)
def test_answers_outside_the_document_are_refused(status: int, ctype: str | None, body: Any, fragment: str) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ValueError, match=fragment):
        schema.validate_answer(schema.pinned(), ROUTE, "GET", status=status, content_type=ctype, body=raw)
