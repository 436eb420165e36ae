"""Tracing and correlation (core/tracing.py): W3C traceparent/tracestate and x-correlation-id continued or
generated, echoed, in the request's log lines, in PostgreSQL's application_name, and exported over OTLP/HTTP
to a local receiver (the topology's processes run with OTEL_EXPORTER_OTLP_ENDPOINT pointing at it)."""

from __future__ import annotations

import asyncio
import json
import os
import time

import asyncpg
import httpx

from madbase.core import tracing
from tests.deploy.conftest import OtlpReceiver, Topology


def test_traceparent_rules() -> None:
    tid, pid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    t = tracing.begin({b"traceparent": f"00-{tid}-{pid}-01".encode(), b"tracestate": b"vendor=x",
                       b"x-correlation-id": b"order-42"}, "req-1")
    assert (t.trace_id, t.parent_id, t.flags, t.tracestate, t.correlation_id) == (tid, pid, "01", "vendor=x",
                                                                                  "order-42")
    assert t.span_id != pid and len(t.span_id) == 16
    assert t.traceparent == f"00-{tid}-{t.span_id}-01"
    # a later version is read by its version-00 prefix
    assert tracing.begin({b"traceparent": f"01-{tid}-{pid}-00-extra".encode()}, "r").trace_id == tid
    for bad in (f"ff-{tid}-{pid}-01", f"00-{'0' * 32}-{pid}-01", f"00-{tid}-{'0' * 16}-01",
                f"00-{tid.upper()}-{pid}-01", f"00-{tid}-{pid}-01-extra", "garbage", "é"):
        fresh = tracing.begin({b"traceparent": bad.encode(), b"tracestate": b"a=b"}, "req-2")
        assert fresh.trace_id != tid and fresh.parent_id is None and fresh.tracestate is None, bad
        assert fresh.correlation_id == "req-2"  # no usable correlation id: the request id serves
    for bad_corr in (b"has space", b"x" * 200, b"\xff"):
        assert tracing.begin({b"x-correlation-id": bad_corr}, "req-3").correlation_id == "req-3"
    assert tracing.TRACE.get() is None and tracing.application_name() is None


async def test_trace_context_echoed_logged_in_postgres_and_exported(topology: Topology, otlp: OtlpReceiver) -> None:
    db = await asyncpg.connect(topology.db_url)
    try:
        await db.execute("create or replace function public.app_name() returns text language sql stable "
                         "as $$ select current_setting('application_name') $$")
        await db.execute("grant execute on function public.app_name() to anon")
        await db.execute("notify pgrst, 'reload schema'")
    finally:
        await db.close()
    await asyncio.sleep(0.5)
    tid, parent = os.urandom(16).hex(), os.urandom(8).hex()
    headers = {**topology.headers(), "traceparent": f"00-{tid}-{parent}-01", "tracestate": "acme=1",
               "x-correlation-id": "checkout-77"}
    async with httpx.AsyncClient(timeout=20) as http:
        for _ in range(20):  # the schema reload reaches both processes; until then the function is unknown
            r = await http.post(topology.url + "/rest/v1/rpc/app_name", json={}, headers=headers)
            if r.status_code == 200:
                break
            await asyncio.sleep(0.25)
    assert r.status_code == 200, r.text
    assert r.json() == f"madbase/{tid}"  # the request's transaction names the trace
    version, echoed_tid, span, flags = r.headers["traceparent"].split("-")
    assert (version, echoed_tid, flags) == ("00", tid, "01") and span != parent
    assert r.headers["tracestate"] == "acme=1" and r.headers["x-correlation-id"] == "checkout-77"
    request_id = r.headers["x-request-id"]
    # the access log line (and any other line of the request) carries the ids
    lines = [json.loads(line) for i in (1, 2) for line in topology.log(i).splitlines()
             if line.startswith("{") and request_id in line]
    assert lines and all(ln["trace_id"] == tid and ln["span_id"] == span and ln["correlation_id"] == "checkout-77"
                         for ln in lines)
    # exported: a server span with the caller's span as parent, in the caller's trace
    deadline = time.monotonic() + 10
    mine: list[dict[str, object]] = []
    while time.monotonic() < deadline and not mine:
        mine = [s for s in otlp.spans if s["traceId"] == tid]
        await asyncio.sleep(0.2)
    assert mine, "no span exported"
    exported = mine[0]
    assert exported["spanId"] == span and exported["parentSpanId"] == parent and exported["kind"] == 2
    assert exported["name"] == "POST /rest/v1" and exported["traceState"] == "acme=1"
    attrs = {a["key"]: a["value"] for a in exported["attributes"]}  # type: ignore[union-attr]
    assert attrs["http.response.status_code"] == {"intValue": "200"}
    assert attrs["madbase.correlation_id"] == {"stringValue": "checkout-77"}
    assert int(str(exported["endTimeUnixNano"])) >= int(str(exported["startTimeUnixNano"]))
    services = {a["value"]["stringValue"] for r in otlp.resources for a in r["attributes"]  # type: ignore[index]
                if a["key"] == "service.name"}  # type: ignore[index]
    assert services == {"madbase-deploy-test"}
