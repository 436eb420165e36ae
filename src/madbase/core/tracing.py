"""Request tracing: W3C trace context and correlation ids on every request, in every log line, in PostgreSQL,
and exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

Per request the gateway calls `begin`: a valid incoming `traceparent` is continued (its trace id kept, its
span id becoming our parent), otherwise a new trace starts; `tracestate` is passed on untouched; a valid
`x-correlation-id` is kept, otherwise the request id serves as one. The response echoes `traceparent` (with
this request's span id), `tracestate` and `x-correlation-id`; the log context gets `trace_id`, `span_id` and
`correlation_id`; request transactions set `application_name` to `madbase/<trace id>` (core/db.py), so
PostgreSQL's slow-query log (`%a` in log_line_prefix) and pg_stat_activity name the trace.

Export speaks OTLP/HTTP with the JSON encoding (part of the OTLP specification) directly, so no
OpenTelemetry package is needed: finished spans are batched and posted to `<endpoint>/v1/traces` once a
second (or every 512 spans) by a background task; a receiver that is down costs dropped spans, never a
request. `OTEL_SERVICE_NAME` names the service (default `madbase`); `OTEL_EXPORTER_OTLP_HEADERS`
(`k=v,k2=v2`) adds headers, e.g. for authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass

import httpx
import structlog

log = structlog.get_logger("madbase.tracing")

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_CORRELATION = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(slots=True)
class TraceContext:
    trace_id: str
    span_id: str
    parent_id: str | None
    flags: str
    tracestate: str | None
    correlation_id: str
    start_ns: int

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        out = [(b"traceparent", self.traceparent.encode()), (b"x-correlation-id", self.correlation_id.encode())]
        if self.tracestate:
            out.append((b"tracestate", self.tracestate.encode()))
        return out

    def log_fields(self) -> dict[str, str]:
        return {"trace_id": self.trace_id, "span_id": self.span_id, "correlation_id": self.correlation_id}


#: the current request's trace (None outside requests); read by core/db.py for application_name
TRACE: ContextVar[TraceContext | None] = ContextVar("madbase_trace", default=None)


def _parse_traceparent(value: bytes | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid header, else None (the W3C rules: lower-case hex, version
    ff invalid, all-zero ids invalid; a higher version is read by its version-00 prefix)."""
    if not value or len(value) > 512:
        return None
    try:
        text = value.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    match = _TRACEPARENT.match(text)
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, flags


def _tracestate(value: bytes | None) -> str | None:
    if not value or len(value) > 512:
        return None
    try:
        text = value.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    return text if text and all(32 <= ord(c) < 127 for c in text) else None


def begin(headers: dict[bytes, bytes], request_id: str) -> TraceContext:
    parsed = _parse_traceparent(headers.get(b"traceparent"))
    correlation = headers.get(b"x-correlation-id")
    try:
        corr_text = correlation.decode("ascii") if correlation else ""
    except UnicodeDecodeError:
        corr_text = ""
    if parsed is None:
        trace_id, parent_id, flags, state = os.urandom(16).hex(), None, "01", None
    else:
        trace_id, parent_id, flags = parsed
        state = _tracestate(headers.get(b"tracestate"))
    return TraceContext(trace_id=trace_id, span_id=os.urandom(8).hex(), parent_id=parent_id, flags=flags,
                        tracestate=state, correlation_id=corr_text if _CORRELATION.match(corr_text) else request_id,
                        start_ns=time.time_ns())


def application_name() -> str | None:
    """`madbase/<trace id>` for the current request's transactions (63 bytes at most, as PostgreSQL keeps)."""
    trace = TRACE.get()
    return None if trace is None else "madbase/" + trace.trace_id


class OtlpExporter:
    """Batches finished request spans and posts them as OTLP/HTTP JSON."""

    MAX_BATCH = 512
    MAX_QUEUE = 10_000

    def __init__(self, endpoint: str, service_name: str = "madbase", headers: dict[str, str] | None = None) -> None:
        base = endpoint.rstrip("/")
        self.url = base if base.endswith("/v1/traces") else base + "/v1/traces"
        self.service_name = service_name
        self.headers = {"content-type": "application/json", **(headers or {})}
        self._spans: list[dict[str, object]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> OtlpExporter | None:
        env = dict(os.environ if environ is None else environ)
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not endpoint or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return None
        headers = {}
        for item in (env.get("OTEL_EXPORTER_OTLP_HEADERS") or "").split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip():
                headers[key.strip()] = value.strip()
        return cls(endpoint, env.get("OTEL_SERVICE_NAME") or "madbase", headers)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="otlp-export")

    def finish(self, trace: TraceContext, name: str, status: int, attributes: dict[str, str | int]) -> None:
        if len(self._spans) >= self.MAX_QUEUE:
            self.dropped += 1
            return
        attrs = [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
                 for k, v in attributes.items()]
        span: dict[str, object] = {
            "traceId": trace.trace_id, "spanId": trace.span_id, "name": name, "kind": 2,  # SPAN_KIND_SERVER
            "startTimeUnixNano": str(trace.start_ns), "endTimeUnixNano": str(time.time_ns()),
            "attributes": attrs, "status": {"code": 2 if status >= 500 else 0},
        }
        if trace.parent_id:
            span["parentSpanId"] = trace.parent_id
        if trace.tracestate:
            span["traceState"] = trace.tracestate
        self._spans.append(span)
        if len(self._spans) >= self.MAX_BATCH:
            self._wake.set()

    def _payload(self, spans: list[dict[str, object]]) -> dict[str, object]:
        return {"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": self.service_name}},
                                        {"key": "process.pid", "value": {"intValue": str(os.getpid())}}]},
            "scopeSpans": [{"scope": {"name": "madbase"}, "spans": spans}],
        }]}

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                self._wake.clear()
                await self.flush(client)

    async def flush(self, client: httpx.AsyncClient) -> None:
        while self._spans:
            batch, self._spans = self._spans[: self.MAX_BATCH], self._spans[self.MAX_BATCH:]
            try:
                response = await client.post(self.url, json=self._payload(batch), headers=self.headers)
                if response.status_code >= 300:
                    raise httpx.HTTPError(f"status {response.status_code}")
            except (httpx.HTTPError, OSError) as exc:
                self.dropped += len(batch)
                log.warning("otlp_export_failed", url=self.url, spans=len(batch), error=str(exc))
                return

    async def close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        with contextlib.suppress(Exception):
            async with httpx.AsyncClient(timeout=3) as client:
                await self.flush(client)
