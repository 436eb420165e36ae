"""Shared benchmark plumbing: throwaway PostgreSQL, server processes, wrk runs, CPU and RSS sampling."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ANCHORS = Path(__file__).resolve().parents[1].parent / "shared" / "perf-anchors"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    server_cpu_s: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / max(1.0, self.rps) * 1e6


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def process_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk(url: str, *, headers: dict[str, str] | None = None, conns: int = 64, duration: int = 10,
        threads: int = 2, pids: list[int] | None = None, script: str | None = None) -> WrkResult:
    args = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency"]
    for key, value in (headers or {}).items():
        args += ["-H", f"{key}: {value}"]
    if script:
        args += ["-s", script]
    subprocess.run([*args[:3], "-d2s", *args[4:], url], capture_output=True, timeout=60)  # warm-up
    cpu_before = process_cpu_seconds(pids or [])
    started = time.time()
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=duration + 60).stdout
    elapsed = time.time() - started
    cpu = (process_cpu_seconds(pids or []) - cpu_before) / elapsed
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return WrkResult(rps, p50, p99, int(bad.group(1)) if bad else 0, cpu)


def median_result(results: list[WrkResult]) -> WrkResult:
    ordered = sorted(results, key=lambda r: r.rps)
    mid = ordered[len(ordered) // 2]
    return WrkResult(statistics.median(r.rps for r in results), mid.p50_ms, mid.p99_ms,
                     sum(r.non_2xx for r in results), statistics.median(r.server_cpu_s for r in results))


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def start_anchor_app(app: str, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The bare reference app of shared/perf-anchors under uvicorn, flags as in its RESULTS.md."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"app_asgi:{app}", "--app-dir", str(ANCHORS), "--host", "127.0.0.1",
         "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/")
    return proc


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, sep, *body])
