"""Printing for the CLI: rich tables for people, ``--json`` for scripts, errors on stderr with an exit code."""

from __future__ import annotations

import json
import sys
from typing import Any, Final, NoReturn

import typer
from rich.console import Console
from rich.table import Table

#: Exit codes scripts can rely on (the README lists them).
OK: Final = 0
FAILED: Final = 1
ATTENTION: Final = 3
TIMED_OUT: Final = 4

#: Wide when piped (rich would cut tables to 80 columns and hide queue names and URLs).
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def fail(message: str, code: int = FAILED, hint: str | None = None) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", markup=True)
    if hint:
        errors.print(hint, markup=False)
    raise typer.Exit(code)


def note(message: str) -> None:
    errors.print(message, markup=False)


def table(*headers: str, whole: tuple[str, ...] = ()) -> Table:
    """A table that folds long cells instead of cutting them; the ``whole`` columns (ids) are never split."""
    grid = Table()
    for header in headers:
        grid.add_column(header, overflow="fold", no_wrap=header in whole, min_width=36 if header in whole else None)
    return grid
