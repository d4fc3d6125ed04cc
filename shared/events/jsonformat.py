"""The strict JSON event format: bytes in, parsed JSON out, every bad input an :class:`~shared.errors.InvalidJson`.

The CloudEvents SDK keeps its JSON format (``formats/json.py``) apart from the
HTTP binding; so does this project. The rules here are stricter than
:func:`json.loads`: UTF-8 only (a BOM is tolerated), no ``NaN``/``Infinity`` or
numbers out of a double's range, no lone surrogates, no duplicate member names,
and bounded nesting. Each would otherwise be accepted with a 2xx and fail later
when the event is written back as JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from shared.errors import FieldError, InvalidJson, clip

__all__ = ["parse_json"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate member name {clip(dup, 80)!r}")
    return obj


_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # 1e999 parses to infinity, which JSON cannot carry: storing it would fail later.
        raise ValueError(f"the number {clip(text, 40)} is out of range (not a finite double)")
    return value


def _lone_surrogate(value: Any) -> str | None:
    """Where a lone surrogate (``"\\ud800"``) sits in parsed JSON, or None.

    Raw UTF-8 cannot encode one, but a JSON escape can; such a string can never be
    written back as UTF-8, so it must be refused here rather than fail at the send.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return path or "(body)"
        elif isinstance(item, dict):
            for key, child in item.items():
                if _has_surrogate(key):
                    return f"{path}.(member name)" if path else "(member name)"
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


#: Built once: ``json.loads`` with hooks builds a new decoder (and scanner) on every call.
_DECODER: Final = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_no_duplicates
)


def parse_json(raw: bytes, what: str = "body") -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity or out-of-range numbers, no lone surrogates, no duplicate names.

    Bad input raises :class:`~shared.errors.InvalidJson` (which the intake answers with a 400), never
    anything else.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJson(
            "invalid-utf8", f"The {what} is not valid UTF-8 (byte {exc.start})", FieldError(what, "must be UTF-8")
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InvalidJson("empty-body", f"The {what} is empty; expected a CloudEvent", FieldError(what, "required"))
    try:
        parsed = _DECODER.decode(text)
    except RecursionError:
        raise InvalidJson(
            "invalid-json", f"The {what} is nested too deeply", FieldError(what, "JSON nesting too deep")
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidJson(
            "invalid-json",
            f"The {what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            FieldError(what, "must be JSON"),
        ) from None
    except ValueError as exc:  # NaN, duplicates, integers over Python's digit limit
        reason = "a number has more than 4300 digits" if "integer string conversion" in str(exc) else str(exc)
        detail = f"The {what} is not acceptable JSON: {reason}"
        raise InvalidJson("invalid-json", detail, FieldError(what, reason)) from None
    # Only a \uD800-\uDFFF escape can make one; most bodies have none, so the walk is skipped.
    where = _lone_surrogate(parsed) if _SURROGATE_ESCAPE.search(text) else None
    if where is not None:
        rule = "must not contain a lone surrogate (an unpaired \\ud800-\\udfff escape)"
        raise InvalidJson(
            "invalid-json", f"The {what} is not acceptable JSON: a string has a lone surrogate", FieldError(where, rule)
        )
    return parsed
