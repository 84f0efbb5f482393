"""Benchmark: accuracy of the statistical verdict on the labelled corpus, and on fresh samples of it.

Run: python bench/bench_corpus.py [--fresh-seeds 2000,3000]
A false promote is a bad canary judged healthy; the goal is none.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT / "tests" / "corpus"))

from generate import generate  # noqa: E402

from selfheal.domain.policy import AnalysisSpec  # noqa: E402
from selfheal.services.judge import prepare  # noqa: E402
from selfheal.services.offline import evidence_from_logs  # noqa: E402


def run(cases: Path) -> dict[str, object]:
    confusion: Counter[tuple[str, str]] = Counter()
    wrong: list[str] = []
    lines = 0
    start = time.perf_counter()
    for case in sorted(p for p in cases.iterdir() if p.is_dir()):
        expected = json.loads((case / "expected.json").read_text())["verdict"]
        canary, stable = (case / "canary.log").read_text(), (case / "stable.log").read_text()
        lines += canary.count("\n") + stable.count("\n")
        _, _, verdict, _ = prepare(evidence_from_logs(case.name, canary, stable), AnalysisSpec())
        got = verdict.verdict.value
        confusion[(expected, got)] += 1
        if got != expected:
            wrong.append(f"{case.name}: expected {expected}, got {got} ({verdict.summary[:160]})")
    elapsed = time.perf_counter() - start
    total = sum(confusion.values())
    return {
        "cases": total,
        "correct": sum(n for (e, g), n in confusion.items() if e == g),
        "false_promotes": confusion[("unhealthy", "healthy")],
        "false_unhealthy": confusion[("healthy", "unhealthy")],
        "bad_inconclusive": confusion[("unhealthy", "inconclusive")],
        "good_inconclusive": confusion[("healthy", "inconclusive")],
        "bad": sum(n for (e, _), n in confusion.items() if e == "unhealthy"),
        "good": sum(n for (e, _), n in confusion.items() if e == "healthy"),
        "seconds": elapsed,
        "lines": lines,
        "wrong": wrong,
    }


def report(title: str, r: dict[str, object]) -> None:
    cases, correct = int(r["cases"]), int(r["correct"])  # type: ignore[call-overload]
    print(f"{title}: {cases} cases ({r['bad']} bad, {r['good']} good), {r['lines']:,} log lines, {r['seconds']:.1f} s")
    print(f"  accuracy           {correct}/{cases} ({100 * correct / cases:.1f} %)")
    print(f"  false promotes     {r['false_promotes']} (bad canary judged healthy)")
    print(f"  false unhealthy    {r['false_unhealthy']} (good canary judged unhealthy)")
    print(f"  inconclusive       {r['bad_inconclusive']} bad, {r['good_inconclusive']} good")
    for line in r["wrong"]:  # type: ignore[attr-defined]
        print(f"  - {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh-seeds", default="2000,3000,4000", help="comma-separated seeds of fresh samples")
    args = parser.parse_args()
    results = [run(ROOT / "tests" / "corpus" / "cases")]
    report("committed corpus", results[0])
    for seed in [int(s) for s in args.fresh_seeds.split(",") if s]:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp), seed)
            results.append(run(Path(tmp)))
        report(f"fresh sample, seed {seed}", results[-1])
    false_promotes = sum(int(r["false_promotes"]) for r in results)  # type: ignore[call-overload]
    print(f"RESULT {'OK' if false_promotes == 0 else 'FAIL'}: {false_promotes} false promotes in all runs")
    return 0 if false_promotes == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
