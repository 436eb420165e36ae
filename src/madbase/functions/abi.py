"""The language-neutral function ABI: one request in, one result out, and its CGI (WAGI) encoding, sans I/O.

A function sees a request the way Supabase's edge runtime shows it: `path` is `/<name>[/<subpath>]` (the
`/functions/v1` prefix removed, as Supabase's gateway does), `query` the raw query string without `?`, every
header as sent (lower-cased names, repeated names kept), and the body bytes.

CGI/WAGI over WASI preview 1 (what WASM modules speak):
- environment: `REQUEST_METHOD`, `SCRIPT_NAME` (`/<name>`), `PATH_INFO` (the subpath, possibly empty),
  `QUERY_STRING`, `REQUEST_URI` (path + `?query`), `X_FULL_URL`, `CONTENT_TYPE`, `CONTENT_LENGTH`,
  `SERVER_PROTOCOL`, `GATEWAY_INTERFACE`, `SERVER_NAME`, `SERVER_PORT`, and `HTTP_<NAME>` per header (name
  upper-cased, `-` → `_`, repeated headers joined with `, `), then the function's variables and secrets;
- stdin: the body; stdout: `Status: NNN [reason]` and `Name: value` lines, a blank line, then the body (no
  `Status` → 200, or 302 with a `Location`); stderr: the function's logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Names the host sets for every request; a function's own variables or secrets may not shadow them.
CGI_VARIABLES = frozenset({
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "X_FULL_URL", "CONTENT_TYPE",
    "CONTENT_LENGTH", "SERVER_PROTOCOL", "GATEWAY_INTERFACE", "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR",
})
MAX_RESPONSE_HEADERS = 100
MAX_HEADER_BYTES = 64 * 1024
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


@dataclass(frozen=True, slots=True)
class FunctionRequest:
    """What an invocation passes to a function (and, for OutboundFetch, what a function asks the host to fetch:
    then `path` is the absolute URL, query included, and `query` is empty)."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class FunctionResult:
    """What a function answered, with what it cost.

    `error` is None when the function ran to completion (whatever status it chose), else one of
    "cpu" (CPU budget spent), "memory" (memory limit hit or module too big), "wall" (wall-clock timeout),
    "crash" (trap, non-zero exit, malformed response) or "boot" (the module could not be instantiated);
    `logs` holds what the function wrote to stderr / console, `body` then carries nothing meaningful.
    For OutboundFetch results `error` may also be "blocked" (host not allowed) or "network" (unreachable).
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    logs: str
    fuel_used: int
    memory_bytes: int
    error: str | None


class AbiError(ValueError):
    """The function's output is not a CGI response."""


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of a header (case-insensitive), or None."""
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def function_name(request: FunctionRequest) -> str:
    """`hello` from `/hello/sub/path`."""
    return request.path.lstrip("/").split("/", 1)[0]


def request_url(request: FunctionRequest, prefix: str = "/functions/v1") -> str:
    """The absolute URL the caller used, rebuilt from Host / X-Forwarded-* (what `new URL(req.url)` shows)."""
    host = header_value(request.headers, "x-forwarded-host") or header_value(request.headers, "host") or "localhost"
    proto = (header_value(request.headers, "x-forwarded-proto") or "http").split(",")[0].strip() or "http"
    url = f"{proto}://{host.split(',')[0].strip()}{prefix}{request.path}"
    return f"{url}?{request.query}" if request.query else url


def cgi_environ(request: FunctionRequest, extra: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The CGI environment for a request; `extra` (variables, secrets) follows, never shadowing a CGI name."""
    name = function_name(request)
    script = f"/{name}"
    path_info = request.path[len(script):] if request.path.startswith(script) else request.path
    host = header_value(request.headers, "host") or "localhost"
    server_name, _, port = host.rpartition(":") if host.rsplit(":", 1)[-1].isdigit() else (host, "", "")
    env: dict[str, str] = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_METHOD": request.method.upper(),
        "SCRIPT_NAME": script,
        "PATH_INFO": path_info,
        "QUERY_STRING": request.query,
        "REQUEST_URI": f"{request.path}?{request.query}" if request.query else request.path,
        "X_FULL_URL": request_url(request),
        "SERVER_NAME": server_name or host,
        "SERVER_PORT": port or "80",
        "CONTENT_LENGTH": str(len(request.body)),
    }
    content_type = header_value(request.headers, "content-type")
    if content_type is not None:
        env["CONTENT_TYPE"] = content_type
    for key, value in request.headers:
        var = "HTTP_" + key.upper().replace("-", "_")
        if var in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            continue
        env[var] = f"{env[var]}, {value}" if var in env else value
    for key, value in (extra or {}).items():
        if key not in CGI_VARIABLES and not key.startswith("HTTP_"):
            env[key] = value
    return list(env.items())


def parse_cgi_response(output: bytes) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """Split a CGI response (`Status:` + headers, blank line, body) into status, headers and body."""
    end, sep_len = _header_end(output)
    if end < 0:
        raise AbiError("the function's output has no header section (a blank line must end the headers)")
    if end > MAX_HEADER_BYTES:
        raise AbiError("the function's response headers are too large")
    status: int | None = None
    headers: list[tuple[str, str]] = []
    for raw in output[:end].replace(b"\r\n", b"\n").split(b"\n"):
        if not raw:
            continue
        key, colon, value = raw.partition(b":")
        key = key.strip()
        if not colon or not _TOKEN.match(key):
            raise AbiError(f"malformed response header line: {raw[:80]!r}")
        text = value.strip().decode("latin-1")
        if any(ch in text for ch in "\r\n\0"):
            raise AbiError("a response header value contains a control character")
        if key.lower() == b"status":
            code = text.split(" ", 1)[0]
            if not (code.isascii() and code.isdigit() and len(code) == 3 and 100 <= int(code) <= 599):
                raise AbiError(f"invalid Status line: {text[:40]!r}")
            status = int(code)
            continue
        headers.append((key.decode("ascii").lower(), text))
        if len(headers) > MAX_RESPONSE_HEADERS:
            raise AbiError("the function answered too many headers")
    if status is None:
        status = 302 if header_value(headers, "location") is not None else 200
    return status, tuple(headers), output[end + sep_len:]


def _header_end(output: bytes) -> tuple[int, int]:
    """Offset and length of the blank line ending the header section (CRLF or bare LF), or (-1, 0)."""
    if output.startswith(b"\r\n"):
        return 0, 2
    if output.startswith(b"\n"):
        return 0, 1
    crlf = output.find(b"\r\n\r\n")
    lf = output.find(b"\n\n")
    if crlf < 0 and lf < 0:
        return -1, 0
    if lf < 0 or (0 <= crlf < lf):
        return crlf, 4
    return lf, 2


def encode_cgi_response(status: int, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
    """The CGI bytes a function writes for a response (used by bootstraps and tests)."""
    lines = [f"Status: {status}"] + [f"{key}: {value}" for key, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
