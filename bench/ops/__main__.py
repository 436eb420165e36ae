"""What the operations routes cost the request path and the control plane, in-process (no server):

- `requestlog.add` (once per project request, in the gateway) against `Metrics.observe` (the per-request
  metrics observation every request already pays) — the reference, measured in the same run;
- a logs listing over full rings (500 entries) with and without filters;
- splitting SQL scripts of 1 MB (the editor's limit) of everyday shapes, against `str.split(";")` of the
  first one (the reference: what no splitter can beat).

    ./dev bench ops [--n 200000] [--rounds 3]

Prints one Markdown table (medians of --rounds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from madbase.admin.sqlsplit import split
from madbase.core import requestlog
from madbase.core.metrics import Metrics


def _per_call(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="./dev bench ops")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    metrics = Metrics(lambda: {})
    log = requestlog.RequestLog()
    refs = [f"project{i:013d}" for i in range(100)]
    rows: dict[str, list[float]] = {}

    def add() -> None:
        log.add(refs[0], "mb-000000000001", "GET", "rest", "/rest/v1/items", 200, 0.0012, "127.0.0.1")

    def observe() -> None:
        metrics.observe("rest", 200, refs[0], 0.0012)

    for ref in refs:
        for i in range(requestlog.PER_PROJECT):
            log.add(ref, f"mb-{i:012x}", "GET", "rest" if i % 3 else "auth", f"/rest/v1/t{i % 50}", 200 + (i % 5),
                    0.001, "127.0.0.1")
    scripts = {
        "1 MB of short statements": "select 1; " * 100_000,
        "1 MB of inserts with strings": "insert into t values (1, 'a;b', $$c$$); -- note\n" * 20_000,
        "1 MB function bodies": "create function f() returns int language plpgsql as $f$ begin return 1; end $f$;\n"
                                * 12_000,
    }
    for _ in range(args.rounds):
        rows.setdefault("metrics.observe (reference), µs/request", []).append(_per_call(observe, args.n // 4))
        rows.setdefault("requestlog.add, µs/request", []).append(_per_call(add, args.n))
        rows.setdefault("logs listing, 100 newest of 500, µs", []).append(
            _per_call(lambda: log.query(refs[1], requestlog.Query()), 200))
        rows.setdefault("logs listing, status=5xx&service=rest, µs", []).append(
            _per_call(lambda: log.query(refs[1], requestlog.Query(status="5xx", service="rest")), 200))
        first = next(iter(scripts.values()))
        rows.setdefault("str.split(';') of the first script (reference), ms", []).append(
            _per_call(lambda f=first: f.split(";"), 5) / 1000)
        for name, script in scripts.items():
            rows.setdefault(f"split {name}, ms", []).append(_per_call(lambda s=script: split(s), 2) / 1000)
    print("| measure | median |")
    print("|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values):.2f} |")
    ref = statistics.median(rows["metrics.observe (reference), µs/request"])
    add_cost = statistics.median(rows["requestlog.add, µs/request"])
    print(f"\nrequestlog.add / metrics.observe = {add_cost / ref:.2f}")
    plain = statistics.median(rows["str.split(';') of the first script (reference), ms"])
    ours = statistics.median(rows[f"split {next(iter(scripts))}, ms"])
    print(f"split / str.split on 1 MB of short statements = {ours / plain:.0f}")


if __name__ == "__main__":
    main()
