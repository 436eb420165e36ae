"""The request kit (core/kit): route table and guards, typed request and its bounded body reader, the response
type, stage timing, and the transaction runner against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from madbase.core import tenants
from madbase.core.authn import AuthContext
from madbase.core.db import reset_only_if_dirty
from madbase.core.errors import GatewayError, Kind
from madbase.core.kit import (
    BodyErrors,
    ErrorTable,
    Request,
    Response,
    RouteTable,
    Stages,
    TxRunner,
    TxSettings,
    acting_as,
    route,
)
from madbase.core.kit.routing import compile_pattern
from madbase.core.requestscope import CURRENT, ClientGone, DisconnectWatch, RequestScope
from madbase.core.types import Message


async def _noop(request: Request) -> Response:
    return Response(204)


# -- routing -----------------------------------------------------------------------------------------------------
def test_patterns_compile_to_segments_and_rest() -> None:
    assert compile_pattern("/bucket/{id}").match("/bucket/b1/")
    assert not compile_pattern("/bucket/{id}").match("/bucket/b1/x")
    assert compile_pattern("/object/{bucket}/{path*}").match("/object/b/a/b.txt").groups() == ("b", "a/b.txt")  # type: ignore[union-attr]
    assert not compile_pattern("/object/{bucket}/{path*}").match("/object/b/")
    assert compile_pattern("/render/image/{rest**}").match("/render/image/")
    assert compile_pattern("/a.b").match("/a.b") and not compile_pattern("/a.b").match("/axb")  # literal dots
    with pytest.raises(ValueError):
        compile_pattern("/x/{rest*}/y")
    with pytest.raises(ValueError):
        compile_pattern("no-slash")


def test_table_first_match_wins_and_knows_methods_of_a_path() -> None:
    table = RouteTable([
        route("POST", "/object/sign/{bucket}", _noop, name="storage.object.sign_many"),
        route("POST", "/object/sign/{bucket}/{path*}", _noop, name="storage.object.sign_one"),
        route(("GET", "HEAD"), "/object/{bucket}/{path*}", _noop, name="storage.object.download"),
    ])
    found = table.match("POST", "/object/sign/b")
    assert found is not None and found.route.name == "storage.object.sign_many" and found.params == ("b",)
    found = table.match("HEAD", "/object/b/x/y")
    assert found is not None and found.route.name == "storage.object.download" and found.params == ("b", "x/y")
    assert table.match("PATCH", "/object/b/x") is None
    assert table.allowed("/object/b/x") == {"GET", "HEAD"}
    assert table.allowed("/nothing") == frozenset()
    assert table.names()["HEAD /object/{bucket}/{path*}"] == "storage.object.download"


def test_a_route_twice_is_refused() -> None:
    with pytest.raises(ValueError):
        RouteTable([route("GET", "/a", _noop, name="x"), route(("GET", "PUT"), "/a", _noop, name="y")])


# -- request -----------------------------------------------------------------------------------------------------
class TooLarge(Exception):
    pass


class BadJson(Exception):
    pass


ERRORS = BodyErrors(too_large=lambda limit: TooLarge(limit), bad_json=lambda message: BadJson(message))


def _receiver(chunks: list[bytes], *, disconnect: bool = False) -> Any:
    messages: list[Message] = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                               for i, c in enumerate(chunks)]
    if disconnect:
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})

    async def receive() -> Message:
        return messages.pop(0)

    return receive


def _request(chunks: list[bytes], *, limit: int = 0, disconnect: bool = False, query: bytes = b"",
             headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    scope = {"type": "http", "method": "POST", "path": "/storage/v1/x", "query_string": query,
             "headers": headers or []}
    return Request(scope, _receiver(chunks, disconnect=disconnect), None,  # type: ignore[arg-type]
                   body_limit=limit, body_errors=ERRORS)


async def test_body_chunks_stream_and_stop_at_the_limit() -> None:
    got = [c async for c in _request([b"ab", b"", b"cd"], limit=4).chunks()]
    assert got == [b"ab", b"cd"]
    seen: list[bytes] = []
    with pytest.raises(TooLarge):
        async for chunk in _request([b"abc", b"def", b"ghi"], limit=5).chunks():
            seen.append(chunk)
    assert seen == [b"abc"]  # the chunk that crossed the limit was never handed on


async def test_read_collects_bounded_and_only_once() -> None:
    req = _request([b"a" * 10, b"b" * 10])
    assert await req.read(limit=20) == b"a" * 10 + b"b" * 10
    with pytest.raises(RuntimeError):
        await req.read()
    with pytest.raises(TooLarge):
        await _request([b"a" * 10, b"b" * 10]).read(limit=19)


async def test_json_parses_or_raises_the_service_error() -> None:
    assert await _request([b'{"a":', b" [1, 2]}"]).json() == {"a": [1, 2]}
    assert await _request([b"  "]).json(empty={}) == {}
    with pytest.raises(BadJson):
        await _request([b"{nope"]).json()
    with pytest.raises(TooLarge):
        await _request([b'{"a": "' + b"x" * 100 + b'"}'], limit=50).json()


async def test_a_client_gone_mid_body_is_never_a_complete_body() -> None:
    with pytest.raises(ClientGone):
        await _request([b"partial"], disconnect=True).read()


def test_headers_and_query() -> None:
    req = _request([], query=b"a=1&b=&a=2&c=%2F",
                   headers=[(b"X-Upsert", b"true"), (b"x-upsert", b"false"), (b"range", b"bytes=0-1")])
    assert req.query == {"a": "2", "b": "", "c": "/"}
    assert req.header("x-upsert") == "true" and req.headers["range"] == "bytes=0-1"
    assert req.header("missing") is None


# -- response ----------------------------------------------------------------------------------------------------
async def _sent(response: Response) -> list[Message]:
    out: list[Message] = []

    async def send(message: Message) -> None:
        out.append(message)

    await response.send(send)
    return out


async def test_response_fills_length_and_type() -> None:
    msgs = await _sent(Response.json({"ok": True}, 201, {"X-A": "b"}))
    headers = dict(msgs[0]["headers"])
    assert msgs[0]["status"] == 201 and headers[b"x-a"] == b"b"
    assert headers[b"content-type"] == b"application/json" and headers[b"content-length"] == b"11"
    assert msgs[1]["body"] == b'{"ok":true}'
    no_body = dict((await _sent(Response(304, {"etag": '"x"'})))[0]["headers"])
    assert b"content-length" not in no_body
    head = dict((await _sent(Response(200, {"content-length": "99"})))[0]["headers"])
    assert head[b"content-length"] == b"99"  # a HEAD answer keeps the length it states
    text = dict((await _sent(Response(200, None, b"x", media_type="text/plain")))[0]["headers"])
    assert text[b"content-type"] == b"text/plain; charset=utf-8"


async def test_streamed_response_sends_chunks_and_closes_the_source() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        try:
            for c in (b"a", b"", b"b"):
                yield c
        finally:
            closed.set()

    msgs = await _sent(Response(200, None, stream=source()))
    assert [m.get("body") for m in msgs[1:]] == [b"a", b"b", b""]
    assert b"content-length" not in dict(msgs[0]["headers"]) and closed.is_set()


async def test_streamed_response_stops_reading_once_the_client_is_gone() -> None:
    watch = DisconnectWatch()
    pulled = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(1000):
            pulled += 1
            yield b"x"

    async def send(message: Message) -> None:
        if message.get("more_body"):
            watch.gone = True  # the protocol saw the connection drop after the first chunk

    async def run() -> None:
        CURRENT.set(RequestScope(watch, None))
        await Response(200, None, stream=source()).send(send)

    await asyncio.create_task(run())
    assert pulled == 2


# -- timing ------------------------------------------------------------------------------------------------------
def test_stages_add_up_and_render_as_server_timing() -> None:
    stages = Stages(started=0.0)
    stages.mark("route")
    stages.mark("db")
    stages.mark("db")
    header = stages.header()
    assert [part.split(";")[0] for part in header.split(", ")] == ["route", "db"]
    assert all(part.split(";dur=")[1].replace(".", "").isdigit() for part in header.split(", "))
    seen: list[tuple[str, str]] = []

    class Sink:
        def observe_stage(self, service: str, stage: str, seconds: float) -> None:
            seen.append((service, stage))

    stages.observe(Sink(), "storage")
    assert seen == [("storage", "route"), ("storage", "db")]


# -- transaction runner --------------------------------------------------------------------------------------------
def test_settings_are_data_and_roles_are_checked() -> None:
    with pytest.raises(GatewayError) as err:
        TxSettings("postgres")
    assert err.value.kind is Kind.ROLE_NOT_ALLOWED
    with pytest.raises(ValueError):
        TxSettings.internal("authenticated")
    auth = AuthContext("authenticated", {"sub": "u1", "role": "authenticated", "n": 3, "bad-name": "x"},
                       '{"sub":"u1","role":"authenticated","n":3,"bad-name":"x"}', "tok", "anon")
    settings = TxSettings.for_request(auth, method="GET", path="/x", headers={"h": "v"})
    more = settings.with_settings(("storage.operation", "storage.object.get"), ("request.jwt", None))
    assert settings.settings != more.settings and more.settings[-1] == ("storage.operation", "storage.object.get")
    gucs = more.gucs()
    assert gucs.names[:2] == ["role", "request.jwt.claims"] and gucs.values[0] == "authenticated"
    assert "request.jwt.claim.n" in gucs.names and "request.jwt.claim.bad-name" not in gucs.names
    assert "request.jwt" not in gucs.names  # a missing value is left out, not set to ""
    with pytest.raises(AttributeError):
        settings.role = "service_role"  # type: ignore[misc]


class Refused(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


TABLE = ErrorTable("test", {"42501": lambda e: Refused("denied"), "23": lambda e: Refused("integrity"),
                            "23505": lambda e: Refused("duplicate")}, fallback=lambda e: Refused("internal"))


def test_error_table_maps_by_code_then_class_then_fallback() -> None:
    def state(cls: type[asyncpg.PostgresError]) -> asyncpg.PostgresError:
        return cls("x")

    assert TABLE.map(state(asyncpg.UniqueViolationError)).what == "duplicate"  # type: ignore[attr-defined]
    assert TABLE.map(state(asyncpg.ForeignKeyViolationError)).what == "integrity"  # type: ignore[attr-defined]
    assert TABLE.map(state(asyncpg.DivisionByZeroError)).what == "internal"  # type: ignore[attr-defined]
    for exc in (OSError("x"), asyncpg.TooManyConnectionsError("x"), asyncpg.ConnectionDoesNotExistError("x")):
        mapped = TABLE.map(exc)
        assert isinstance(mapped, GatewayError) and mapped.kind is Kind.DB_UNAVAILABLE
    other = KeyError("mine")
    assert TABLE.map(other) is other
    dup = TABLE.override({"23505": lambda e: Refused("bucket exists")})
    assert dup.map(state(asyncpg.UniqueViolationError)).what == "bucket exists"  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        ErrorTable("x", {"235": lambda e: e}, fallback=lambda e: e)


async def test_runner_sets_role_claims_settings_and_maps_errors(fresh_db: str) -> None:
    await tenants.bootstrap(fresh_db, "authenticator", "login-pw-1")
    owner = await asyncpg.connect(fresh_db)
    try:
        await owner.execute("create table public.kit_t (id int primary key); grant all on public.kit_t to "
                            "authenticated; revoke all on public.kit_t from anon; grant select on public.kit_t to anon")
    finally:
        await owner.close()
    pool = await asyncpg.create_pool(fresh_db, user="authenticator", password="login-pw-1", min_size=1, max_size=1,
                                     reset=reset_only_if_dirty)
    assert pool is not None
    runner = TxRunner(TABLE)
    claims = {"sub": "11111111-1111-1111-1111-111111111111", "role": "authenticated"}
    auth = AuthContext("authenticated", claims, json.dumps(claims), None, None)
    settings = TxSettings.for_request(auth, method="POST", path="/p").with_settings(("storage.operation", "op.x"))
    try:
        async with runner.transaction(pool, settings) as conn:
            row = await conn.fetchrow("select current_user::text u, auth.uid()::text uid, "
                                      "current_setting('storage.operation') op, current_setting('request.method') m")
            assert row is not None and tuple(row) == ("authenticated", claims["sub"], "op.x", "POST")
            async with acting_as(conn, "supabase_storage_admin", settings):
                assert await conn.fetchval("select current_user::text") == "supabase_storage_admin"
            assert await conn.fetchval("select current_user::text") == "authenticated"
            await conn.execute("insert into kit_t values (1)")
        with pytest.raises(Refused) as refused:
            async with runner.transaction(pool, settings) as conn:
                await conn.execute("insert into kit_t values (1)")
        assert refused.value.what == "duplicate"
        anon = TxSettings.for_request(AuthContext("anon", {"role": "anon"}, '{"role":"anon"}', None, None))
        with pytest.raises(Refused) as refused:
            async with runner.transaction(pool, anon) as conn:
                await conn.execute("insert into kit_t values (2)")
        assert refused.value.what == "denied"
        with pytest.raises(Refused) as refused:  # read-only is enforced (25006 → the fallback here)
            async with runner.transaction(pool, settings, readonly=True) as conn:
                await conn.execute("insert into kit_t values (3)")
        assert refused.value.what == "internal"
        # the service's own errors and control flow pass through the runner untouched
        with pytest.raises(KeyError):
            async with runner.transaction(pool, settings) as conn:
                await conn.execute("insert into kit_t values (4)")
                raise KeyError("mine")
        async with runner.transaction(pool, settings) as conn:
            assert await conn.fetchval("select count(*) from public.kit_t") == 1  # 4 was rolled back
        async with runner.transaction(pool, TxSettings.internal("supabase_storage_admin")) as conn:
            assert await conn.fetchval("select current_user::text") == "supabase_storage_admin"
        # one statement, one round trip
        row = await runner.statement(pool, settings, "select count(*)::int8, current_user::text from kit_t "
                                     "where id = ($1::text[])[1]::int", ["1"], "n int8, u text")
        assert row is not None and tuple(row) == (1, "authenticated")
        with pytest.raises(Refused) as refused:
            await runner.statement(pool, anon, "insert into kit_t values (($1::text[])[1]::int) returning 1",
                                   ["9"], "one int4")
        assert refused.value.what == "denied"
    finally:
        await pool.close()


# -- guards ------------------------------------------------------------------------------------------------------
def test_guards_on_the_route_role_then_rate_limit() -> None:
    from types import SimpleNamespace

    from madbase.core.kit import RateRule, ServiceKit, check_guards
    from madbase.core.ratelimit import RateLimiter

    kit = ServiceKit(name="svc", prefix="/svc/v1", error_type=Refused, render=lambda e: Response(400),
                     not_found=lambda m, p: Refused("nf"), forbidden=lambda r, c: Refused(f"forbidden {r.name}"),
                     body_errors=ERRORS)
    admin_only = route("POST", "/admin", _noop, name="svc.admin", roles=["service_role"])
    limited = route("POST", "/send", _noop, name="svc.send", rate=RateRule("send", lambda ctx: 2))
    limiter = RateLimiter(None)

    def ctx(role: str, ip: str = "10.0.0.1") -> Any:
        return SimpleNamespace(auth=SimpleNamespace(role=role), client_ip=ip,
                               runtime=SimpleNamespace(limiter=limiter))

    check_guards(admin_only, ctx("service_role"), kit)
    with pytest.raises(Refused) as refused:
        check_guards(admin_only, ctx("authenticated"), kit)
    assert refused.value.what == "forbidden svc.admin"
    check_guards(limited, ctx("anon"), kit)
    check_guards(limited, ctx("anon"), kit)
    with pytest.raises(GatewayError) as limited_err:
        check_guards(limited, ctx("anon"), kit)
    assert limited_err.value.kind is Kind.RATE_LIMITED and limited_err.value.retry_after
    check_guards(limited, ctx("anon", "10.0.0.2"), kit)  # per client address
