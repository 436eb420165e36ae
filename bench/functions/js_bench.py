"""JS functions benchmark: Supabase's quick-start hello-world on JsRunner (QuickJS in Wasmtime, in process)
against `deno` (PyPI's binary) serving the same function over HTTP, in the same run. Prints one Markdown table.

    .venv/bin/python -m bench.functions.js_bench [--requests 2000] [--threads 2]

JsRunner is measured at its interface (`invoke`, no HTTP: the service adds its own ASGI overhead, measured by
bench/functions); deno through a keep-alive HTTP client, the way it serves. The "HTTP client alone" row is the
client's own cost against deno's trivial route, so deno's function time ≈ its row minus that one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from tests.support.servers import free_port

from madbase.functions.abi import FunctionRequest
from madbase.functions.js.bundle import bundle, deno_binary
from madbase.functions.js.runner import JsRunner
from madbase.functions.runner import Limits

HELLO = """import "jsr:@supabase/functions-js/edge-runtime.d.ts"

console.log("Hello from Functions!")

Deno.serve(async (req) => {
  const { name } = await req.json()
  const data = {
    message: `Hello ${name}!`,
  }

  return new Response(
    JSON.stringify(data),
    { headers: { "Content-Type": "application/json" } },
  )
})
"""
BODY = json.dumps({"name": "bench"}).encode()


def measure(call: Callable[[], None], requests: int, threads: int, cpu: Callable[[], float]) -> dict[str, float]:
    """Sequential latencies, the serving side's CPU per call (robust on a busy machine), then throughput."""
    for _ in range(min(100, requests)):  # warm-up
        call()
    lat: list[float] = []
    cpu0 = cpu()
    for _ in range(requests):
        t = time.perf_counter()
        call()
        lat.append(time.perf_counter() - t)
    cpu_ms = (cpu() - cpu0) / requests * 1000
    lat.sort()
    done = [0]
    lock = threading.Lock()

    def worker(n: int) -> None:
        for _ in range(n):
            call()
        with lock:
            done[0] += n

    pool = [threading.Thread(target=worker, args=(requests // threads,)) for _ in range(threads)]
    t0 = time.perf_counter()
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - t0
    return {"p50": statistics.median(lat) * 1000, "p99": lat[int(len(lat) * 0.99) - 1] * 1000,
            "rate": done[0] / elapsed, "cpu": cpu_ms}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    load = os.getloadavg()
    code = bundle({"hello-world/index.ts": HELLO.encode()}, "hello-world/index.ts", None)
    runner = JsRunner()
    t = time.perf_counter()
    prepared = runner.prepare(code)
    prepare_ms = (time.perf_counter() - t) * 1000
    req = FunctionRequest("POST", "/hello-world", "", (("host", "localhost"), ("content-type", "application/json")),
                          BODY)
    t = time.perf_counter()
    first = runner.invoke(prepared, req, {}, Limits(), None)
    cold_ms = (time.perf_counter() - t) * 1000
    assert first.status == 200, first.logs

    def js_call() -> None:
        r = runner.invoke(prepared, req, {}, Limits(), None)
        assert r.status == 200

    rows = [("JsRunner.invoke (QuickJS + Wasmtime, snapshot)",
             measure(js_call, args.requests, args.threads, time.process_time), first.fuel_used)]

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        src = Path(tmp) / "main.js"
        src.write_bytes(code.replace(b"Deno.serve(", f"Deno.serve({{ port: {port}, onListen() {{}} }}, ".encode(), 1))
        echo = Path(tmp) / "echo.js"
        echo_port = free_port()
        echo.write_text(f"Deno.serve({{ port: {echo_port}, onListen() {{}} }}, () => new Response('ok'))\n")
        env = {**os.environ, "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1"}
        procs = [subprocess.Popen([deno_binary(), "run", "--allow-net", "--allow-env", str(p)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in (src, echo)]
        try:
            with httpx.Client(timeout=10) as client:
                for p in (port, echo_port):
                    deadline = time.time() + 30
                    while True:
                        try:
                            client.post(f"http://127.0.0.1:{p}/", content=BODY)
                            break
                        except httpx.TransportError:
                            if time.time() > deadline:
                                raise
                            time.sleep(0.1)
                local = threading.local()

                def http_call(p: int) -> Callable[[], None]:
                    def call() -> None:
                        c = getattr(local, "client", None)
                        if c is None:
                            c = local.client = httpx.Client(timeout=10)
                        r = c.post(f"http://127.0.0.1:{p}/hello-world", content=BODY,
                                   headers={"content-type": "application/json"})
                        assert r.status_code == 200

                    return call

                def deno_cpu(proc: subprocess.Popen[bytes]) -> Callable[[], float]:
                    def cpu() -> float:
                        times = psutil.Process(proc.pid).cpu_times()
                        return float(times.user + times.system)

                    return cpu

                rows.append(("deno 2.x serving the same bundle (HTTP, keep-alive)",
                             measure(http_call(port), args.requests, args.threads, deno_cpu(procs[0])), 0))
                rows.append(("HTTP client alone (deno, trivial route)",
                             measure(http_call(echo_port), args.requests, args.threads, deno_cpu(procs[1])), 0))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)

    print(f"\nJS hello-world, {args.requests} sequential requests (p50/p99) then {args.threads} threads (inv/s); "
          f"prepare {prepare_ms:.1f} ms, first invoke incl. boot + snapshot {cold_ms:.1f} ms\n")
    print(f"load average before: {load[0]:.1f}, after: {os.getloadavg()[0]:.1f} (2 cores)\n")
    print("| target | warm p50 ms | warm p99 ms | inv/s | serving CPU ms/inv | fuel/inv |")
    print("|---|---|---|---|---|---|")
    for name, m, fuel in rows:
        print(f"| {name} | {m['p50']:.2f} | {m['p99']:.2f} | {m['rate']:.0f} | {m['cpu']:.3f} | {fuel or '-'} |")
    js, deno = rows[0][1], rows[1][1]
    print(f"\nratio JsRunner / deno: p50 {js['p50'] / deno['p50']:.2f}x, inv/s {js['rate'] / deno['rate']:.2f}x, "
          f"CPU per invocation {js['cpu'] / deno['cpu']:.2f}x (JsRunner's includes its Python caller)")


if __name__ == "__main__":
    main()
