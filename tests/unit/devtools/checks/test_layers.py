"""The layering of ``shared/`` (devtools/checks/layers.py) holds, and the check fails on each kind of mutant."""

from __future__ import annotations

import pytest

from devtools.checks import layers

REAL = layers.sources()
PACKAGES = {name for name in REAL if (layers.ROOT / name.replace(".", "/") / "__init__.py").exists()}


def problems_with(changes: dict[str, str]) -> list[str]:
    modules = dict(REAL)
    for module, added in changes.items():
        modules[module] = modules[module] + "\n" + added + "\n"
    edges = layers.graph(modules, PACKAGES)
    return [str(v) for v in layers.violations(edges)] + [f"circle: {c}" for c in layers.circles(edges)]


def test_the_house_is_in_order() -> None:
    assert layers.check() == []


@pytest.mark.parametrize(
    ("module", "added", "expected"),
    [
        (
            "shared.events.catalog",
            "from shared.functions import webhook",
            "shared.events.catalog imports shared.functions.webhook: upward: layer 3 may not import layer 1",
        ),
        (
            "shared.stores.sink",
            "def later() -> None:\n    from shared.intake import plan",  # a lazy import is still a dependency
            "shared.stores.sink imports shared.intake.plan: upward",
        ),
        (
            "shared.errors",
            "import importlib\nimportlib.import_module('shared.stores.clients')",
            "shared.errors imports shared.stores.clients: upward",
        ),
        (
            "shared.stores.dialogs",
            "from shared.altinn import http",
            "shared.stores.dialogs imports shared.altinn.http: sideways: shared.stores may not import shared.altinn",
        ),
        (
            "shared.events.models",
            "from shared.stores.tables import ensure_table",
            "shared.events.models imports shared.stores.tables: sideways",
        ),
        (
            "shared.intake.plan",
            "from shared.processing import pipeline",
            "shared.intake.plan imports shared.processing.pipeline: sideways",
        ),
        (
            "shared.functions.webhook",
            "from shared.handlers import dialog",
            "shared.functions.webhook imports shared.handlers.dialog: sideways",
        ),
    ],
)
def test_an_import_against_the_layers_is_found(module: str, added: str, expected: str) -> None:
    assert [p for p in problems_with({module: added}) if p.startswith(expected)], problems_with({module: added})


def test_an_import_under_type_checking_does_not_count() -> None:
    added = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from shared.functions import webhook"
    assert problems_with({"shared.events.catalog": added}) == []


def test_a_circle_is_found_even_within_one_package() -> None:
    # shared.stores.dialogs imports shared.stores.tables; the mutant closes the circle.
    found = problems_with({"shared.stores.tables": "from shared.stores import dialogs"})
    assert "circle: ['shared.stores.dialogs', 'shared.stores.tables']" in found


def test_a_circle_through_a_lazy_import_is_found() -> None:
    found = problems_with({"shared.events.catalog": "def models():\n    from shared.events import models"})
    assert any(p.startswith("circle:") and "shared.events.catalog" in p for p in found), found


def test_a_module_in_no_layer_is_reported() -> None:
    modules = dict(REAL) | {
        "shared.misc": "x = 1",
        "shared.events.cloudevent": REAL["shared.events.cloudevent"] + "\nimport shared.misc\n",
    }
    found = [str(v) for v in layers.violations(layers.graph(modules, PACKAGES))]
    assert "shared.events.cloudevent imports shared.misc: shared.misc is in no layer" in found


def test_devtools_has_no_circle_and_a_new_one_is_found() -> None:
    tools = layers.sources(layers.ROOT, "devtools")
    packages = layers.packages_of(layers.ROOT, "devtools")
    assert layers.circles(layers.graph(tools, packages)) == []
    # The circle devtools used to have: the CLI's parked command -> the parking operations -> the CLI.
    tools["devtools.cli.parking"] += "\nfrom devtools.cli.app import main\n"
    assert layers.circles(layers.graph(tools, packages)) == [
        ["devtools.cli.app", "devtools.cli.parked", "devtools.cli.parking"]
    ]
