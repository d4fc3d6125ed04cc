"""Strict CloudEvents 1.0 validation of the JSON event format, next to the spec's wording.

The ``cloudevents`` SDK is not used for validation on purpose: it accepts
``2018-04-05T18:31Z`` (RFC 3339 requires seconds), empty optional attributes
and punctuated extension names, and it turns ``time`` into a ``datetime``,
which drops the 7th fractional digit .NET sends. Here an event stays the
JSON object it arrived as; validation only reads it.

Spec: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md and
``formats/json-format.md``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from shared.errors import FieldError
from shared.events import rfc3339

SPECVERSION: Final = "1.0"
REQUIRED: Final = ("specversion", "id", "source", "type")
OPTIONAL: Final = ("datacontenttype", "dataschema", "subject", "time")
DATA_MEMBERS: Final = ("data", "data_base64")
KNOWN: Final = frozenset(REQUIRED + OPTIONAL + DATA_MEMBERS)

#: "CloudEvents attribute names MUST consist of lower-case letters ('a' to 'z')
#: or digits ('0' to '9') from the ASCII character set."
#: Every pattern here is applied with ``fullmatch``: ``$`` also matches before a
#: trailing newline, which would let ``"abc\n"`` through.
_ATTRIBUTE_NAME: Final = re.compile(r"[a-z0-9]+")
#: RFC 2046 media type: ``type "/" subtype *(";" parameter)``, tokens per RFC 2045.
_TOKEN: Final = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # noqa: S105 - an RFC 2045 token, not a secret
_MEDIA_TYPE: Final = re.compile(rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\]|\\.)*\"))*[ \t]*")
#: RFC 3986 URI-reference characters (unreserved, reserved, and percent-encodings).
_URI_CHARS: Final = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
#: The CloudEvents ``String`` type (spec, "Type System"): control characters
#: U+0000-U+001F and U+007F-U+009F, Unicode noncharacters, and surrogates not
#: used in pairs are disallowed. JSON parsing joins proper pairs, so any
#: surrogate left in a Python string is a lone one.
_NONCHARACTERS: Final = "\ufdd0-\ufdef" + "".join(
    chr(plane * 0x10000 + 0xFFFE) + chr(plane * 0x10000 + 0xFFFF) for plane in range(17)
)
_DISALLOWED_CHARS: Final = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}]")
#: Lengths no real event comes near (Dialogporten's ids are 36-character GUIDs, its
#: sources about 150 characters), low enough that a claim check, which repeats the
#: summary attributes, always fits one queue message (see ``shared/stores/sink.py``).
MAX_ATTRIBUTE_CHARS: Final = 1024
#: ``source`` and ``dataschema`` are URIs (ASCII only): a longer bound costs little.
MAX_URI_CHARS: Final = 4096
_MAX_CHARS: Final = {"source": MAX_URI_CHARS, "dataschema": MAX_URI_CHARS}
_TIME_EXAMPLE: Final = "2026-03-16T11:43:32.4136593Z"
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A validated event: the JSON object as received (null attributes dropped) and quick access to its keys."""

    attributes: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.attributes["id"])

    @property
    def type(self) -> str:
        return str(self.attributes["type"])

    @property
    def source(self) -> str:
        return str(self.attributes["source"])

    def get(self, name: str) -> Any:
        return self.attributes.get(name)


def _is_uri_reference(value: str) -> bool:
    if not _URI_CHARS.fullmatch(value):
        return False
    scheme, sep, _rest = value.partition(":")
    # A colon before any "/", "?" or "#" means the part before it must be a valid scheme.
    first_delim = min((i for i in (value.find("/"), value.find("?"), value.find("#")) if i >= 0), default=len(value))
    if sep and len(scheme) < first_delim and not _SCHEME.fullmatch(scheme):
        return False
    if "[" not in value and "]" not in value:
        return True  # urlsplit refuses an ASCII URI only for its brackets (an IPv6 host): no need to split it
    try:
        urlsplit(value)
    except ValueError:  # e.g. an unbalanced "[" in the authority
        return False
    return True


def _is_absolute_uri(value: str) -> bool:
    scheme, sep, _ = value.partition(":")
    return bool(sep) and bool(_SCHEME.fullmatch(scheme)) and _is_uri_reference(value)


def is_rfc3339(value: str) -> bool:
    return rfc3339.is_valid(value)


def string_rule(value: str, limit: int = MAX_ATTRIBUTE_CHARS) -> str | None:
    """Why ``value`` is not an acceptable attribute string (length, CloudEvents ``String`` characters), or None."""
    if len(value) > limit:
        return f"must be at most {limit} characters, got {len(value)}"
    # Fast path for the usual ASCII value: its non-printables are exactly U+0000-U+001F and U+007F.
    if value.isascii() and value.isprintable():
        return None
    bad = _DISALLOWED_CHARS.search(value)
    if bad is not None:
        return (
            f"must not contain control characters, noncharacters or lone surrogates "
            f"(U+{ord(bad.group()):04X} at position {bad.start()})"
        )
    return None


def _check_string(name: str, value: Any, errors: list[FieldError], *, prefix: str) -> bool:
    if not isinstance(value, str):
        errors.append(FieldError(prefix + name, "must be a string", value))
        return False
    if value == "":
        errors.append(FieldError(prefix + name, "must be a non-empty string", value))
        return False
    rule = string_rule(value, _MAX_CHARS.get(name, MAX_ATTRIBUTE_CHARS))
    if rule is not None:
        errors.append(FieldError(prefix + name, rule, value))
        return False
    return True


def validate(obj: Any, *, prefix: str = "") -> list[FieldError]:
    """Every way ``obj`` breaks CloudEvents 1.0 (JSON format); empty when valid.

    ``prefix`` names the event in a batch (``[3].``) so errors point at it.
    """
    if not isinstance(obj, dict):
        kind = "array" if isinstance(obj, list) else "null" if obj is None else type(obj).__name__
        return [FieldError(prefix.rstrip(".") or "(body)", f"a CloudEvent must be a JSON object, not {kind}")]
    errors: list[FieldError] = []
    p = prefix
    for name in REQUIRED:
        if obj.get(name) is None:
            errors.append(FieldError(p + name, "required attribute is missing"))
    specversion = obj.get("specversion")
    if (
        specversion is not None
        and _check_string("specversion", specversion, errors, prefix=p)
        and (specversion != SPECVERSION)
    ):
        errors.append(FieldError(p + "specversion", f'only "{SPECVERSION}" is supported', specversion))
    for name in ("id", "type"):
        if obj.get(name) is not None:
            _check_string(name, obj[name], errors, prefix=p)
    source = obj.get("source")
    if source is not None and _check_string("source", source, errors, prefix=p) and not _is_uri_reference(source):
        errors.append(FieldError(p + "source", "must be a URI-reference (RFC 3986)", source))

    for name in ("subject",):
        if obj.get(name) is not None:
            _check_string(name, obj[name], errors, prefix=p)
    dct = obj.get("datacontenttype")
    if dct is not None and _check_string("datacontenttype", dct, errors, prefix=p) and not _MEDIA_TYPE.fullmatch(dct):
        errors.append(FieldError(p + "datacontenttype", "must be a media type (RFC 2046), e.g. application/json", dct))
    schema = obj.get("dataschema")
    if schema is not None and _check_string("dataschema", schema, errors, prefix=p) and not _is_absolute_uri(schema):
        errors.append(FieldError(p + "dataschema", "must be an absolute URI (RFC 3986)", schema))
    time = obj.get("time")
    if time is not None and _check_string("time", time, errors, prefix=p) and not is_rfc3339(time):
        errors.append(FieldError(p + "time", f"must be an RFC 3339 timestamp with seconds, e.g. {_TIME_EXAMPLE}", time))

    if "data" in obj and "data_base64" in obj and obj["data_base64"] is not None:
        errors.append(FieldError(p + "data_base64", "data and data_base64 are mutually exclusive"))
    data_base64 = obj.get("data_base64")
    if data_base64 is not None:
        if not isinstance(data_base64, str):
            errors.append(FieldError(p + "data_base64", "must be a base64 string", data_base64))
        else:
            try:
                base64.b64decode(data_base64, validate=True)
            except (binascii.Error, ValueError):
                errors.append(FieldError(p + "data_base64", "must be valid base64 (RFC 4648)", data_base64))

    for name, value in obj.items():
        if name in KNOWN:
            continue
        if not _ATTRIBUTE_NAME.fullmatch(name):
            errors.append(FieldError(p + name, "extension attribute names must be lowercase a-z and 0-9 only"))
            continue
        _check_extension_value(p + name, value, errors)
    return errors


def _check_extension_value(name: str, value: Any, errors: list[FieldError]) -> None:
    # The CloudEvents type system as JSON can carry it: String (also URI,
    # URI-reference, Timestamp and Binary, which travel as strings), Boolean and
    # Integer (32-bit signed). null means absent.
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        rule = string_rule(value)
        if rule is not None:
            errors.append(FieldError(name, rule, value))
        return
    if isinstance(value, int):
        if not INT32_MIN <= value <= INT32_MAX:
            errors.append(FieldError(name, "an Integer attribute must fit in 32 bits (signed)", value))
        return
    if isinstance(value, float):
        errors.append(FieldError(name, "extension values must be string, boolean or integer, not a fraction", value))
        return
    kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else type(value).__name__
    errors.append(FieldError(name, f"extension values must be string, boolean or integer, not a JSON {kind}"))


def normalize(obj: Mapping[str, Any]) -> CloudEvent:
    """A validated object as a :class:`CloudEvent`. Null context attributes are absent by the spec, so dropped."""
    return CloudEvent({k: v for k, v in obj.items() if v is not None or k in DATA_MEMBERS})
