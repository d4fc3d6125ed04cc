"""The webhook core's seams, as in the CloudEvents SDK: format <- binding <- plan, never the other way.

Each module is imported alone in a fresh interpreter: what it pulls in is what
a maintainer changing it must know about.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared.errors import InvalidJson
from shared.events import jsonformat
from shared.intake import binding
from shared.intake import plan as ingest
from shared.intake.problems import Problem
from tests.conftest import ROOT

LAYERS = [
    "shared.events.jsonformat",
    "shared.intake.binding",
    "shared.intake.plan",
    "shared.events.catalog",
    "shared.events.cloudevent",
]


def _loaded_by(module: str) -> set[str]:
    probe = f"import sys, json, {module}; print(json.dumps([m for m in {LAYERS!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout)) - {module}


def test_the_json_format_stands_alone() -> None:
    assert _loaded_by("shared.events.jsonformat") == set()


def test_the_binding_uses_the_format_and_knows_nothing_of_the_plan_or_the_catalog() -> None:
    assert _loaded_by("shared.intake.binding") == {"shared.events.jsonformat"}


def test_the_plan_keeps_its_public_names() -> None:
    # The webhook adapter, the CLI's catch-up and the benchmark import these from shared.intake.plan.
    assert ingest.WebhookRequest is binding.WebhookRequest
    assert ingest.WebhookResponse is binding.WebhookResponse
    assert ingest.MAX_BATCH_EVENTS == binding.MAX_BATCH_EVENTS
    for name in ingest.__all__:
        assert hasattr(ingest, name), name


def test_the_format_alone_refuses_what_the_binding_answers_with_a_400() -> None:
    with pytest.raises(InvalidJson) as invalid:
        jsonformat.parse_json(b'{"a": 1, "a": 2}')
    assert invalid.value.slug == "invalid-json"
    assert "duplicate member name 'a'" in invalid.value.detail
    with pytest.raises(Problem) as refused:
        binding.parse_json(b'{"a": 1, "a": 2}')
    assert (refused.value.status, refused.value.slug, refused.value.detail) == (
        400,
        "invalid-json",
        invalid.value.detail,
    )


def test_the_binding_alone_reads_binary_mode() -> None:
    request = binding.WebhookRequest(
        "POST", {"ce-specversion": "1.0", "ce-id": "1", "ce-subject": "a%3Ab", "content-type": "text/plain"}, b"hi"
    )
    objects, batch = binding.parse(request)
    assert not batch
    assert objects == [
        {"specversion": "1.0", "id": "1", "subject": "a:b", "datacontenttype": "text/plain", "data": "hi"}
    ]
