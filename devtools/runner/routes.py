"""ASP.NET Core route templates as Azure Functions HTTP triggers use them (``dialogs/{dialogId:guid}``).

Supported: literal segments (case-insensitive, as in ASP.NET), ``{name}``, ``{name?}``,
``{name=default}``, ``{name:constraint}`` for the common constraints, and a trailing
catch-all ``{*name}``. Unknown constraints are refused at startup rather than ignored,
so a route never matches more here than in Azure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote
from uuid import UUID

_PARAM = re.compile(r"^\{(?P<star>\*{1,2})?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}$")


def _is_int(v: str) -> bool:
    return re.fullmatch(r"-?\d+", v) is not None


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _is_guid(v: str) -> bool:
    try:
        UUID(v)
    except ValueError:
        return False
    return True


_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": _is_int,
    "long": _is_int,
    "decimal": _is_float,
    "double": _is_float,
    "float": _is_float,
    "bool": lambda v: v.lower() in ("true", "false"),
    "guid": _is_guid,
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "datetime": lambda v: re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", v) is not None,
}


@dataclass(frozen=True)
class _Segment:
    literal: str | None = None
    name: str | None = None
    optional: bool = False
    default: str | None = None
    catch_all: bool = False
    checks: tuple[Callable[[str], bool], ...] = ()


class RouteTemplate:
    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self.segments = [self._parse(s) for s in self.template.split("/")] if self.template else []
        for i, seg in enumerate(self.segments):
            if seg.catch_all and i != len(self.segments) - 1:
                raise ValueError(f"route {template!r}: a catch-all parameter must be the last segment")

    @staticmethod
    def _parse(text: str) -> _Segment:
        match = _PARAM.match(text)
        if match is None:
            if "{" in text or "}" in text:
                raise ValueError(f"route segment {text!r}: mixed literal/parameter segments are not supported")
            return _Segment(literal=text)
        rest = match["rest"]
        optional = rest.endswith("?")
        rest = rest.removesuffix("?")
        default = None
        if "=" in rest:
            rest, default = rest.split("=", 1)
        checks = []
        for constraint in filter(None, rest.split(":")):
            key = constraint.split("(", 1)[0].lower()
            if key not in _CONSTRAINTS:
                raise ValueError(f"route constraint {constraint!r} is not supported by the local runner")
            checks.append(_CONSTRAINTS[key])
        return _Segment(
            name=match["name"],
            optional=optional or default is not None,
            default=default,
            catch_all=bool(match["star"]),
            checks=tuple(checks),
        )

    @property
    def specificity(self) -> tuple[int, int]:
        """Literal segments first, catch-alls last: the order ASP.NET prefers among matching routes."""
        literals = sum(1 for s in self.segments if s.literal is not None)
        return (literals, -sum(1 for s in self.segments if s.catch_all))

    def match(self, path: str) -> dict[str, str] | None:
        """Route params for ``path`` (the part after the route prefix, still percent-encoded), or None."""
        parts = path.strip("/").split("/") if path.strip("/") else []
        params: dict[str, str] = {}
        for i, seg in enumerate(self.segments):
            if seg.catch_all:
                value = unquote("/".join(parts[i:]))
                if value or seg.default is not None:
                    params[seg.name or ""] = value or (seg.default or "")
                return params
            if i >= len(parts):
                if seg.literal is None and seg.optional:
                    if seg.default is not None:
                        params[seg.name or ""] = seg.default
                    continue
                return None
            value = unquote(parts[i])
            if seg.literal is not None:
                if value.lower() != seg.literal.lower():
                    return None
                continue
            if not value or not all(check(value) for check in seg.checks):
                return None
            params[seg.name or ""] = value
        return params if len(parts) <= len(self.segments) else None
