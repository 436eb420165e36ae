"""Text values from pgoutput → JSON values as Supabase Realtime sends them, chosen by type OID.

Supabase builds records with `to_jsonb`, so integers, floats, numerics become JSON numbers, booleans JSON
booleans, json/jsonb the embedded document, timestamps ISO-8601 strings; everything else stays text
(arrays as their `{...}` literal, which the clients convert using `columns`). Pure functions only.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

BUILTIN_TYPE_NAMES: Final[dict[int, str]] = {
    16: "bool", 17: "bytea", 18: "char", 19: "name", 20: "int8", 21: "int2", 23: "int4", 25: "text",
    26: "oid", 114: "json", 142: "xml", 199: "_json", 700: "float4", 701: "float8", 790: "money",
    1000: "_bool", 1005: "_int2", 1007: "_int4", 1009: "_text", 1015: "_varchar", 1016: "_int8",
    1021: "_float4", 1022: "_float8", 1042: "bpchar", 1043: "varchar", 1082: "date", 1083: "time",
    1114: "timestamp", 1115: "_timestamp", 1182: "_date", 1184: "timestamptz", 1185: "_timestamptz",
    1186: "interval", 1231: "_numeric", 1266: "timetz", 1700: "numeric", 2950: "uuid", 2951: "_uuid",
    3802: "jsonb", 3807: "_jsonb", 869: "inet", 650: "cidr", 829: "macaddr", 1560: "bit", 1562: "varbit",
}

_INTS: Final = frozenset({20, 21, 23, 26})
_FLOATS: Final = frozenset({700, 701})
_NUMERIC: Final = 1700
_BOOL: Final = 16
_JSONS: Final = frozenset({114, 3802})
_TIMESTAMPS: Final = frozenset({1114, 1184})


def _iso_timestamp(text: str, with_tz: bool) -> str:
    # '2024-01-01 12:00:00.123+00' → '2024-01-01T12:00:00.123+00:00'
    out = text.replace(" ", "T", 1)
    if with_tz and len(out) >= 3 and out[-3] in "+-" and out[-2:].isdigit():
        out += ":00"
    return out


def to_json_value(type_oid: int, text: str | None) -> Any:
    """One column value (pgoutput text, or None for NULL) as the JSON value Supabase would send."""
    if text is None:
        return None
    if type_oid in _INTS:
        try:
            return int(text)
        except ValueError:
            return text
    if type_oid == _BOOL:
        return text == "t"
    if type_oid in _FLOATS or type_oid == _NUMERIC:
        low = text.lower()
        if low in ("nan", "infinity", "-infinity"):
            return text
        if type_oid == _NUMERIC:
            # Exact digits, emitted verbatim as a JSON number.
            return orjson.Fragment(text)
        return float(text)
    if type_oid in _JSONS:
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        return orjson.Fragment(text)
    if type_oid in _TIMESTAMPS:
        return _iso_timestamp(text, type_oid == 1184)
    return text


def comparable(type_oid: int, text: str | None) -> Any:
    """A Python value for filter comparisons: numbers for numeric types, booleans, text otherwise."""
    if text is None:
        return None
    if type_oid in _INTS:
        try:
            return int(text)
        except ValueError:
            return text
    if type_oid in _FLOATS or type_oid == _NUMERIC:
        try:
            return float(text)
        except ValueError:
            return text
    if type_oid == _BOOL:
        return text == "t"
    return text
