"""Benchmark: the worst 256 KiB log tails we can build, through the whole analysis (fold, redaction, diff,
verdict, prompt). Prints CPU seconds per input and how much slower than ordinary logs of the same size.

Run: python bench/bench_hostile.py [--kib 256] [--repeat 3] [--quadratic]
(--quadratic also times plain NFKC on the combining-mark input, the cost before the fix; it takes long.)
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from selfheal.domain.policy import AnalysisSpec
from selfheal.domain.redaction import Redactor, fold
from selfheal.services.judge import prepare
from selfheal.services.offline import evidence_from_logs

B64 = string.ascii_letters + string.digits + "+/"


def ordinary(n: int, rng: random.Random) -> str:
    lines = []
    while sum(len(x) + 1 for x in lines) < n:
        i = rng.randrange(10**6)
        lines.append(
            f'2025-10-09T14:00:{i % 60:02d}Z level=info msg="request served" path=/api/v1/items/{i} '
            f"status=200 took={i % 997}ms trace_id={rng.getrandbits(128):032x}"
        )
    return "\n".join(lines)[:n]


def repeat(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


def hostile(n: int, rng: random.Random) -> dict[str, str]:
    """Inputs aimed at each stage: normalisation, every rule's anchors, the backtracking shapes."""
    return {
        "combining marks on one letter": "a" + repeat("\u0301\u0316\u0327", n - 1),
        "combining marks, alternating bases": repeat("é" + "\u0301\u0316" * 15, n),
        "zero-width between every char": repeat("g\u200bh\u200bp\u200b_\u200b", n),
        "look-alikes next to ASCII": repeat("pаsswоrd=х ", n),
        "full-width key=value": repeat("ｐａｓｓｗｏｒｄ＝ｘ ", n),
        "ANSI around every key": repeat("\x1b[31mpassword\x1b[0m=v ", n),
        "key stems, no values": repeat("password=", n),
        "open quotes after keys": 'password="' + repeat("a", n - 10),
        "escaped quotes": repeat('token=\\\\\\"', n),
        "URL userinfo prefixes": "redis://u:" + repeat("p@", n - 10),
        "scheme separators": repeat("s://", n),
        "JWT prefixes": repeat("eyJ", n),
        "vendor prefixes": repeat("ghp_sk_live_AKIAxoxb-glpat-", n),
        "one base64 token": "".join(rng.choice(B64) for _ in range(n)),
        "base64 words": " ".join("".join(rng.choice(B64) for _ in range(24)) for _ in range(n // 25))[:n],
        "digit groups": repeat("4111 1111 1111 111", n),
        "at signs": repeat("a@", n),
        "private key headers": repeat("-----BEGIN RSA PRIVATE KEY-----", n),
        "orphan key ends": repeat("-----END RSA PRIVATE KEY-----", n),
        "nested JSON": repeat("[", n // 2) + repeat("]", n // 2),
        "command words": repeat("docker login -p ", n),
        "one line of a's": repeat("a", n),
    }


def timed(fn: Callable[[], object], repeat_: int) -> float:
    """Best CPU seconds of this process over ``repeat_`` runs (wall time on a shared machine measures
    the neighbours)."""
    best = float("inf")
    for _ in range(repeat_):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quadratic", action="store_true")
    args = parser.parse_args()
    n = args.kib * 1024
    rng = random.Random(5)
    spec = AnalysisSpec()
    stable = ordinary(n, rng)
    prepare(evidence_from_logs("warm", "é password=x", "y"), spec)  # build the detector tables once

    def analysis(canary: str) -> float:
        return timed(lambda: prepare(evidence_from_logs("bench", canary, stable), spec), args.repeat)

    base = analysis(ordinary(n, rng))
    print(f"{args.kib} KiB canary tail against {args.kib} KiB of ordinary stable logs, best of {args.repeat}")
    print(f"{'input':38} {'analysis':>9} {'vs ordinary':>11} {'redaction':>10}")
    print(f"{'ordinary log lines':38} {base:8.3f}s {1.0:10.1f}x {timed(lambda: Redactor().redact(stable), 1):9.3f}s")
    worst = ("", 0.0)
    for name, text in hostile(n, rng).items():
        seconds = analysis(text)
        redaction = timed(lambda text=text: Redactor().redact(text), 1)
        worst = max(worst, (name, seconds), key=lambda w: w[1])
        print(f"{name:38} {seconds:8.3f}s {seconds / base:10.1f}x {redaction:9.3f}s")
    print(f"worst: {worst[0]} at {worst[1]:.3f}s ({'under' if worst[1] < 1 else 'OVER'} 1 s)")
    marks = "a" + repeat("\u0301\u0316\u0327", n - 1)
    print(f"fold of the combining-mark input: {timed(lambda: fold(marks), args.repeat):.4f}s")
    if args.quadratic:
        print(f"plain NFKC of the same input (before): {timed(lambda: unicodedata.normalize('NFKC', marks), 1):.1f}s")


if __name__ == "__main__":
    main()
