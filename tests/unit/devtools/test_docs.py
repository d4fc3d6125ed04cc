"""The README stays true: its generated tables match the catalog and the settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from devtools import docs
from shared.events.catalog import CATALOG
from shared.processing.registry import Registry
from shared.settings import DECLARED


def test_readme_tables_are_fresh() -> None:
    text = docs.README.read_text(encoding="utf-8")
    assert docs.render(text) == text, "README.md's generated tables are stale: run `make catalog`"


def test_readme_names_every_type_queue_and_setting() -> None:
    text = docs.README.read_text(encoding="utf-8")
    for row in CATALOG:
        assert f"| `{row.type}` | `{row.queue}` | `{row.model_name}` |" in text
    for setting in DECLARED:
        assert f"| `{setting.name}` |" in text


def test_check_mode_reports_a_stale_readme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(docs.README.read_text(encoding="utf-8").replace(CATALOG[0].description, "stale"), encoding="utf-8")
    monkeypatch.setattr(docs, "README", stale)
    assert docs.main(["--check"]) == 1
    assert docs.main([]) == 0
    assert docs.main(["--check"]) == 0


def test_the_readme_handler_example_runs_on_a_real_event(capsys: pytest.CaptureFixture[str]) -> None:
    from devtools.samples import sample_event
    from shared.events.models import parse_event

    text = docs.README.read_text(encoding="utf-8")
    section = text[text.index("## Writing your handler") :]
    begin = section.index("```python") + len("```python")
    snippet = section[begin : section.index("```", begin)]
    namespace: dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own README
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
