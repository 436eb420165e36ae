"""What every control-plane command shares: its options (target, project, output), printing, error exits."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from madbase.clicmds.client import CliError, Target, fail, resolve


class Output(StrEnum):
    pretty = "pretty"
    json = "json"


ProjectRef = Annotated[str | None, typer.Option(
    "--project-ref", metavar="REF", help="The project (MADBASE_PROJECT_REF; default: the local default project)")]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", metavar="FORMAT", help="pretty or json (for scripts)")]
ApiUrl = Annotated[str | None, typer.Option("--api-url", metavar="URL",
                                            help="A remote server (MADBASE_API_URL; default: the login's)")]
Token = Annotated[str | None, typer.Option("--token", metavar="TOKEN",
                                           help="A personal access token (MADBASE_ACCESS_TOKEN)")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", metavar="DIR",
                                              help="Data folder of a local server (MADBASE_DATA_DIR)")]

P = ParamSpec("P")
R = TypeVar("R")


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a CliError raised by a command into `madbase: <message>` on stderr and exit status 1."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            fail(str(exc))
    return wrapper


Local = Annotated[bool, typer.Option("--local", help="The local server (its data folder), even when logged in")]


def target(api_url: str | None, token: str | None, data_dir: Path | None, local: bool = False) -> Target:
    return resolve(api_url=api_url, token=token, data_dir=data_dir, local=local)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def emit(value: Any, output: Output, columns: Sequence[str] | None = None, *, empty: str = "(none)") -> None:
    """Print an API answer: as JSON for `-o json`, else a table (a list) or `key: value` lines (an object)."""
    if output is Output.json:
        print(json.dumps(value, indent=2))
        return
    if isinstance(value, list):
        if not value:
            print(empty)
            return
        cols = list(columns) if columns else list(value[0]) if isinstance(value[0], dict) else []
        if not cols:
            for item in value:
                print(_cell(item))
            return
        rows = [[_cell(item.get(c)) if isinstance(item, dict) else "" for c in cols] for item in value]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
        for r in rows:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        return
    if isinstance(value, dict):
        keys = list(columns) if columns else list(value)
        width = max((len(k) for k in keys), default=0)
        for k in keys:
            print(f"{k.rjust(width)}: {_cell(value.get(k))}")
        return
    if value is not None:
        print(value)


def listed(answer: Any, plural: str) -> list[Any]:
    """The items of a list answer: `{"<plural>": [...]}` (the admin API's lists) or a plain array (Supabase's)."""
    if isinstance(answer, dict) and isinstance(answer.get(plural), list):
        return list(answer[plural])
    if isinstance(answer, list):
        return answer
    raise CliError(f"unexpected answer from the server: {json.dumps(answer)[:200]}")


def parse_pairs(pairs: Sequence[str], what: str = "KEY=VALUE") -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"expected {what}, got {pair!r}")
        out[key.strip()] = value
    return out
