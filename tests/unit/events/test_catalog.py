"""The catalog is the single source of truth: check it against the seed, the facts and Azure's naming rules."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from shared.events import catalog
from shared.events.catalog import CATALOG, UNROUTED_QUEUE, Family, is_valid_queue_name
from tests.conftest import ROOT

SEED = ROOT.parent / "shared" / "seed" / "hendelser.md"
NOT_IN_SEED = {
    "dialogporten.dialog.activity.correspondence-opened.v1",
    "dialogporten.dialog.activity.correspondence-confirmed.v1",
}


def test_catalog_has_each_dialogporten_type_once() -> None:
    types = [row.type for row in CATALOG]
    assert len(set(types)) == len(types)
    assert all(re.fullmatch(r"dialogporten\.dialog\.[a-z.\-]+\.v1", t) for t in types)
    assert NOT_IN_SEED <= set(types)


def test_catalog_covers_the_seed_tables() -> None:
    if not SEED.exists():
        pytest.skip(f"seed document not present at {SEED} (only beside the team's checkout)")
    seed_types = set(re.findall(r"`(dialogporten\.[a-z.\-]+\.v1)`", SEED.read_text(encoding="utf-8")))
    assert len(seed_types) == 21  # the seed document's own tables, not the catalog
    # Every type the seed lists is routed; the catalog may know more (newer Dialogporten types).
    assert seed_types | NOT_IN_SEED <= {row.type for row in CATALOG}


@pytest.mark.parametrize("row", CATALOG, ids=lambda r: r.type)
def test_queue_name_is_the_type_with_hyphens_and_valid_with_poison_suffix(row: catalog.EventType) -> None:
    assert row.queue == row.type.replace(".", "-")
    assert is_valid_queue_name(row.queue)
    assert is_valid_queue_name(row.poison_queue)
    assert len(row.queue) <= 56


def test_unrouted_queue_and_all_queues() -> None:
    assert is_valid_queue_name(UNROUTED_QUEUE)
    assert is_valid_queue_name(catalog.poison_queue_for(UNROUTED_QUEUE))
    queues = catalog.all_queues()
    assert len(queues) == len(set(queues)) == 2 * (len(CATALOG) + 1)


@pytest.mark.parametrize("name", ["abc\n", "ab", "-abc", "abc-", "a--b", "Abc", "a" * 64])
def test_invalid_queue_names_are_refused(name: str) -> None:
    assert not is_valid_queue_name(name)


def test_function_names_are_unique_identifiers() -> None:
    names = [row.function_name for row in CATALOG]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", n) for n in names)


def test_families_follow_the_type_names() -> None:
    for row in CATALOG:
        expected = (
            Family.ACTIVITY
            if ".activity." in row.type
            else Family.TRANSMISSION
            if ".transmission." in row.type
            else Family.DIALOG
        )
        assert row.family is expected, row.type


@pytest.mark.parametrize(
    ("name", "ok"),
    [("abc", True), ("ab", False), ("a" * 63, True), ("a" * 64, False), ("a--b", False), ("-ab", False),
     ("ab-", False), ("Abc", False), ("a_b", False), ("a1-b2", True)],
)  # fmt: skip
def test_queue_name_rule(name: str, ok: bool) -> None:
    assert is_valid_queue_name(name) is ok


def test_every_row_and_its_model_agree_on_name_family_and_type_string() -> None:
    from shared.events import models as events

    assert events.mismatches() == []
    for row in CATALOG:
        assert events.MODELS[row.type] is events.model_for(row.type)
        assert events.MODELS[row.type].__name__ == row.model_name


@pytest.mark.parametrize(
    ("family", "name"),
    [(Family.DIALOG, "ActivityClosed"), (Family.ACTIVITY, "NoSuchModel"), (Family.TRANSMISSION, "EventError")],
)
def test_a_model_name_that_is_not_a_model_of_the_rows_family_is_refused(family: Family, name: str) -> None:
    from shared.events import models as events

    (found,) = events.mismatches([catalog.EventType("dialogporten.dialog.x.v1", family, name, "x")])
    assert f"shared.events.models.{name} must be a" in found


def test_a_row_whose_type_string_is_not_its_models_is_refused() -> None:
    from shared.events import models as events

    row = catalog.EventType("dialogporten.dialog.updated.v1", Family.DIALOG, "DialogCreated", "x")
    assert events.mismatches([row]) == [
        "catalog row dialogporten.dialog.updated.v1: DialogCreated.type is "
        "Literal['dialogporten.dialog.created.v1'], not the row's type"
    ]


def test_reading_the_catalog_loads_no_model() -> None:
    probe = "import sys, shared.events.catalog; print('shared.events.models' in sys.modules, 'pydantic' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
