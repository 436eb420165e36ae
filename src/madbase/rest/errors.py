"""The REST error registry: PostgREST's `{code, details, hint, message}` errors and SQLSTATE → HTTP status.

Every refusal the data API makes is an `ApiError`; the codes are PostgREST's PGRSTxxx codes verbatim.
Database errors go through `from_pg` (the one SQLSTATE → HTTP table, PostgREST's `mapSQLtoHTTP`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from madbase.core import jsonutil


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: str | None = None,
                 hint: str | None = None, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or []
        self.details_json: Any = None  # a structured `details` (PGRST201 lists the candidates)

    def body(self) -> bytes:
        details = self.details_json if self.details_json is not None else self.details
        return jsonutil.dumps({"code": self.code, "details": details, "hint": self.hint, "message": self.message})


# -- request / parse errors (PGRST1xx) ----------------------------------------------------------------------

def parse_error(what: str, value: str, details: str) -> ApiError:
    return ApiError(400, "PGRST100", f"failed to parse {what} parameter ({value})", details)


def invalid_body(message: str = "Empty or invalid json") -> ApiError:
    return ApiError(400, "PGRST102", message)


def invalid_range(details: str = "") -> ApiError:
    return ApiError(416, "PGRST103", "Requested range not satisfiable", details or None)


def unacceptable_schema(schema: str, schemas: Iterable[str]) -> ApiError:
    return ApiError(406, "PGRST106", f"Invalid schema: {schema}",
                    hint="Only the following schemas are exposed: " + ", ".join(schemas))


def unacceptable_media(accept: str) -> ApiError:
    return ApiError(406, "PGRST107", "None of these media types are available: " + accept)


def not_embedded(name: str) -> ApiError:
    return ApiError(400, "PGRST108", f"'{name}' is not an embedded resource in this request",
                    hint=f"Verify that '{name}' is included in the 'select' query parameter.")


def singular(rows: int) -> ApiError:
    return ApiError(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                    f"The result contains {rows} rows")


def bad_method(method: str) -> ApiError:
    return ApiError(405, "PGRST117", f"Unsupported HTTP method: {method}")


def invalid_prefs(prefs: Iterable[str]) -> ApiError:
    return ApiError(400, "PGRST122", "Invalid preferences given with handling=strict",
                    "Invalid preferences: " + ", ".join(prefs))


def aggregates_disabled() -> ApiError:
    return ApiError(400, "PGRST123", "Use of aggregate functions is not allowed")


def max_affected(n: int) -> ApiError:
    return ApiError(400, "PGRST124", "Query result exceeds max-affected preference constraint",
                    f"The query affects {n} rows")


def put_mismatch() -> ApiError:
    return ApiError(400, "PGRST115", "Payload values do not match URL in primary key column(s)")


def put_requires_pk() -> ApiError:
    return ApiError(405, "PGRST105",
                    "Filters must include all and only primary key columns with 'eq' operators")


# -- schema cache errors (PGRST2xx) -------------------------------------------------------------------------

def _grams(text: str, size: int) -> dict[str, int]:
    """The n-grams of the text with non-word characters removed (`_` too), enclosed in hyphens, counted."""
    padded = "-" + "".join(ch for ch in text if ch.isalnum() or ch.isspace() or ch == ",") + "-"
    out: dict[str, int] = {}
    for i in range(len(padded) - size + 1):
        out[padded[i:i + size]] = out.get(padded[i:i + size], 0) + 1
    return out


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


_FUZZY_MAX = 96  # characters; PostgreSQL identifiers have at most 63 bytes


def _fuzzy(name: str, candidates: Iterable[str], min_score: float) -> list[tuple[float, str]]:
    """PostgREST's fuzzy search (the `fuzzyset` library, default set): an exact (case-insensitive) entry
    alone scores 1; else the entries sharing 3-grams (failing that 2-grams) with the name, the 50 closest by
    gram cosine rescored as 1 - Levenshtein distance / longer length, best first, kept from `min_score`."""
    if len(name) > _FUZZY_MAX:  # no identifier is that long; and Levenshtein is quadratic
        return []
    key = name.lower()
    pool = {c.lower(): c for c in sorted(set(candidates), reverse=True) if len(c) <= _FUZZY_MAX}
    if key in pool:
        return [(1.0, pool[key])]
    for size in (3, 2):
        query = _grams(key, size)
        qnorm = math.sqrt(sum(v * v for v in query.values()))
        cosine = []
        for low, c in pool.items():
            grams = _grams(low, size)
            shared = sum(n * grams[g] for g, n in query.items() if g in grams)
            if shared:
                cosine.append((shared / (qnorm * math.sqrt(sum(v * v for v in grams.values()))), low, c))
        cosine.sort(key=lambda t: -t[0])
        scored = [(1 - _levenshtein(key, low) / (max(len(key), len(low)) or 1), c) for _, low, c in cosine[:50]]
        scored.sort(key=lambda t: -t[0])
        found = [t for t in scored if t[0] >= min_score]
        if found:
            return found
    return []


def _suggest(name: str, candidates: Iterable[str], min_score: float = 0.75) -> str | None:
    """PostgREST's hint for a table or function name (a score of at least 0.75)."""
    found = _fuzzy(name, candidates, min_score)
    return found[0][1] if found else None


def no_relationship(parent: str, child: str, schema: str, candidates: Iterable[str] = (),
                    hint: str | None = None, parents: Iterable[str] | None = None) -> ApiError:
    """PGRST200; the hint suggests another target (never the name itself), or, when `parent` has no
    relationships at all (`parents`: the relations that have some), another parent."""
    if parents is not None:
        guess = _suggest(parent, parents, 0.33)
        suggestion = f"Perhaps you meant '{guess}' instead of '{parent}'." if guess else None
    else:
        guess = next((c for score, c in _fuzzy(child, candidates, 0.33) if score < 1.0), None)
        suggestion = f"Perhaps you meant '{guess}' instead of '{child}'." if guess else None
    using = f"' using the hint '{hint}" if hint else ""
    return ApiError(400, "PGRST200", f"Could not find a relationship between '{parent}' and '{child}' in the "
                    "schema cache",
                    f"Searched for a foreign key relationship between '{parent}' and '{child}{using}' in the "
                    f"schema '{schema}', but no matches were found.", suggestion)


def ambiguous_relationship(parent: str, child: str, options: list[dict[str, str]], hints: list[str]) -> ApiError:
    err = ApiError(300, "PGRST201", f"Could not embed because more than one relationship was found for "
                   f"'{parent}' and '{child}'", None,
                   "Try changing '" + child + "' to one of the following: " + ", ".join(f"'{h}'" for h in hints)
                   + ". Find the desired relationship in the 'details' key.")
    err.details_json = options
    return err


_SINGLE_RAW = {"text/plain": "text", "text/xml": "xml", "application/octet-stream": "bytea"}


_SINGLE_RAW = {"text/plain": "text", "text/xml": "xml", "application/octet-stream": "bytea"}


def no_function(schema: str, name: str, args: Iterable[str], candidates: Iterable[str] = (),
                post: bool = True, content_type: str = "application/json",
                overloads: Iterable[Iterable[str]] = ()) -> ApiError:
    """PGRST202 as PostgREST words it; the hint suggests a function name, or (when the name has overloads)
    the parameter list of the closest overload."""
    keys = sorted(args)
    arg_list = ", ".join(keys)
    raw = _SINGLE_RAW.get(content_type) if post else None
    shown = "" if raw else f"({arg_list})" if keys else " without parameters"
    if raw:
        searched = f" with a single unnamed {raw} parameter"
    else:
        searched = (f" with parameter{'s' if len(keys) > 1 else ''} {arg_list}" if keys else " without parameters")
        if post and content_type == "application/json":
            searched += " or with a single unnamed json/jsonb parameter"
    hint = None
    if not raw:
        lists = ["(" + ", ".join(sorted(o)) + ")" for o in overloads]
        if lists:
            guess = _suggest("(" + arg_list + ")", lists, 0.33)
            hint = f"Perhaps you meant to call the function {schema}.{name}{guess}" if guess else None
        else:
            guess = _suggest(name, [c for c in candidates if c != name])
            hint = f"Perhaps you meant to call the function {schema}.{guess}" if guess else None
    return ApiError(404, "PGRST202", f"Could not find the function {schema}.{name}{shown} in the schema cache",
                    f"Searched for the function {schema}.{name}{searched}, but no matches were found in the schema "
                    "cache.", hint)


def ambiguous_function(schema: str, name: str, signatures: Iterable[str]) -> ApiError:
    return ApiError(300, "PGRST203", "Could not choose the best candidate function between: "
                    + ", ".join(f"{schema}.{name}({sig})" for sig in signatures),
                    hint="Try renaming the parameters or the function itself in the database so function "
                    "overloading can be resolved")


def rpc_method(method: str) -> ApiError:
    return ApiError(405, "PGRST101", f"Cannot use the {method} method on RPC")


def no_column(column: str, table: str) -> ApiError:
    return ApiError(400, "PGRST204", f"Could not find the '{column}' column of '{table}' in the schema cache")


def no_table(schema: str, name: str, candidates: Iterable[str] = ()) -> ApiError:
    guess = _suggest(name, candidates)
    return ApiError(404, "PGRST205", f"Could not find the table '{schema}.{name}' in the schema cache",
                    hint=f"Perhaps you meant the table '{schema}.{guess}'" if guess else None)


def undefined_column(table: str, column: str) -> ApiError:
    return ApiError(400, "42703", f"column {table}.{column} does not exist")


# -- SQLSTATE → HTTP (PostgREST's mapSQLtoHTTP) --------------------------------------------------------------

_EXACT = {"23503": 409, "23505": 409, "25006": 405, "53400": 500, "P0001": 400, "42883": 404, "42P01": 404,
          "42P17": 500, "57014": 500, "57P01": 503}
_CLASS = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500, "39": 500,
          "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500, "F0": 500, "HV": 500,
          "P0": 500, "XX": 500}


def status_for_sqlstate(sqlstate: str, authenticated: bool, message: str = "") -> int:
    if sqlstate == "42501":
        return 403 if authenticated else 401
    if sqlstate == "21000":  # pg-safeupdate's "requires a WHERE clause" is the client's fault
        return 400 if message.endswith("requires a WHERE clause") else 500
    if sqlstate == "22023":  # a JWT role that does not exist
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    exact = _EXACT.get(sqlstate)
    if exact is not None:
        return exact
    if len(sqlstate) == 5 and sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    return _CLASS.get(sqlstate[:2], 400)


def from_pg(exc: Any, authenticated: bool) -> ApiError:
    """An asyncpg `PostgresError` as PostgREST renders it (message, detail, hint from the server)."""
    sqlstate = str(getattr(exc, "sqlstate", None) or "XX000")
    message = str(getattr(exc, "message", None) or exc)
    detail = getattr(exc, "detail", None)
    hint = getattr(exc, "hint", None)
    if sqlstate == "PGRST":  # RAISE SQLSTATE 'PGRST' with JSON message/detail
        try:
            spec = jsonutil.loads(message)
            extra = jsonutil.loads(detail) if detail else {}
            headers = [(str(k).lower().encode(), str(v).encode()) for k, v in (extra.get("headers") or {}).items()]
            return ApiError(int(extra.get("status", 400)), str(spec.get("code", "PGRST")),
                            str(spec.get("message", "")), spec.get("details"), spec.get("hint"), headers)
        except (ValueError, AttributeError, TypeError):
            return ApiError(500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error")
    status = status_for_sqlstate(sqlstate, authenticated, message)
    err = ApiError(status, sqlstate, message, detail, hint)
    if status == 401:
        err.headers.append((b"www-authenticate", b"Bearer"))
    return err
