"""Printing for the CLI: rich tables for people, ``--json`` for scripts, errors on stderr with an exit code.

Nothing printed here shows a secret a URL or header carries: :func:`redact` replaces the value of a function
key (``code=``), a SAS signature (``sig=``) and the like with ``***``, and every way out goes through it:
the two consoles redact what they write (tables, messages, progress, errors, hints), :func:`table` redacts its
cells before rich folds them, and :func:`emit_json` redacts the JSON text. Commands print only through this
module (ruff's TID251 refuses ``rich.console.Console``, ``rich.table.Table`` and ``typer.echo`` elsewhere).
"""

from __future__ import annotations

import json
import re
import sys
from typing import IO, Any, Final, NoReturn, cast

import typer
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

#: Exit codes scripts can rely on (the README lists them).
OK: Final = 0
FAILED: Final = 1
ATTENTION: Final = 3
TIMED_OUT: Final = 4

#: Query parameters whose value is a secret: the function key (``code``), a SAS signature, keys and tokens.
SECRET_PARAMETERS: Final = (
    "code",
    "sig",
    "key",
    "token",
    "access_token",
    "api_key",
    "api-key",
    "apikey",
    "client_secret",
    "password",
    "secret",
)
#: Headers whose value is a secret (the Functions host takes the function key as ``x-functions-key`` too).
SECRET_HEADERS: Final = ("x-functions-key",)
REDACTED: Final = "***"

# A value runs to the next parameter, fragment, white space, quote, bracket, backslash or control character
# (an ANSI colour code ends it too), so that a URL in a sentence, a repr or a JSON string keeps what follows.
_VALUE: Final = r"""[^&#\s"'<>\\\x00-\x1f\x7f]+"""
_PARAMETER: Final = re.compile(
    r"(?i)(?<=[?&;])(" + "|".join(re.escape(name) for name in SECRET_PARAMETERS) + r")=" + _VALUE
)
_HEADER: Final = re.compile(
    r"""(?i)(\b(?:"""
    + "|".join(re.escape(name) for name in SECRET_HEADERS)
    + r""")["']?\s*[:=]\s*["']?)"""
    + r"""[^\s"',;&\x00-\x1f\x7f]+"""
)


def redact(text: str) -> str:
    """``text`` with the value of every secret query parameter and header replaced by ``***``.

    The rest stays, so that the operator can still tell which endpoint it is:
    ``https://app.azurewebsites.net/api/events?x=1&code=abc`` -> ``https://app.azurewebsites.net/api/events?x=1&code=***``.
    Works on a bare URL and on any text holding URLs (a message, a table, JSON).
    """
    return _HEADER.sub(r"\1" + REDACTED, _PARAMETER.sub(r"\1=" + REDACTED, text))


class _RedactingStream:
    """A text stream that redacts what is written to it, and is otherwise the stream it wraps."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _RedactingConsole(Console):
    """A console whose every write (rendered text: tables, messages, progress, status lines) is redacted.

    The stream is looked up on every write, as rich does (so that ``sys.stdout`` replaced by a test or a
    live display is followed).
    """

    @property
    def file(self) -> IO[str]:
        return cast(IO[str], _RedactingStream(super().file))

    @file.setter
    def file(self, new_file: IO[str]) -> None:
        self._file = new_file


#: Wide when piped (rich would cut tables to 80 columns and hide queue names and URLs).
console: Final[Console] = _RedactingConsole(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
errors: Final[Console] = _RedactingConsole(stderr=True, highlight=False, soft_wrap=True)


def echo(text: str) -> None:
    """A plain line on stdout, for scripts (``--print-token``)."""
    typer.echo(redact(text))


def emit_json(value: Any) -> None:
    echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def fail(message: str, code: int = FAILED, hint: str | None = None) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", markup=True)
    if hint:
        errors.print(hint, markup=False)
    raise typer.Exit(code)


def note(message: str) -> None:
    errors.print(message, markup=False)


class _RedactingTable(Table):
    """A table whose cells are redacted as they are added: a folded cell would split a key across lines."""

    def add_row(self, *renderables: RenderableType | None, **kwargs: Any) -> None:
        super().add_row(*(_redacted(cell) for cell in renderables), **kwargs)


def _redacted(cell: RenderableType | None) -> RenderableType | None:
    if isinstance(cell, str):
        return redact(cell)
    if isinstance(cell, Text) and redact(cell.plain) != cell.plain:
        return Text(redact(cell.plain), style=cell.style)
    return cell


def table(*headers: str, whole: tuple[str, ...] = (), **options: Any) -> Table:
    """A table that folds long cells instead of cutting them; the ``whole`` columns (ids) are never split.

    ``options`` go to rich's ``Table`` (``show_header=False, box=None`` for name/value pairs).
    """
    grid = _RedactingTable(**options)
    for header in headers:
        grid.add_column(header, overflow="fold", no_wrap=header in whole, min_width=36 if header in whole else None)
    return grid
