"""The request/response vocabulary shared by the auth handlers (a thin layer over raw ASGI).

`Req` carries the parsed request (sub-path, query, headers, JSON body), the gateway's context, the
project's auth settings and the route's path parameters. Handlers return a `Resp`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import asyncpg

from madbase.auth.config import AuthConfig
from madbase.auth.errors import AuthError
from madbase.core import jsonutil
from madbase.core.context import RequestContext
from madbase.core.kit.timing import Stages
from madbase.core.proxies import public_origin

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Resp:
    status: int
    body: bytes = b""
    headers: Headers = field(default_factory=list)
    content_type: bytes | None = b"application/json"


def json_resp(value: Any, status: int = 200, headers: Headers | None = None) -> Resp:
    return Resp(status, jsonutil.dumps(value), headers or [])


def redirect(location: str, status: int = 303) -> Resp:
    return Resp(status, b"", [(b"location", location.encode())], content_type=None)


def no_content() -> Resp:
    return Resp(204, b"", [], content_type=None)


@dataclass(slots=True)
class Req:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    ctx: RequestContext
    config: AuthConfig
    pool: asyncpg.Pool
    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    peer: str = ""  # the TCP peer's address (a trusted proxy may speak for the client)
    stages: Stages | None = None  # the kit's stage timer: handlers mark their own stages (e.g. "db")
    _json: Any = None

    def json(self) -> dict[str, Any]:
        """The JSON object body; `{}` for an empty body; bad_json otherwise."""
        if self._json is None:
            if not self.body.strip():
                self._json = {}
            else:
                try:
                    value = jsonutil.loads(self.body)
                except jsonutil.JSONDecodeError:
                    raise AuthError("bad_json", "Could not parse request body as JSON") from None
                if not isinstance(value, dict):
                    raise AuthError("bad_json", "Could not parse request body as JSON: expected an object")
                self._json = value
        result: dict[str, Any] = self._json
        return result

    def str_field(self, name: str) -> str:
        value = self.json().get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise AuthError("validation_failed", f"{name} must be a string")
        return value.strip() if name in ("email", "phone") else value

    def obj_field(self, name: str) -> dict[str, Any] | None:
        value = self.json().get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise AuthError("validation_failed", f"{name} must be an object")
        return value

    @property
    def api_version(self) -> str | None:
        return self.headers.get("x-supabase-api-version")

    @property
    def external_url(self) -> str:
        """This API's public base URL (…/auth/v1): the project's `api_external_url`, else the request's own host
        when that host names this project, else the server's public URL.

        Mail links are built from it and sent to someone else: a host taken from any request header would let
        an attacker ask for a victim's recovery mail whose link leads to the attacker's host (reset poisoning).
        So `X-Forwarded-Host/Proto` count only from a trusted proxy, and the host only when it routes here."""
        if self.config.api_external_url:
            return self.config.api_external_url.rstrip("/")
        # X-Forwarded-Host/-Proto only from a trusted proxy (public_origin), and the host only when it routes here.
        proto, host = public_origin(self.headers, self.scheme, trusted=self.ctx.via_trusted_proxy)
        settings = self.ctx.runtime.settings
        public = settings.public_url
        if _host_routes_here(host.lower(), self.ctx.project.ref, public, settings.base_domain):
            return f"{proto}://{host.lower()}/auth/v1"
        return public + "/auth/v1"

    @property
    def issuer(self) -> str:
        return self.config.jwt_issuer or self.external_url

    @property
    def user_agent(self) -> str:
        return self.headers.get("user-agent", "")


_HOST = re.compile(r"^[a-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9a-f:.]+\](:[0-9]{1,5})?$")


def _host_routes_here(host: str, ref: str, public_url: str, base_domain: str | None) -> bool:
    """True when `host` (host[:port] of a request) is this server's public host or the project's subdomain."""
    if not _HOST.match(host):
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if base_domain and name == f"{ref}.{base_domain}".lower():
        return True
    public_host = public_url.split("://", 1)[-1].split("/", 1)[0].lower()
    if host == public_host:
        return True
    # The loopback names of a loopback server (localhost vs 127.0.0.1), on the same port.
    loopback = ("localhost", "127.0.0.1", "[::1]")
    public_name, _, public_port = public_host.rpartition(":")
    if public_host.endswith("]"):
        public_name, public_port = public_host, ""
    port = host[len(name) + 1:]
    return name in loopback and public_name in loopback and port == public_port


def parse_query(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
