"""Benchmark: `selfheal analyze` on two 100,000-line logs against drain3's TemplateMiner on the same lines.

Run: pip install -e '.[bench]'; python bench/bench_speed.py [--lines N] [--runs R]
Both run in this process, one after the other, best of R runs each; the ratio is what counts (the
machine may be shared). Time is the process's CPU time (`time.process_time`), which other work on a
shared machine disturbs less than the clock; the clock's best is printed too. Both use one core: the
analyze run's work happens on one worker thread while the event loop waits. The analyze run is the
whole command: reading the files, redaction, event splitting, masking, mining, field comparison, the
verdict, the prompt it would send and the output.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_prompt import make_logs  # noqa: E402
from drain3 import TemplateMiner  # noqa: E402
from drain3.template_miner_config import TemplateMinerConfig  # noqa: E402

from selfheal.cli import build_parser  # noqa: E402
from selfheal.domain.logs import clear_caches  # noqa: E402
from selfheal.domain.redaction import Redactor  # noqa: E402
from selfheal.services.offline import run_analyze_command  # noqa: E402


class Timer:
    """CPU and clock seconds of a block."""

    def __enter__(self) -> Timer:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.process_time() - self._cpu
        self.wall = time.perf_counter() - self._wall


def drain3_seconds(lines: list[str]) -> Timer:
    miner = TemplateMiner(config=TemplateMinerConfig())
    with Timer() as timer:
        for line in lines:
            miner.add_log_message(line)
    return timer


def analyze_seconds(canary: Path, stable: Path) -> tuple[Timer, int]:
    clear_caches()
    args = build_parser().parse_args(["analyze", "--canary-log", str(canary), "--stable-log", str(stable), "--json"])
    out = io.StringIO()
    with Timer() as timer:
        code = run_analyze_command(args, out)
    return timer, code


def redaction_seconds(texts: list[str]) -> Timer:
    redactor = Redactor()
    with Timer() as timer:
        for text in texts:
            redactor.redact(text)
    return timer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    canary_text, stable_text = make_logs(args.lines, args.seed)
    lines = canary_text.split("\n") + stable_text.split("\n")
    with tempfile.TemporaryDirectory() as tmp:
        canary, stable = Path(tmp) / "canary.log", Path(tmp) / "stable.log"
        canary.write_text(canary_text)
        stable.write_text(stable_text)
        drain, analyze, redact = [], [], []
        code = -1
        for _ in range(args.runs):
            drain.append(drain3_seconds(lines))
            seconds, code = analyze_seconds(canary, stable)
            analyze.append(seconds)
            redact.append(redaction_seconds([canary_text, stable_text]))
    d, a, r = (min(t.cpu for t in runs) for runs in (drain, analyze, redact))
    dw, aw = (min(t.wall for t in runs) for runs in (drain, analyze))
    n = len(lines)
    print(f"lines                      {n:,} ({args.lines:,} per side, {len(canary_text) + len(stable_text):,} chars)")
    print(f"drain3 add_log_message     best {d:.2f} s CPU of {args.runs} ({n / d:,.0f} lines/s); clock {dw:.2f} s")
    print(f"selfheal analyze --json    best {a:.2f} s CPU of {args.runs} ({n / a:,.0f} lines/s); clock {aw:.2f} s")
    print(f"  exit code                {code}")
    print(f"  of which redaction       best {r:.2f} s CPU ({100 * r / a:.0f} % of analyze)")
    print(f"ratio analyze / drain3     {d / a:.2f}x the lines per second, CPU (goal: 2x); clock {dw / aw:.2f}x")
    print(f"ratio without redaction    {d / max(a - r, 1e-9):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
