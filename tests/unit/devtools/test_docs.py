"""The docs stay true: their generated tables match the catalog and the settings; the README's handler runs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from devtools import docs
from shared.events.catalog import CATALOG
from shared.processing.registry import Registry
from shared.settings import DECLARED
from tests import docs_support


def test_the_generated_tables_are_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    assert docs.main(["--check"]) == 0, capsys.readouterr().err


def test_the_docs_name_every_type_queue_and_setting() -> None:
    events = docs_support.section("## What it receives").text
    for row in CATALOG:
        assert f"| `{row.type}` | `{row.queue}` | `{row.model_name}` |" in events
    settings = docs_support.section("## Settings").text
    for setting in DECLARED:
        assert f"| `{setting.name}` |" in settings


def copy_of_the_pages(tmp_path: Path) -> Path:
    for page in docs.pages():
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(docs_support.ROOT / page, tmp_path / page)
    return tmp_path


@pytest.mark.parametrize(
    ("page", "old", "new"),
    [
        ("docs/webhook.md", CATALOG[0].description, "stale"),
        ("docs/operations.md", f"| `{DECLARED[-1].name}` |", f"| `{DECLARED[-1].name}_OLD` |"),
    ],
)
def test_check_mode_reports_a_stale_page_and_make_catalog_rewrites_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], page: str, old: str, new: str
) -> None:
    root = copy_of_the_pages(tmp_path)
    fresh = (root / page).read_text(encoding="utf-8")
    assert old in fresh
    (root / page).write_text(fresh.replace(old, new), encoding="utf-8")
    assert docs.main(["--check"], root=root) == 1
    assert f"{page}: the generated tables are stale: run `make catalog`" in capsys.readouterr().err
    assert docs.main([], root=root) == 0
    assert (root / page).read_text(encoding="utf-8") == fresh
    assert docs.main(["--check"], root=root) == 0


def test_a_page_without_its_markers_is_named(tmp_path: Path) -> None:
    root = copy_of_the_pages(tmp_path)
    page = root / "docs" / "operations.md"
    page.write_text(page.read_text(encoding="utf-8").replace("<!-- settings:end -->", ""), encoding="utf-8")
    with pytest.raises(SystemExit, match=r"docs/operations.md lacks the <!-- settings:start -->"):
        docs.main(["--check"], root=root)


def test_the_readme_handler_example_runs_on_a_real_event(capsys: pytest.CaptureFixture[str]) -> None:
    from devtools.samples import sample_event
    from shared.events.models import parse_event

    section = docs_support.section("## Writing a handler")
    [snippet] = [b for b in docs_support.python_blocks(section.text) if "def on_signed" in b]
    namespace: dict[str, object] = {}
    exec(compile(snippet, str(section.page), "exec"), namespace)  # noqa: S102 - our own docs
    handler = cast("Callable[[Any], None]", namespace["on_signed"])
    registry = Registry()
    registry.add_marked(handler)  # as discovery does for a function of shared/handlers/ marked @handles
    event = parse_event(sample_event("dialogporten.dialog.activity.signature-provided.v1"))
    [binding] = registry.handlers_for(type(event))
    assert binding.fn is handler
    binding(event, None)  # type: ignore[arg-type]  # takes the event only
    printed = capsys.readouterr().out
    assert event.dialog_id in printed
    assert event.time_raw in printed
