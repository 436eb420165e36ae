"""The services moved onto the request kit (REST, realtime's HTTP API, whoami, the admin inbox): their route
tables and operation names (pinned: names are data), the Kong-shaped kit of the small services, the kit's
pieces the moves needed (bytes-header responses, a Server-Timing of chosen stages, the lock-free stage
histogram), and a truncated broadcast body never broadcast."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from madbase.admin.service import OWN_ROUTES as ADMIN_ROUTES
from madbase.core.kit import Request, Response, RouteTable, Stages, route
from madbase.core.kit.message import MessageError, message_kit
from madbase.core.metrics import Metrics
from madbase.core.requestscope import ClientGone
from madbase.core.types import Message
from madbase.realtime import httpapi


async def _noop(request: Request) -> Response:
    return Response(204)


def test_operation_names_are_pinned() -> None:
    assert httpapi.ROUTES.names() == {
        "POST /api/broadcast": "realtime.broadcast.many",
        "POST /api/broadcast/{name}/events/{event}": "realtime.broadcast.one",
        "GET /api/status": "realtime.status",
    }
    inbox_routes = [r for r in ADMIN_ROUTES if r.name.startswith("admin.inbox.")]
    assert RouteTable(inbox_routes).names() == {
        "GET /projects/{ref}/inbox": "admin.inbox.list",
        "DELETE /projects/{ref}/inbox": "admin.inbox.clear",
        "GET /projects/{ref}/inbox/{id}": "admin.inbox.get",
    }
    # the inbox declares the admin right it needs on every route; realtime's status route is service_role only
    assert {r.name: r.right for r in inbox_routes} == {"admin.inbox.list": "auth.read",
                                                        "admin.inbox.clear": "auth.write",
                                                        "admin.inbox.get": "auth.read"}
    assert httpapi.ROUTES.match("GET", "/api/status").route.roles == frozenset({"service_role"})  # type: ignore[union-attr]
    assert httpapi.ROUTES.match("POST", "/api/broadcast").route.body_limit == httpapi.MAX_BODY  # type: ignore[union-attr]


def test_message_kit_answers_404_405_401_in_kong_shape() -> None:
    table: RouteTable[Any] = RouteTable([route("GET", "/things/{id}", _noop, name="t.get")])
    kit = message_kit("t", "/t/v1", table, forbidden="service_role only")
    missing = kit.not_found("GET", "/t/v1/nothing")
    assert isinstance(missing, MessageError) and missing.status == 404
    other = kit.not_found("POST", "/t/v1/things/1")
    assert isinstance(other, MessageError) and other.status == 405
    refused = kit.forbidden(table.routes[0], SimpleNamespace())  # type: ignore[arg-type]
    rendered = kit.render(refused)
    assert rendered.status == 401 and rendered.body == b'{"message":"service_role only"}'
    assert rendered.header("content-type") == "application/json"


def test_raw_response_keeps_bytes_headers_and_adds_the_length() -> None:
    r = Response.raw(200, b"[1]", [(b"content-type", b"application/json")])
    assert r.headers == [(b"content-type", b"application/json"), (b"content-length", b"3")]
    assert Response.raw(204, b"", []).headers == []


def test_server_timing_of_chosen_stages_in_their_order() -> None:
    stages = Stages()
    for name in ("route", "parse", "plan", "transaction", "response"):
        stages.mark(name)
    assert [p.split(";")[0] for p in stages.header(("plan", "transaction", "response")).split(", ")] == \
        ["plan", "transaction", "response"]
    assert [p.split(";")[0] for p in stages.header().split(", ")][:2] == ["route", "parse"]


def test_stage_histogram_renders_cumulative_buckets() -> None:
    metrics = Metrics(lambda: [])
    for seconds in (0.00005, 0.0003, 0.002, 100.0):
        metrics.observe_stage("rest", "plan", seconds)
    text = metrics.render().decode()
    assert 'madbase_http_stage_duration_seconds_bucket{le="0.0001",service="rest",stage="plan"} 1.0' in text
    assert 'madbase_http_stage_duration_seconds_bucket{le="0.0005",service="rest",stage="plan"} 2.0' in text
    assert 'madbase_http_stage_duration_seconds_bucket{le="5.0",service="rest",stage="plan"} 3.0' in text
    assert 'madbase_http_stage_duration_seconds_bucket{le="+Inf",service="rest",stage="plan"} 4.0' in text
    assert 'madbase_http_stage_duration_seconds_count{service="rest",stage="plan"} 4.0' in text


async def test_a_truncated_broadcast_body_is_never_broadcast() -> None:
    """The old body reader returned what it had when the client went away (a cut binary payload was
    broadcast); the kit's reader raises ClientGone before the handler sees any of it."""
    messages: list[Message] = [{"type": "http.request", "body": b"half of a", "more_body": True},
                               {"type": "http.disconnect"}]

    async def receive() -> Message:
        return messages.pop(0)

    class App:
        def hub_for(self, ctx: Any) -> Any:
            raise AssertionError("a truncated body reached the broadcast")

    scope = {"type": "http", "method": "POST", "path": "/realtime/v1/api/broadcast/room/events/e",
             "headers": [(b"content-type", b"application/octet-stream")], "query_string": b""}
    call = httpapi.Call(App(), scope, receive, SimpleNamespace(),  # type: ignore[arg-type]
                        params=("room", "e"), body_limit=httpapi.MAX_BODY, body_errors=httpapi.KIT.body_errors)
    with pytest.raises(ClientGone):
        await httpapi.broadcast_one(call)
