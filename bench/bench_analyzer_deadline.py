"""How long an analyzer call takes against a misbehaving endpoint, with and without the one deadline.

Each case runs the real clients (openai SDK, httpx) against the loopback stand-ins and prints the time
to an answer or to "analyzer unavailable", next to the configured timeout. "without" calls the same
client with the deadline taken away, to show what each case costs when only per-request timeouts apply
(capped at --cap seconds).

Run: python bench/bench_analyzer_deadline.py [--timeout 3] [--cap 60]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from selfheal.adapters.a2a import A2AClient
from selfheal.adapters.llm import LLMClient
from selfheal.domain.prompt import PromptBundle
from selfheal.errors import AnalyzerUnavailable
from selfheal.testing.a2a_server import A2AAgentStandIn
from selfheal.testing.llm_server import OpenAIStandIn

BUNDLE = PromptBundle(
    messages=[
        {"role": "system", "content": "You judge canaries. Respond with JSON."},
        {"role": "user", "content": "<<<EVIDENCE b>>>\n{}\n<<<END EVIDENCE b>>>"},
    ],
    estimated_tokens=40,
)


def drip(seconds_per_byte: float) -> Callable[[Any], None]:
    return lambda server: server.drip(seconds_per_byte)


def slow_and_malformed(seconds: float) -> Callable[[Any], None]:
    def script(server: Any) -> None:
        server.slow(seconds)
        server.malformed(kind="not_json")

    return script


def retry_after(seconds: float) -> Callable[[Any], None]:
    return lambda server: server.http_error(503, retry_after=seconds)


async def timed(call: Callable[[], Any], cap: float) -> tuple[float, str]:
    started = time.monotonic()
    try:
        result = await asyncio.wait_for(call(), timeout=cap)
        outcome = f"verdict {result.verdict.verdict}"
    except AnalyzerUnavailable:
        outcome = "analyzer unavailable"
    except TimeoutError:
        outcome = f"still waiting at the {cap:g} s cap"
    return time.monotonic() - started, outcome


async def run_case(kind: str, script: Callable[[Any], None], seconds: float, cap: float) -> tuple[str, str]:
    """One endpoint behaviour against a client with ``seconds`` as its timeout, with and without the deadline."""
    server_type = OpenAIStandIn if kind == "llm" else A2AAgentStandIn
    rows = []
    for deadline in (True, False):
        with server_type() as server:
            client: Any
            if kind == "llm":
                client = LLMClient(server.base_url, "key", "m", timeout=seconds, max_retries=5)
            else:
                client = A2AClient(server.base_url, timeout=seconds, max_retries=5)
                await client.agent_card()
            script(server)
            call = client.judge if deadline else client._judge
            try:
                elapsed, outcome = await timed(lambda c=call: c(BUNDLE), cap)
            finally:
                await client.aclose()
        rows.append(f"{elapsed:.1f} s ({outcome}, {elapsed / seconds:.1f}x the timeout)")
    return rows[0], rows[1]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--cap", type=float, default=60.0)
    args = parser.parse_args()
    cases = [
        ("llm", "answer dripped 1 byte/s", drip(1.0)),
        ("llm", "answer dripped 1 byte/20 ms", drip(0.02)),
        ("llm", "3 slow (0.8 timeout) malformed answers", slow_and_malformed(args.timeout * 0.8)),
        ("llm", "503 with retry-after 1 s, 5 SDK retries", retry_after(1.0)),
        ("a2a", "answer dripped 1 byte/s", drip(1.0)),
        ("a2a", "3 slow (0.8 timeout) malformed answers", slow_and_malformed(args.timeout * 0.8)),
    ]
    print(f"timeout {args.timeout:g} s; cap {args.cap:g} s\n")
    print("| analyzer | endpoint behaviour | with the deadline | without (per-request timeouts only) |")
    print("| --- | --- | --- | --- |")
    for kind, name, script in cases:
        with_deadline, without = await run_case(kind, script, args.timeout, args.cap)
        print(f"| {kind} | {name} | {with_deadline} | {without} |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
