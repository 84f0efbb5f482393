"""By hand, never in CI: a verdict from a real OpenAI-compatible LLM server through `selfheal analyze`.

Each saved canary log in examples/logs/ is judged against the stable log by the real command (a subprocess,
as a user runs it), with the LLM at --base-url. The table shows what the model answered, what selfheal
decided (the statistical guards included), how long it took, and which output format the adapter settled
on (from the adapter's own warnings).

Start the llama.cpp server first (`bash ../shared/llm/serve.sh`: llama-cpp-python with Gemma 3 270M on
127.0.0.1:18080), then:

    python bench/bench_llm_server.py [--base-url URL] [--model NAME] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "examples" / "logs"
# What a careful reader of each saved log would conclude.
EXPECTED = {"canary-panic.log": "unhealthy", "canary-http-500.log": "unhealthy", "canary-random-colors.log": "healthy"}
ADAPTED = re.compile(r"asking for (\w+) output from now on")


def server_models(base_url: str) -> list[str]:
    with urllib.request.urlopen(f"{base_url.rstrip('/')}/models", timeout=5) as resp:
        return [m["id"] for m in json.load(resp)["data"]]


def policy_file(timeout: int, directory: Path) -> Path:
    """Timeouts for a small model on a busy CPU; everything else is the policy's defaults."""
    path = directory / "policy.yaml"
    path.write_text(
        "apiVersion: selfheal.dev/v1alpha1\n"
        "kind: SelfHealingPolicy\n"
        "metadata: {name: bench}\n"
        "spec:\n"
        "  analysis:\n"
        f"    llm: {{provider: openai, model: placeholder, timeoutSeconds: {timeout}, maxRetries: 1}}\n"
        "  decision: {onUnhealthy: abort, onHealthy: promote}\n"
    )
    return path


def analyze(canary: Path, policy: Path, base_url: str, model: str) -> tuple[dict, str, float]:
    command = [
        sys.executable,
        "-m",
        "selfheal.cli",
        "analyze",
        "--canary-log",
        str(canary),
        "--stable-log",
        str(LOGS / "stable.log"),
        "--policy",
        str(policy),
        "--llm-base-url",
        base_url,
        "--llm-model",
        model,
        "--json",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "OPENAI_API_KEY": "not-needed"}
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    elapsed = time.monotonic() - started
    try:
        return json.loads(done.stdout), done.stderr, elapsed
    except ValueError:
        sys.exit(f"selfheal analyze exited {done.returncode} without JSON:\n{done.stdout}\n{done.stderr}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:18080/v1")
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--timeout", type=int, default=180, help="per completion, seconds (default: %(default)s)")
    args = parser.parse_args()
    try:
        models = server_models(args.base_url)
    except OSError as e:
        print(f"no LLM server at {args.base_url} ({e}); start one with: bash ../shared/llm/serve.sh", file=sys.stderr)
        return 2
    print(f"server {args.base_url}, models {models}, asking {args.model!r}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        policy = policy_file(args.timeout, Path(tmp))
        for name, expected in EXPECTED.items():
            out, stderr, elapsed = analyze(LOGS / name, policy, args.base_url, args.model)
            llm = out.get("llm")
            rows.append(
                {
                    "log": name,
                    "expected": expected,
                    "llm": f"{llm['verdict']} ({llm['confidence']})" if llm else "no answer",
                    "llm_summary": (llm or {}).get("summary", ""),
                    "statistical": f"{out['statistical']['verdict']} ({out['statistical']['confidence']})",
                    "selfheal": f"{out['verdict']} ({out['confidence']}), analyzer {out['analyzer']}",
                    "action": out["action"],
                    "format": ", ".join(ADAPTED.findall(stderr)) or "json_schema",
                    "tokens": out["tokensUsed"],
                    "seconds": round(elapsed, 1),
                    "error": out.get("analyzerError") or "",
                }
            )
            print(json.dumps(rows[-1], indent=2), flush=True)
    print("\n| canary log | expected | LLM answered | statistics | selfheal decided | action | format | tokens | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['log']} | {r['expected']} | {r['llm']} | {r['statistical']} | {r['selfheal']} | {r['action']} "
            f"| {r['format']} | {r['tokens']} | {r['seconds']} |"
        )
    wrong_promotions = [r for r in rows if r["expected"] == "unhealthy" and r["action"] == "promote"]
    print(f"\nfailing canaries promoted: {len(wrong_promotions)}")
    return 1 if wrong_promotions else 0


if __name__ == "__main__":
    sys.exit(main())
