"""The LLM adapter against the OpenAI stand-in over loopback, with the real openai client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from selfheal.adapters.llm import LLMClient, LLMResult, parse_answer
from selfheal.domain.evidence import Evidence
from selfheal.domain.logdiff import diff_logs
from selfheal.domain.prompt import (
    InvalidAnswer,
    LLMVerdict,
    PromptBundle,
    answer_json_schema,
    build_messages,
    verdict_from_llm,
)
from selfheal.domain.verdict import Analyzer, VerdictKind
from selfheal.errors import AnalyzerUnavailable
from selfheal.testing.llm_server import ErrorReply, OpenAIStandIn, verdict_content

KEY = "sk-test-0123456789abcdef"
BUNDLE = PromptBundle(
    messages=[
        {"role": "system", "content": "You judge canaries. Respond with JSON."},
        {"role": "user", "content": "<<<EVIDENCE abc>>>\n{}\n<<<END EVIDENCE abc>>>"},
    ],
    estimated_tokens=40,
)


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn(api_key=KEY) as llm:
        yield llm


@pytest.fixture
def llm(server: OpenAIStandIn) -> Iterator[OpenAIStandIn]:
    server.reset()
    server.up()
    yield server
    server.reset()
    server.up()


def make_client(llm: OpenAIStandIn, *, key: str = KEY, timeout: float = 5.0, max_retries: int = 2) -> LLMClient:
    return LLMClient(llm.base_url, key, "gpt-test", timeout=timeout, max_retries=max_retries)


@pytest.fixture
async def client(llm: OpenAIStandIn) -> AsyncIterator[LLMClient]:
    c = make_client(llm)
    yield c
    await c.aclose()


async def test_healthy_answer_is_parsed(llm: OpenAIStandIn, client: LLMClient) -> None:
    llm.respond(verdict="healthy", confidence=97, summary="Same templates on both sides.", evidence_refs=["T1"])
    result = await client.judge(BUNDLE)
    assert isinstance(result, LLMResult)
    assert result.verdict == LLMVerdict(
        verdict="healthy", confidence=97, summary="Same templates on both sides.", evidence_refs=["T1"]
    )
    assert result.attempts == 1
    assert result.mode == "json_schema"
    body = llm.requests[-1]
    assert body["model"] == "gpt-test"
    assert body["messages"] == BUNDLE.messages
    assert body["temperature"] == 0
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "canary_verdict"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == answer_json_schema()
    assert llm.request_headers[-1]["Authorization"] == f"Bearer {KEY}"


async def test_unhealthy_answer_from_a_scripted_responder(llm: OpenAIStandIn, client: LLMClient) -> None:
    seen: list[int] = []

    def answer(body: dict) -> dict:
        seen.append(len(body["messages"]))
        return verdict_content("unhealthy", 88, "New panic in the canary.", "nil map write", ["T1"], "init the map")

    llm.respond_with(answer)
    result = await client.judge(BUNDLE)
    assert result.verdict.verdict == "unhealthy"
    assert result.verdict.root_cause == "nil map write"
    assert seen == [2]


async def test_token_usage_is_recorded(llm: OpenAIStandIn, client: LLMClient) -> None:
    first = await client.judge(BUNDLE)
    assert first.prompt_tokens > 0 and first.completion_tokens > 0
    assert not first.usage_estimated
    second = await client.judge(BUNDLE)
    assert client.usage.prompt_tokens == first.prompt_tokens + second.prompt_tokens
    assert client.usage.completion_tokens == first.completion_tokens + second.completion_tokens
    assert client.usage.completions == 2
    assert client.usage.total_tokens == client.usage.prompt_tokens + client.usage.completion_tokens


@pytest.mark.parametrize("kind", ["not_json", "wrong_schema", "empty"])
async def test_malformed_twice_then_valid(llm: OpenAIStandIn, client: LLMClient, kind: str) -> None:
    llm.malformed(times=2, kind=kind)
    result = await client.judge(BUNDLE)
    assert result.verdict.verdict == "healthy"
    assert result.attempts == 3
    assert len(llm.requests) == 3
    # Usage of the failed attempts counts too.
    assert client.usage.completions == 3
    assert result.prompt_tokens == client.usage.prompt_tokens
    # The re-ask carries the original conversation and says what was wrong, without new evidence.
    reask = llm.requests[1]["messages"]
    assert reask[:2] == BUNDLE.messages
    assert reask[2]["role"] == "assistant"
    assert reask[3]["role"] == "user" and "invalid" in reask[3]["content"]


async def test_always_malformed_is_analyzer_unavailable(llm: OpenAIStandIn, client: LLMClient) -> None:
    llm.malformed(kind="wrong_schema")
    with pytest.raises(AnalyzerUnavailable, match="no valid verdict in 3 attempts"):
        await client.judge(BUNDLE)
    assert len(llm.requests) == 3


async def test_out_of_range_answer_is_not_a_verdict(llm: OpenAIStandIn, client: LLMClient) -> None:
    llm.respond_with(lambda body: {**verdict_content(), "confidence": 180})
    with pytest.raises(AnalyzerUnavailable):
        await client.judge(BUNDLE)
    llm.respond_with(lambda body: {**verdict_content(), "verdict": "promote"})
    with pytest.raises(AnalyzerUnavailable):
        await client.judge(BUNDLE)
    llm.respond_with(lambda body: {**verdict_content(), "extra": "field"})
    with pytest.raises(AnalyzerUnavailable):
        await client.judge(BUNDLE)


async def unavailable_after(llm: OpenAIStandIn, match: str, **options: Any) -> float:
    """Seconds until a new client's `judge` gives up with `AnalyzerUnavailable` matching ``match``."""
    client = make_client(llm, **options)
    started = time.monotonic()
    try:
        with pytest.raises(AnalyzerUnavailable, match=match):
            await client.judge(BUNDLE)
    finally:
        await client.aclose()
    return time.monotonic() - started


WHOLE_CALL = r"no valid verdict within {:g}s \(the timeout bounds the whole call"


@pytest.mark.parametrize(
    ("script", "seconds", "max_retries", "match", "requests"),
    [
        # Far slower than the timeout: no room is left for the SDK's retry.
        (lambda llm: llm.slow(10), 0.5, 1, r"within 0.5s", {1}),
        # Every read gets its byte in time, so no per-read timeout fires; the answer would take ten minutes.
        (lambda llm: llm.drip(1.0), 3, 2, WHOLE_CALL.format(3), {1}),
        # Three slow malformed answers would take 2.4 s.
        (lambda llm: (llm.slow(0.8), llm.malformed(kind="not_json")), 1.5, 0, WHOLE_CALL.format(1.5), {1, 2}),
        # Five SDK retries, each told to wait 0.6 s by the server, would take over 3 s.
        (lambda llm: llm.http_error(503, retry_after=0.6), 1.5, 5, WHOLE_CALL.format(1.5), {1, 2, 3}),
    ],
    ids=["slow", "dripping", "validation-retries", "sdk-retries"],
)
async def test_the_timeout_bounds_the_whole_call(
    llm: OpenAIStandIn,
    script: Callable[[OpenAIStandIn], object],
    seconds: float,
    max_retries: int,
    match: str,
    requests: set[int],
) -> None:
    script(llm)
    elapsed = await unavailable_after(llm, match, timeout=seconds, max_retries=max_retries)
    assert elapsed < seconds * 3
    assert len(llm.requests) in requests


async def test_an_answer_dripping_within_the_timeout_is_accepted(llm: OpenAIStandIn) -> None:
    llm.respond(verdict="unhealthy", confidence=81, summary="slowly said")
    llm.drip(0.002)
    client = make_client(llm, timeout=10)
    try:
        result = await client.judge(BUNDLE)
    finally:
        await client.aclose()
    assert (result.verdict.verdict, result.verdict.summary) == ("unhealthy", "slowly said")


async def test_server_down_is_unavailable(llm: OpenAIStandIn) -> None:
    llm.down()
    assert await unavailable_after(llm, "cannot connect", timeout=2, max_retries=1) < 5
    assert llm.requests == []


async def test_server_back_up_serves_the_same_client(llm: OpenAIStandIn, client: LLMClient) -> None:
    await client.judge(BUNDLE)
    llm.down()
    with pytest.raises(AnalyzerUnavailable):
        await client.judge(BUNDLE)
    llm.up()
    assert (await client.judge(BUNDLE)).verdict.verdict == "healthy"


async def test_500_is_retried_by_the_sdk_then_unavailable(llm: OpenAIStandIn) -> None:
    llm.http_error(500, retry_after=0.01)
    client = make_client(llm, max_retries=2)
    try:
        with pytest.raises(AnalyzerUnavailable, match="HTTP 500"):
            await client.judge(BUNDLE)
    finally:
        await client.aclose()
    # One try and two SDK retries; no validation retry on top.
    assert len(llm.requests) == 3


async def test_transient_500_then_success(llm: OpenAIStandIn, client: LLMClient) -> None:
    llm.http_error(503, times=1, retry_after=0.01)
    result = await client.judge(BUNDLE)
    assert result.attempts == 1
    assert len(llm.requests) == 2


async def test_429_is_unavailable_after_sdk_retries(llm: OpenAIStandIn) -> None:
    llm.http_error(429, retry_after=0.01)
    client = make_client(llm, max_retries=1)
    try:
        with pytest.raises(AnalyzerUnavailable, match="429"):
            await client.judge(BUNDLE)
    finally:
        await client.aclose()
    assert len(llm.requests) == 2


async def test_endpoint_without_json_schema_falls_back_to_json_object(llm: OpenAIStandIn, client: LLMClient) -> None:
    llm.no_json_schema()
    result = await client.judge(BUNDLE)
    assert result.mode == "json_object_schema"
    assert result.verdict.verdict == "healthy"
    assert [r["response_format"]["type"] for r in llm.requests] == ["json_schema", "json_object"]
    assert llm.requests[-1]["response_format"]["schema"] == answer_json_schema()
    # Remembered: the next call goes straight to json_object.
    again = await client.judge(BUNDLE)
    assert again.mode == "json_object_schema"
    assert [r["response_format"]["type"] for r in llm.requests][2:] == ["json_object"]


async def test_json_object_answer_in_code_fences_is_accepted(llm: OpenAIStandIn, client: LLMClient) -> None:
    llm.no_json_schema()
    llm.respond_with(
        lambda body: "```json\n" + json.dumps(verdict_content("inconclusive", 40, "Too few lines.")) + "\n```"
    )
    result = await client.judge(BUNDLE)
    assert result.verdict.verdict == "inconclusive"


async def test_bad_api_key_is_unavailable_and_says_so(llm: OpenAIStandIn) -> None:
    client = make_client(llm, key="sk-wrong-key-000000")
    try:
        with pytest.raises(AnalyzerUnavailable, match="API key") as info:
            await client.judge(BUNDLE)
    finally:
        await client.aclose()
    assert "401" in str(info.value)
    assert "sk-wrong-key" not in str(info.value)
    assert isinstance(info.value.__cause__, openai.AuthenticationError)
    # 401 is not retried.
    assert len(llm.requests) == 1


async def test_other_400_is_unavailable_without_fallback(llm: OpenAIStandIn, client: LLMClient) -> None:
    llm.respond_with(
        lambda body: ErrorReply(
            400, "This model's maximum context length is 8192 tokens.", param="messages", code="context_length_exceeded"
        )
    )
    with pytest.raises(AnalyzerUnavailable, match=r"HTTP 400.*context length"):
        await client.judge(BUNDLE)
    assert client.mode == "json_schema"
    assert len(llm.requests) == 1


async def test_unknown_model_is_unavailable(llm: OpenAIStandIn, client: LLMClient) -> None:
    llm.http_error(404)
    with pytest.raises(AnalyzerUnavailable, match="gpt-test"):
        await client.judge(BUNDLE)


def test_parse_answer_rejects_non_objects() -> None:
    for bad in ["[]", "42", "null", "", "{", '{"verdict": "healthy"}']:
        with pytest.raises(InvalidAnswer):
            parse_answer(bad)
    ok = parse_answer(json.dumps(verdict_content()))
    assert ok.verdict == "healthy"


def test_stand_in_holds_answers_until_released_and_drips_them() -> None:
    """What the tests of a slow analysis rely on: a request waits at the gate, then trickles in."""
    import concurrent.futures

    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with OpenAIStandIn() as llm, httpx.Client(base_url=llm.base_url, timeout=10) as http:
        llm.hold()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(http.post, "/chat/completions", json=request)
            http.get("/models")  # other routes are not held
            deadline = time.monotonic() + 10
            while llm.held < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert llm.held == 1 and not answer.done()
            llm.release()
            assert answer.result(timeout=10).json()["object"] == "chat.completion"
        assert llm.held == 0

        llm.drip(0.002, times=1)
        started = time.monotonic()
        r = http.post("/chat/completions", json=request)
        assert r.json()["object"] == "chat.completion"
        assert int(r.headers["content-length"]) == len(r.content)
        assert time.monotonic() - started >= len(r.content) * 0.002
        assert http.post("/chat/completions", json=request).json()["object"] == "chat.completion"


def test_stand_in_speaks_the_wire_protocol() -> None:
    """The stand-in's JSON is what the OpenAI protocol says, checked with a plain HTTP client."""
    with OpenAIStandIn(api_key="k") as llm, httpx.Client(base_url=llm.base_url, timeout=5) as http:
        r = http.post(
            "/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer k"},
        )
        assert r.status_code == 200
        body = r.json()
        assert body["object"] == "chat.completion"
        assert set(body) >= {"id", "object", "created", "model", "choices", "usage"}
        choice = body["choices"][0]
        assert choice["index"] == 0 and choice["finish_reason"] == "stop"
        assert choice["message"]["role"] == "assistant"
        assert json.loads(choice["message"]["content"])["verdict"] == "healthy"
        usage = body["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

        denied = http.post("/chat/completions", json={"model": "m", "messages": []})
        assert denied.status_code == 401
        assert set(denied.json()["error"]) == {"message", "type", "param", "code"}

        bad = http.post("/chat/completions", json={"model": "m", "messages": []}, headers={"Authorization": "Bearer k"})
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "messages"

        llm.http_error(500, times=1)
        err = http.post(
            "/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": "Bearer k"},
        )
        assert err.status_code == 500
        assert err.json()["error"]["type"] == "server_error"

        assert http.get("/nope").status_code == 404
        assert http.get("/models", headers={"Authorization": "Bearer k"}).json()["data"][0]["id"]


async def test_prompt_to_verdict_end_to_end(llm: OpenAIStandIn, client: LLMClient) -> None:
    stable = "\n".join(f"INFO served colour=teal id={i}" for i in range(200))
    canary = stable + "\n" + "\n".join(["ERROR failed to connect to redis: i/o timeout"] * 30)
    bundle = build_messages(Evidence(namespace="ns", rollout="web", canary_hash="abc"), diff_logs(canary, stable))

    def judge(body: dict) -> dict:
        user = body["messages"][1]["content"]
        bad = "redis" in user
        return verdict_content(
            "unhealthy" if bad else "healthy", 90, "redis errors" if bad else "fine", evidence_refs=["T1"]
        )

    llm.respond_with(judge)
    result = await client.judge(bundle)
    verdict = verdict_from_llm(result.verdict, Analyzer.LLM)
    assert verdict.verdict == VerdictKind.UNHEALTHY
    assert verdict.evidence_refs == ["T1"]
    assert llm.requests[-1]["messages"] == bundle.messages


def test_stand_in_serves_another_process(llm: OpenAIStandIn) -> None:
    """The operator runs as its own process in end-to-end tests; the stand-in must serve it."""
    llm.respond(verdict="unhealthy", confidence=70, summary="from another process")
    script = (
        "import asyncio, sys\n"
        "from selfheal.adapters.llm import LLMClient\n"
        "from selfheal.domain.prompt import PromptBundle\n"
        "async def main():\n"
        f"    c = LLMClient({llm.base_url!r}, {KEY!r}, 'gpt-test', timeout=5, max_retries=0)\n"
        "    r = await c.judge(PromptBundle(messages=[{'role': 'user', 'content': 'JSON please'}], estimated_tokens=3))\n"
        "    await c.aclose()\n"
        "    print(r.verdict.verdict, r.verdict.summary)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "operator")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "unhealthy from another process"
    assert len(llm.requests) == 1
