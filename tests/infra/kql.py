"""A strict replay of the small part of KQL the workbook's queries use, on rows held in Python.

No KQL engine runs here, so the workbook's queries (infra/app/workbook.json) are
replayed by this interpreter on real log lines. It knows only what those
queries use and refuses everything else (``KqlUnsupported``), so a query that
grows a construct it cannot replay fails its test instead of being replayed as
something else. Semantics follow the Kusto documentation (learn.microsoft.com,
"Kusto Query Language" reference), each noted where it matters:

- ``extract(regex, 1, text)``: the first match's group, ``""`` when there is
  none (a string is never null in Kusto); the regular expression is RE2, so
  constructs Python's ``re`` reads differently (lookaround, back-references,
  possessive or atomic groups) are refused;
- ``toint``/``todouble`` of ``""`` or a non-number: null; a comparison with
  null is null, and ``where`` keeps only rows whose predicate is true;
- ``coalesce``: the first argument that is not null and, for strings, not empty;
- ``substring(s, start, length)``: clipped to the string;
- ``bin(t, span)``: rounded down to a multiple of ``span`` (since the epoch);
- ``summarize``: the ``by`` columns first, then the aggregates; ``count()``,
  ``countif()``, ``max()``, ``min()``, ``sum()`` and ``percentile()``, which
  Kusto documents as an *estimate* of the nearest-rank percentile (T-Digest;
  the error is on the rank, within 1 %): replayed exactly by nearest rank, so a
  test may only rely on it where every estimate within that error is the same
  value;
- ``order by`` sorts descending unless ``asc`` is written, nulls last;
- workbook parameters: ``{TimeRange}`` becomes ``> ago(<range>)`` and
  ``{TimeRange:grain}`` a timespan, as the Workbooks documentation
  ("Time range parameters") says they expand; any other ``{Name}`` is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Row = dict[str, Any]
#: The hidden column ``ingestion_time()`` reads: when the row reached the workspace.
INGESTION_TIME = "$IngestionTime"


class KqlUnsupported(Exception):
    """The query uses something this replay does not implement (or implements differently)."""


# --------------------------------------------------------------------------- workbook parameters

_PARAMETER = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)(?::([a-z]+))?\}")


def expand_parameters(query: str, *, time_range: timedelta, grain: timedelta) -> str:
    """The query as the workbook sends it: ``{TimeRange}`` and ``{TimeRange:grain}`` expanded, nothing else."""

    def substitute(match: re.Match[str]) -> str:
        name, option = match.group(1), match.group(2)
        if name == "TimeRange" and option is None:
            return f"> ago({_span_text(time_range)})"
        if name == "TimeRange" and option == "grain":
            return _span_text(grain)
        raise KqlUnsupported(f"workbook parameter {match.group(0)} is not replayed")

    return _PARAMETER.sub(substitute, query)


def parameters_used(query: str) -> set[str]:
    """Every ``{Name}`` and ``{Name:option}`` the query reads (the ones a workbook substitutes)."""
    return {m.group(0) for m in _PARAMETER.finditer(query)}


def _span_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # name | string | number | span | op | end
    value: Any
    at: int


_SPAN_UNITS = {"d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<verbatim>@(?P<vq>['"])(?P<vbody>.*?)(?P=vq))
  | (?P<string>(?P<sq>['"])(?P<sbody>(?:\\.|(?!(?P=sq)).)*)(?P=sq))
  | (?P<span>\d+(?:\.\d+)?(?:ms|d|h|m|s)(?![A-Za-z0-9_]))
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|\.\.|[|(),=<>!])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise KqlUnsupported(f"cannot read the query at {text[at : at + 30]!r}")
        kind = match.lastgroup
        if match.group("space") is not None:
            pass
        elif match.group("verbatim") is not None:
            body = match.group("vbody")
            tokens.append(Token("string", body, at))
        elif match.group("string") is not None:
            body = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), match.group("sbody"))
            tokens.append(Token("string", body, at))
        elif match.group("span") is not None:
            number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", match.group("span")).groups()  # type: ignore[union-attr]
            tokens.append(Token("span", timedelta(seconds=float(number) * _SPAN_UNITS[unit]), at))
        elif match.group("number") is not None:
            raw = match.group("number")
            tokens.append(Token("number", float(raw) if "." in raw else int(raw), at))
        elif match.group("name") is not None:
            tokens.append(Token("name", match.group("name"), at))
        else:
            assert kind is not None
            tokens.append(Token("op", match.group("op"), at))
        at = match.end()
    tokens.append(Token("end", None, len(text)))
    return tokens


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr:
    kind: str  # literal | column | call | binary | in | not_in
    value: Any = None
    args: tuple[Expr, ...] = ()

    def columns(self) -> Iterator[str]:
        if self.kind == "column":
            yield self.value
        for arg in self.args:
            yield from arg.columns()


_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_WORD_OPERATORS = ("startswith_cs",)
#: The regular expression constructs Python's ``re`` and RE2 disagree on or RE2 lacks.
_NOT_RE2 = re.compile(r"\(\?[=!<>]|\(\?P?<|\(\?P=|\\[1-9]|[*+?}]\+|\\[Zz]")


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[self.i + offset]

    def next(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def accept(self, kind: str, value: Any = None) -> Token | None:
        token = self.peek()
        if token.kind == kind and (value is None or token.value == value):
            self.i += 1
            return token
        return None

    def expect(self, kind: str, value: Any = None) -> Token:
        token = self.accept(kind, value)
        if token is None:
            found = self.peek()
            raise KqlUnsupported(f"expected {value or kind} at {found.at}, found {found.value!r}")
        return token

    # -- expressions, lowest precedence first
    def expr(self) -> Expr:
        left = self.and_expr()
        while self.accept("name", "or"):
            left = Expr("binary", "or", (left, self.and_expr()))
        return left

    def and_expr(self) -> Expr:
        left = self.comparison()
        while self.accept("name", "and"):
            left = Expr("binary", "and", (left, self.comparison()))
        return left

    def comparison(self) -> Expr:
        left = self.primary()
        token = self.peek()
        if token.kind == "op" and token.value in _COMPARISONS:
            self.next()
            return Expr("binary", token.value, (left, self.primary()))
        if token.kind == "name" and token.value in _WORD_OPERATORS:
            self.next()
            return Expr("binary", token.value, (left, self.primary()))
        if token.kind == "name" and token.value == "in":
            self.next()
            return Expr("in", None, (left, *self.literal_list()))
        if token.kind == "op" and token.value == "!" and self.peek(1).kind == "name" and self.peek(1).value == "in":
            self.i += 2
            return Expr("not_in", None, (left, *self.literal_list()))
        return left

    def literal_list(self) -> list[Expr]:
        self.expect("op", "(")
        items = [self.primary()]
        while self.accept("op", ","):
            items.append(self.primary())
        self.expect("op", ")")
        if any(item.kind != "literal" for item in items):
            raise KqlUnsupported("in (...) with non-literal items is not replayed")
        return items

    def primary(self) -> Expr:
        token = self.next()
        if token.kind in ("string", "number", "span"):
            return Expr("literal", token.value)
        if token.kind == "op" and token.value == "(":
            inner = self.expr()
            self.expect("op", ")")
            return inner
        if token.kind == "name":
            if token.value in ("true", "false"):
                return Expr("literal", token.value == "true")
            if self.accept("op", "("):
                args: list[Expr] = []
                if not self.accept("op", ")"):
                    args.append(self.expr())
                    while self.accept("op", ","):
                        args.append(self.expr())
                    self.expect("op", ")")
                return Expr("call", token.value, tuple(args))
            return Expr("column", token.value)
        raise KqlUnsupported(f"unexpected {token.value!r} at {token.at}")


# --------------------------------------------------------------------------- evaluation

_Scalar = Callable[..., Any]


def _is_null(value: Any) -> bool:
    return value is None


def _extract(pattern: str, group: int, text: Any) -> str:
    if _NOT_RE2.search(pattern):
        raise KqlUnsupported(f"regular expression {pattern!r} uses a construct RE2 lacks or reads otherwise")
    if not isinstance(text, str):
        raise KqlUnsupported("extract() on a non-string is not replayed")
    found = re.search(pattern, text)
    if found is None:
        return ""
    return found.group(group) or ""


def _to_number(kind: type, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return kind(value)
    if isinstance(value, str):
        text = value.strip()
        if kind is int and re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if kind is float and re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text):
            return float(text)
        return None
    raise KqlUnsupported(f"conversion of {type(value).__name__}")


def _tostring(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _substring(text: Any, start: int, length: int | None = None) -> str:
    if not isinstance(text, str):
        raise KqlUnsupported("substring() on a non-string")
    start = max(start, 0)
    return text[start:] if length is None else text[start : start + max(length, 0)]


def _bin(value: Any, size: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime) and isinstance(size, timedelta):
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        steps = (value - epoch) // size
        return epoch + steps * size
    if isinstance(value, int | float) and isinstance(size, int | float):
        return math.floor(value / size) * size
    raise KqlUnsupported(f"bin() of {type(value).__name__} by {type(size).__name__}")


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is None or value == "":
            continue
        return value
    return values[-1] if values else None


def _compare(op: str, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if isinstance(left, str) != isinstance(right, str):
        raise KqlUnsupported(f"comparison of {type(left).__name__} with {type(right).__name__}")
    return {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


@dataclass
class Context:
    now: datetime


class Evaluator:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.scalars: dict[str, _Scalar] = {
            "substring": _substring,
            "extract": _extract,
            "iff": lambda c, a, b: a if c is True else b,
            "coalesce": _coalesce,
            "toint": lambda v: _to_number(int, v),
            "todouble": lambda v: _to_number(float, v),
            "tostring": _tostring,
            "isnotnull": lambda v: v is not None,
            "isnull": lambda v: v is None,
            "isnotempty": lambda v: v is not None and v != "",
            "isempty": lambda v: v is None or v == "",
            "bin": _bin,
            "ago": lambda span: self.context.now - span,
        }

    def value(self, expr: Expr, row: Row) -> Any:
        if expr.kind == "literal":
            return expr.value
        if expr.kind == "column":
            if expr.value not in row:
                raise KqlUnsupported(f"column {expr.value!r} does not exist here (columns: {sorted(row)})")
            return row[expr.value]
        if expr.kind in ("in", "not_in"):
            left = self.value(expr.args[0], row)
            options = [a.value for a in expr.args[1:]]
            if left is None:
                return None
            inside = left in options
            return inside if expr.kind == "in" else not inside
        if expr.kind == "binary":
            op = expr.value
            if op in ("and", "or"):
                left, right = (self.value(a, row) for a in expr.args)
                if op == "and":
                    return left is True and right is True
                return left is True or right is True
            left, right = (self.value(a, row) for a in expr.args)
            if op == "startswith_cs":
                if not isinstance(left, str) or not isinstance(right, str):
                    raise KqlUnsupported("startswith_cs on non-strings")
                return left.startswith(right)
            return _compare(op, left, right)
        if expr.kind == "call" and expr.value == "ingestion_time" and not expr.args:
            if INGESTION_TIME not in row:
                raise KqlUnsupported(f"ingestion_time() needs the rows' {INGESTION_TIME!r}")
            return row[INGESTION_TIME]
        if expr.kind == "call":
            function = self.scalars.get(expr.value)
            if function is None:
                raise KqlUnsupported(f"function {expr.value}() is not replayed")
            return function(*(self.value(a, row) for a in expr.args))
        raise KqlUnsupported(f"expression {expr.kind}")


# --------------------------------------------------------------------------- aggregates


def _nearest_rank(values: list[Any], percent: float) -> Any:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Aggregate:
    name: str
    function: str
    args: tuple[Expr, ...]

    def compute(self, evaluator: Evaluator, rows: list[Row]) -> Any:
        if self.function == "count":
            if self.args:
                raise KqlUnsupported("count(expr) is not replayed")
            return len(rows)
        if self.function == "countif":
            return sum(1 for row in rows if evaluator.value(self.args[0], row) is True)
        values = [v for v in (evaluator.value(self.args[0], row) for row in rows) if v is not None]
        if self.function == "max":
            return max(values) if values else None
        if self.function == "min":
            return min(values) if values else None
        if self.function == "sum":
            return sum(values) if values else None
        if self.function == "percentile":
            percent = self.args[1]
            if percent.kind != "literal":
                raise KqlUnsupported("percentile() needs a constant percentile")
            return _nearest_rank(values, float(percent.value))
        raise KqlUnsupported(f"aggregate {self.function}() is not replayed")


_AGGREGATES = frozenset({"count", "countif", "max", "min", "sum", "percentile"})


# --------------------------------------------------------------------------- operators


Table = list[Row]


def _column_name(expr: Expr) -> str:
    if expr.kind == "column":
        return str(expr.value)
    if expr.kind == "call" and expr.value == "bin" and expr.args and expr.args[0].kind == "column":
        return str(expr.args[0].value)
    raise KqlUnsupported("a computed column needs a name (name = expression)")


def run(query: str, rows: Table, *, now: datetime, source: str = "AppTraces") -> Table:
    """The query's result on ``rows`` (the table ``source``), evaluated at ``now``."""
    parser = Parser(query)
    evaluator = Evaluator(Context(now))
    table_name = parser.expect("name").value
    if table_name != source:
        raise KqlUnsupported(f"table {table_name!r}: only {source} is replayed")
    table: Table = [dict(row) for row in rows]
    while parser.accept("op", "|"):
        operator = parser.expect("name").value
        if operator == "where":
            predicate = parser.expr()
            table = [row for row in table if evaluator.value(predicate, row) is True]
        elif operator == "extend":
            assignments = _assignments(parser)
            table = [_extended(evaluator, row, assignments) for row in table]
        elif operator == "project":
            assignments = _assignments(parser, allow_bare=True)
            table = [{name: evaluator.value(expr, row) for name, expr in assignments} for row in table]
        elif operator == "summarize":
            table = _summarize(parser, evaluator, table)
        elif operator in {"order", "sort"}:
            parser.expect("name", "by")
            table = _ordered(parser, table)
        elif operator in ("take", "limit"):
            count = parser.expect("number").value
            table = table[: int(count)]
        else:
            raise KqlUnsupported(f"operator {operator!r} is not replayed")
    end = parser.peek()
    if end.kind != "end":
        raise KqlUnsupported(f"unread query text at {end.at}: {end.value!r}")
    return table


def _assignments(parser: Parser, *, allow_bare: bool = False) -> list[tuple[str, Expr]]:
    found: list[tuple[str, Expr]] = []
    while True:
        if parser.peek().kind == "name" and (parser.peek(1).kind, parser.peek(1).value) == ("op", "="):
            name = parser.next().value
            parser.next()
            found.append((name, parser.expr()))
        elif allow_bare:
            expr = parser.expr()
            found.append((_column_name(expr), expr))
        else:
            raise KqlUnsupported(f"expected name = expression at {parser.peek().at}")
        if not parser.accept("op", ","):
            return found


def _extended(evaluator: Evaluator, row: Row, assignments: list[tuple[str, Expr]]) -> Row:
    out = dict(row)
    for name, expr in assignments:
        out[name] = evaluator.value(expr, out)
    return out


def _summarize(parser: Parser, evaluator: Evaluator, table: Table) -> Table:
    aggregates: list[Aggregate] = []
    if not (parser.peek().kind == "name" and parser.peek().value == "by"):
        for name, expr in _assignments(parser, allow_bare=True):
            if expr.kind != "call" or expr.value not in _AGGREGATES:
                raise KqlUnsupported(f"summarize {name}: {expr.value}() is not a replayed aggregate")
            aggregates.append(Aggregate(name, expr.value, expr.args))
    keys: list[tuple[str, Expr]] = []
    if parser.accept("name", "by"):
        keys = _assignments(parser, allow_bare=True)
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in table:
        key = tuple(evaluator.value(expr, row) for _, expr in keys)
        groups.setdefault(key, []).append(row)
    if not keys and not groups:
        groups[()] = []  # summarize without by always answers one row
    names = [name for name, _ in keys]
    return [
        {**dict(zip(names, key, strict=True)), **{a.name: a.compute(evaluator, rows) for a in aggregates}}
        for key, rows in groups.items()
    ]


def _ordered(parser: Parser, table: Table) -> Table:
    columns: list[tuple[str, bool]] = []
    while True:
        name = parser.expect("name").value
        descending = True  # Kusto's default
        if parser.accept("name", "asc"):
            descending = False
        else:
            parser.accept("name", "desc")
        columns.append((name, descending))
        if not parser.accept("op", ","):
            break
    ordered = list(table)
    for name, descending in reversed(columns):
        present = [row for row in ordered if row.get(name) is not None]
        missing = [row for row in ordered if row.get(name) is None]
        present.sort(key=lambda row: row[name], reverse=descending)
        ordered = present + missing  # nulls last
    return ordered
