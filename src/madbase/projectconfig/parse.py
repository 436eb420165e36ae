"""Value parsers shared by the environment and config.toml readers, with the formats GoTrue and the Supabase
CLI accept: Go booleans (`strconv.ParseBool`), Go durations (`"1s"`, `"24h"`, `"1h30m"`) or plain seconds."""

from __future__ import annotations

import re


class ProjectConfigError(Exception):
    """A start-time project setting is malformed; the message names it, for the operator."""


_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def boolean(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ProjectConfigError(f"invalid setting {name}: {value!r} is not a boolean (true or false)")


def integer(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise ProjectConfigError(f"invalid setting {name}: {value!r} is not a number")
    if isinstance(value, int):
        return value
    try:
        return int(float(str(value).strip()))
    except ValueError:
        raise ProjectConfigError(f"invalid setting {name}: {value!r} is not a number") from None


def seconds(name: str, value: object) -> int:
    """A duration in whole seconds: a number of seconds or a Go duration string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return int(float(text))
    if text and _DURATION.sub("", text) == "":
        return int(sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(text)))
    raise ProjectConfigError(f"invalid setting {name}: {value!r} is not a duration (like 3600, \"1s\" or \"24h\")")


def string_list(name: str, value: object) -> list[str]:
    """A list from a TOML array or a comma-separated string (GoTrue's URI_ALLOW_LIST form)."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ProjectConfigError(f"invalid setting {name}: must be a list of strings")
        return [v.strip() for v in value if v.strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]
