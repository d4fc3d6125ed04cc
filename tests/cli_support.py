"""Running the operator CLI in-process, as a user would from a shell, and reading what it printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from devtools.cli.app import app


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def dpctl(*args: str, env: dict[str, str] | None = None) -> Ran:
    """``dpctl ARGS``; ``local.settings.json`` is not read unless ``--settings`` is given (tests set the env)."""
    argv = list(args)
    if "--settings" not in argv:
        argv = ["--settings", "/nonexistent/local.settings.json", *argv]
    result = CliRunner().invoke(app, argv, env=env, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)
