"""The verdict endpoint under Argo's measurements: answer times over HTTP, analyzer calls per evidence window,
and how long the event loop is held while the answers are computed.

A canary Rollout with the example logs (stable vs random colours, 500 + 500 lines) in the in-memory fakes of the
services' adapters; the real aiohttp server on 127.0.0.1; an analyzer that takes ``--analyzer-seconds`` to answer
(longer than the metric's timeout: the statistics must answer in time). ``--requests`` measurements are sent,
``--concurrency`` at a time, each with ``timeoutSeconds=--timeout``.

    PYTHONPATH=operator:. python bench/bench_verdicts.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx

from selfheal.adapters.verdict_server import start_verdict_server, stop_verdict_server
from selfheal.domain.prompt import LLMVerdict
from selfheal.domain.verdict import VerdictKind
from selfheal.services.inline import InlineVerdicts
from selfheal.testing.fakes import FakeAnalyzer
from tests.unit.services.world import CANARY, NS, ROLLOUT, make_world, policy


class SlowAnalyzer(FakeAnalyzer):
    def __init__(self, seconds: float) -> None:
        super().__init__(LLMVerdict(verdict=VerdictKind.HEALTHY, confidence=90, summary="colours only"))
        self.seconds = seconds

    async def judge(self, bundle: Any) -> Any:
        self.prompts.append(bundle)
        await asyncio.sleep(self.seconds)
        return await FakeAnalyzer(self.answer).judge(bundle)


async def loop_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """How late a 10 ms timer fires: the longest time the loop was held by something else."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - started - 0.01)


async def main(args: argparse.Namespace) -> None:
    world = make_world()
    world.canary("canary-random-colors")
    analyzer = SlowAnalyzer(args.analyzer_seconds)

    async def analyzers(*_: Any, **__: Any) -> tuple[Any, str | None]:
        return analyzer, None

    llm = {"llm": {"provider": "openai", "model": "m", "baseURL": "http://llm.example/v1"}}
    chosen = [policy(analysis=llm, triggers={"logWatch": {"intervalSeconds": 600}})]
    verdicts = InlineVerdicts(world.runtime, lambda ns: chosen if ns == NS else [], analyzers=analyzers)
    server = await start_verdict_server(verdicts.answer, "127.0.0.1", 0)
    url = f"{server.url}?namespace={NS}&rollout={ROLLOUT}&canary={CANARY}&timeoutSeconds={args.timeout:g}"
    stop, lags = asyncio.Event(), []
    lag_task = asyncio.create_task(loop_lag(stop, lags))
    times: list[float] = []
    codes: dict[int, int] = {}
    kinds: dict[str, int] = {}
    gate = asyncio.Semaphore(args.concurrency)

    async with httpx.AsyncClient(timeout=args.timeout) as client:

        async def measure() -> None:
            async with gate:
                started = time.perf_counter()
                response = await client.get(url)
                times.append(time.perf_counter() - started)
                codes[response.status_code] = codes.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    body = response.json()
                    key = f"{body['verdict']}{' (analyzer pending)' if body['analyzerPending'] else ''}"
                    kinds[key] = kinds.get(key, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(measure() for _ in range(args.requests)))
        wall = time.perf_counter() - began
    stop.set()
    await lag_task
    await stop_verdict_server(server)
    await verdicts.aclose()

    times.sort()
    answer_within = args.timeout - max(0.5, 0.2 * args.timeout)
    print(f"measurements        {args.requests} ({args.concurrency} at a time), timeoutSeconds={args.timeout:g}")
    print(f"HTTP statuses       {dict(sorted(codes.items()))}")
    print(f"answers             {kinds}")
    print(
        f"answer time         p50 {statistics.median(times) * 1000:.0f} ms, p95 "
        f"{times[int(0.95 * (len(times) - 1))] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms "
        f"(the service's own deadline {answer_within:.1f} s)"
    )
    print(f"throughput          {args.requests / wall:.1f} answers/s ({wall:.1f} s in all)")
    print(f"analyzer calls      {len(analyzer.prompts)} for {args.requests} measurements of one evidence window")
    print(
        f"event loop held     max {max(lags) * 1000:.0f} ms, p99 {sorted(lags)[int(0.99 * (len(lags) - 1))] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--analyzer-seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
