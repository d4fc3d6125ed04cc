"""Indexing the app (every cold start) loads only what indexing needs."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ["pydantic", "azure.data.tables", "azure.storage.blob", "azure.storage.queue", "azure.identity",
         "shared.processing.pipeline", "shared.events.models", "shared.handlers"]  # fmt: skip


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys, json; {code}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return list(json.loads(result.stdout))


def test_importing_function_app_loads_no_storage_sdk_and_no_models() -> None:
    assert _loaded_after("import function_app; function_app.app.get_functions()") == []


def test_the_first_webhook_call_loads_the_queue_sdk_but_not_the_handler_side() -> None:
    code = (
        "import os; os.environ['AzureWebJobsStorage']='UseDevelopmentStorage=true'; "
        "import function_app; from shared.functions import webhook; webhook._sink()"
    )
    loaded = _loaded_after(code)
    assert "azure.storage.queue" in loaded
    assert not {"pydantic", "azure.data.tables", "shared.processing.pipeline", "shared.handlers"} & set(loaded)
