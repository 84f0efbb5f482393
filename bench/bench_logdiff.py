"""Benchmark of diff_logs on two 100,000-line logs: throughput, peak memory, and ranking of new errors.

Run: python bench/bench_logdiff.py [--lines N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from selfheal.domain.logdiff import diff_logs
from selfheal.domain.logs import clear_caches

COLORS = ("red", "orange", "yellow", "green", "blue", "purple")
PATHS = ("/color", "/healthz", "/api/v1/items", "/api/v1/users", "/static/app.js")

GO_PANIC = (
    "{ts} http: panic serving {ip}:{port}: runtime error: invalid memory address or nil pointer dereference\n"
    "goroutine {g} [running]:\n"
    "net/http.(*conn).serve.func1()\n"
    "\t/usr/local/go/src/net/http/server.go:1868 +0xb0\n"
    "panic({{0x6c2b60?, 0x9a3f10?}})\n"
    "\t/usr/local/go/src/runtime/panic.go:920 +0x270\n"
    "main.(*store).lookup(0x0, {{0xc0001a2000, 0x8}})\n"
    "\t/go/src/app/store.go:57 +0x1c\n"
    "main.itemsHandler({{0x7a1b40, 0xc0000a2000}}, 0xc0000b4000)\n"
    "\t/go/src/app/main.go:141 +0x3c5\n"
    "net/http.HandlerFunc.ServeHTTP(0x0?, {{0x7a1b40?, 0xc0000a2000?}}, 0x0?)\n"
    "\t/usr/local/go/src/net/http/server.go:2136 +0x29\n"
    "created by net/http.(*Server).Serve in goroutine 1\n"
    "\t/usr/local/go/src/net/http/server.go:3086 +0x4cc"
)

# The error templates only the canary logs, each with a word that identifies it in the diff.
NEW_ERRORS = {
    "nil pointer dereference": 0.0008,
    "failed to decode payload": 0.0015,
    "connection refused": 0.0006,
    "gateway returned": 0.0010,
}


def _ts(i: int) -> str:
    s = 50_000 + i // 20
    return f"2025/10/09 {s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _ip(rnd: random.Random) -> str:
    return f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"


def _noise(rnd: random.Random, i: int, color: str | None) -> str:
    ts = _ts(i)
    r = rnd.random()
    if r < 0.45:
        return f"{ts} 200 - {color or rnd.choice(COLORS)}"
    if r < 0.80:
        return (
            f'{ts} level=info msg="request served" method=GET path={rnd.choice(PATHS)} status=200 '
            f"bytes={rnd.randint(100, 90000)} duration={rnd.uniform(0.1, 80):.3f}ms "
            f"request_id={uuid.UUID(int=rnd.getrandbits(128))} remote={_ip(rnd)}:{rnd.randint(1024, 65535)}"
        )
    if r < 0.90:
        return f'{ts} level=debug msg="cache hit" key=item:{rnd.randint(1, 10**6)} shard={rnd.randint(0, 15)}'
    if r < 0.95:
        return f'{ts} level=info msg="worker heartbeat" worker={rnd.randint(1, 32)} queue_depth={rnd.randint(0, 500)} trace={rnd.getrandbits(64):016x}'
    if r < 0.98:
        return f'{ts} level=warn msg="slow upstream" upstream={_ip(rnd)}:8080 latency={rnd.randint(200, 3000)}ms'
    if r < 0.995:
        # A pre-existing error, logged at the same rate by both versions.
        return f'{ts} level=error msg="cache backend timeout" key=item:{rnd.randint(1, 10**6)} after=500ms'
    return f'{ts} level=info msg="config reloaded" version={rnd.randint(1, 900)} checksum={rnd.getrandbits(160):040x}'


def _new_error(rnd: random.Random, i: int, which: str) -> str:
    ts = _ts(i)
    if which == "nil pointer dereference":
        return GO_PANIC.format(ts=ts, ip=_ip(rnd), port=rnd.randint(30000, 60000), g=rnd.randint(10, 9999))
    if which == "failed to decode payload":
        return (
            f'{ts} level=error msg="failed to decode payload" err="unexpected EOF" '
            f"request_id={uuid.UUID(int=rnd.getrandbits(128))} size={rnd.randint(1, 4096)}"
        )
    if which == "connection refused":
        return f'{ts} level=error msg="dial tcp {_ip(rnd)}:5432: connect: connection refused" retry={rnd.randint(1, 5)}'
    return f"{ts} ERROR payment gateway returned 502 for order ord_{rnd.getrandbits(48):x} after {rnd.randint(1, 30)}s"


def make_logs(lines: int, seed: int) -> tuple[str, str]:
    rnd = random.Random(seed)
    stable = "\n".join(_noise(rnd, i, "blue") for i in range(lines))
    canary_lines: list[str] = []
    for i in range(lines):
        r = rnd.random()
        acc = 0.0
        for which, rate in NEW_ERRORS.items():
            acc += rate
            if r < acc:
                canary_lines.append(_new_error(rnd, i, which))
                break
        else:
            canary_lines.append(_noise(rnd, i, None))
    return "\n".join(canary_lines), stable


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    canary, stable = make_logs(args.lines, args.seed)
    n_canary = canary.count("\n") + 1
    n_stable = stable.count("\n") + 1
    total = n_canary + n_stable
    print(
        f"input: canary {n_canary} lines ({len(canary) / 1e6:.1f} MB), stable {n_stable} lines ({len(stable) / 1e6:.1f} MB)"
    )

    timings = []
    diff = None
    for _ in range(3):
        clear_caches()  # every run starts cold, as one analysis in the operator does
        t0 = time.perf_counter()
        diff = diff_logs(canary, stable)
        timings.append(time.perf_counter() - t0)
    assert diff is not None
    best = min(timings)
    print(
        f"diff_logs: best {best:.3f} s of {len(timings)} runs ({', '.join(f'{t:.3f}' for t in timings)}); "
        f"{total / best:,.0f} lines/s over both sides"
    )

    clear_caches()
    tracemalloc.start()
    diff_logs(canary, stable)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak memory inside diff_logs (tracemalloc): {peak / 1e6:.1f} MB")

    significant = diff.significant()
    print(
        f"events: canary {diff.canary_events}, stable {diff.stable_events}; templates: {len(diff.templates)}; "
        f"significant: {len(significant)}"
    )
    for t in significant:
        print(
            f"  {t.id:>4} {t.status:<9} {t.severity:<7} crash={t.crash_signature!s:<5} "
            f"canary={t.canary_count:<5} stable={t.stable_count:<5} p={t.p_value:.2e}  "
            f"{t.template.splitlines()[0][:90]}"
        )
    ok = True
    sig_text = [t.template for t in significant]
    for marker in NEW_ERRORS:
        rank = next((i for i, text in enumerate(sig_text, start=1) if marker in text), None)
        ok &= rank is not None
        print(f"new error {marker!r}: {'rank ' + str(rank) + ' among significant' if rank else 'NOT FOUND'}")
    benign = [t for t in significant if t.severity != "info" and not any(m in t.template for m in NEW_ERRORS)]
    print(f"every new error template ranked among the significant ones: {ok}")
    print(f"non-info significant templates that are not planted errors: {len(benign)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
