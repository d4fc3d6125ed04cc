"""Printing for the CLI, with az's conventions: ``--output/-o`` and ``--query``, errors on stderr with an exit code.

A command hands its result, plain data, to :func:`emit` with a function that draws it as a table. The global
``--output`` (``json``, ``jsonc``, ``table`` (the default), ``tsv``, ``yaml``, ``none``) picks the format, and
``--query`` (JMESPath, with the ``jmespath`` package az uses) picks from the data before it is printed (a
queried result is drawn as a plain table: the command's own table shows the whole result). ``--json`` stays
as an alias of ``-o json``. Times are ISO 8601 in UTC (``2026-03-16T11:43:00.123456Z``) in every format.

Nothing printed here shows a secret a URL or header carries: :func:`redact` replaces the value of a function
key (``code=``), a SAS signature (``sig=``) and the like with ``***``, and every way out goes through it:
:func:`emit` redacts the data before any format draws it, the two consoles redact what they write (tables,
messages, progress, errors, hints), :func:`table` redacts its cells before rich folds them, and :func:`echo`
redacts its line. Commands print only through this module (ruff's TID251 refuses ``rich.console.Console``,
``rich.table.Table`` and ``typer.echo`` elsewhere).

Long commands (``send``, ``catch-up``, ``poison replay``, ``parked reroute``) show :func:`progress`: a bar
when stderr is a terminal, else (piped, in a script or CI) a line on stderr every few seconds, so that a
log shows the work going on; stdout keeps only the result.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Annotated, Any, Final, NoReturn, cast

import typer
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

#: Exit codes scripts can rely on (docs/cli.md lists them).
OK: Final = 0
FAILED: Final = 1
USAGE: Final = 2
ATTENTION: Final = 3
TIMED_OUT: Final = 4

#: A command's ``--json``: an alias of ``-o json``, kept for the scripts that use it.
JsonFlag = Annotated[bool, typer.Option("--json", help="the same as -o json")]

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


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``: the one way a time is printed."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def plain(value: Any) -> Any:
    """``value`` as JSON data, redacted: times as ISO 8601, any secret a string carries as ``***``."""
    return json.loads(redact(json.dumps(value, ensure_ascii=False, default=_default)))


class Format(StrEnum):
    JSON = "json"
    JSONC = "jsonc"
    TABLE = "table"
    TSV = "tsv"
    YAML = "yaml"
    NONE = "none"


@dataclass
class _Chosen:
    format: Format = Format.TABLE
    query: str | None = None
    compiled: Any = None


_chosen = _Chosen()


def configure(fmt: Format = Format.TABLE, query: str | None = None) -> None:
    """The global ``--output`` and ``--query`` (a query that is not JMESPath is a usage error: exit 2)."""
    compiled = None
    if query is not None:
        import jmespath
        from jmespath.exceptions import JMESPathError

        try:
            compiled = jmespath.compile(query)
        except JMESPathError as exc:
            fail(f"--query {query!r} is not a JMESPath expression: {exc}", USAGE)
    _chosen.format, _chosen.query, _chosen.compiled = fmt, query, compiled


def chosen_format(as_json: bool = False) -> Format:
    return Format.JSON if as_json else _chosen.format


def emit(value: Any, draw: Callable[[Any], None] | None = None, *, as_json: bool = False) -> None:
    """Print a command's result in the chosen format; ``draw`` prints it as a table (the default format)."""
    fmt = chosen_format(as_json)
    data = plain(value)
    if _chosen.compiled is not None:
        data = _chosen.compiled.search(data)
    if fmt is Format.NONE:
        return
    if fmt is Format.JSON:
        echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif fmt is Format.JSONC:
        console.print_json(json.dumps(data, ensure_ascii=False), indent=2)
    elif fmt is Format.YAML:
        import yaml

        echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n"))
    elif fmt is Format.TSV:
        for row in data if isinstance(data, list) else [data]:
            echo(_tsv_row(row))
    elif draw is not None and _chosen.compiled is None:
        draw(data)
    else:
        _draw_plain(data)


def _tsv_cell(value: Any) -> str:
    """As az: a nested object is empty, a list its length, a boolean lower case; None is empty here."""
    if isinstance(value, dict) or value is None:
        return ""
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).replace("\t", " ").replace("\n", " ")


def _tsv_row(row: Any) -> str:
    if isinstance(row, dict):
        return "\t".join(_tsv_cell(v) for v in row.values())
    if isinstance(row, list):
        return "\t".join(_tsv_cell(v) for v in row)
    return _tsv_cell(row)


def _draw_plain(data: Any) -> None:
    """Any JSON data as a table: a list of objects by columns, an object as name/value pairs."""
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        headers = list(dict.fromkeys(key for row in data for key in row))
        grid = table(*headers)
        for row in data:
            grid.add_row(*(_cell(row.get(h)) for h in headers))
        console.print(grid)
    elif isinstance(data, dict):
        grid = table(show_header=False, box=None)
        for name, value in data.items():
            grid.add_row(f"[bold]{name}[/]", _cell(value))
        console.print(grid)
    elif isinstance(data, list):
        grid = table("Result")
        for value in data:
            grid.add_row(_cell(value))
        console.print(grid)
    elif data is not None:
        console.print(_cell(data), markup=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


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


# --- progress ----------------------------------------------------------------------------------------------

#: Seconds between two progress lines when stderr is not a terminal (``DPCTL_PROGRESS_SECONDS``).
PROGRESS_SECONDS: Final = 5.0


class Tracker:
    """What a long command tells :func:`progress`: one more done, or a new description."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done, self.detail = label, total, 0, ""
        self._lock = threading.Lock()
        self._bar: tuple[Progress, Any] | None = None

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
        if self._bar is not None:
            self._bar[0].advance(self._bar[1], count)

    def update(self, detail: str) -> None:
        self.detail = detail
        if self._bar is not None:
            self._bar[0].update(self._bar[1], description=f"{self.label}: {detail}")

    def line(self, elapsed: float) -> str:
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        detail = f", {self.detail}" if self.detail else ""
        return f"{iso(datetime.now(UTC))} {self.label}: {count} done{detail} after {elapsed:.0f} s"


def _interval() -> float:
    try:
        return max(0.05, float(os.environ.get("DPCTL_PROGRESS_SECONDS", PROGRESS_SECONDS)))
    except ValueError:
        return PROGRESS_SECONDS


@contextlib.contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Tracker]:
    """A bar on a terminal, else a progress line on stderr every few seconds; nothing with ``-o none``."""
    tracker = Tracker(label, total)
    if _chosen.format is Format.NONE:
        yield tracker
        return
    if errors.is_terminal:
        columns: list[Any] = [TextColumn("{task.description}")]
        columns += [BarColumn(), MofNCompleteColumn()] if total is not None else [SpinnerColumn()]
        with Progress(*columns, TimeElapsedColumn(), console=errors, transient=True) as bar:
            tracker._bar = (bar, bar.add_task(label, total=total))
            yield tracker
        return
    stop = threading.Event()
    started = time.monotonic()
    every = _interval()

    def tick() -> None:
        while not stop.wait(every):
            note(tracker.line(time.monotonic() - started))

    ticker = threading.Thread(target=tick, name="dpctl-progress", daemon=True)
    ticker.start()
    try:
        yield tracker
    finally:
        stop.set()
        ticker.join()
