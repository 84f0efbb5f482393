"""Malformed LLM answers and redirects: the real openai client against the stand-in, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from selfheal.adapters.llm import MAX_BODY_BYTES, LLMClient
from selfheal.domain.policy import AnalysisSpec, DecisionSpec, LLMProvider
from selfheal.domain.prompt import PromptBundle
from selfheal.errors import AnalyzerUnavailable
from selfheal.services.judge import judge
from selfheal.services.offline import evidence_from_logs
from selfheal.testing.llm_server import OpenAIStandIn, verdict_content

KEY = "sk-test-wire-0123456789"
BUNDLE = PromptBundle(
    messages=[{"role": "system", "content": "judge"}, {"role": "user", "content": "evidence"}], estimated_tokens=10
)
GOOD = json.dumps(verdict_content("healthy", 99, "fine"))


def completion(content: str = GOOD) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }


MALFORMED = {
    "event-stream": (b'data: {"choices":[]}\n\ndata: [DONE]\n\n', "text/event-stream", "event stream"),
    "html-200": (b"<html><body>Welcome to nginx!</body></html>", "text/html", "content type 'text/html'"),
    "invalid-json": (b'{"choices": [', "application/json", "not valid JSON"),
    "choices-object": (
        json.dumps({"choices": {"0": {"message": {"content": GOOD}}}}).encode(),
        "application/json",
        "choices",
    ),
    "json-array": (json.dumps([completion()]).encode(), "application/json", "JSON list"),
    "json-string": (json.dumps("hello").encode(), "application/json", "JSON str"),
    "missing-choices": (json.dumps({"id": "x", "model": "m"}).encode(), "application/json", "choices"),
    "message-not-object": (json.dumps({"choices": [{"message": "hi"}]}).encode(), "application/json", "message"),
    "content-a-number": (
        json.dumps({"choices": [{"message": {"content": 42}}]}).encode(),
        "application/json",
        "content",
    ),
    "usage-a-string": (
        json.dumps({**completion(), "usage": "lots"}).encode(),
        "application/json",
        "usage",
    ),
    "plain-text": (b"OK", "text/plain", "content type 'text/plain'"),
    "deep-nesting": (b"[" * 100_000 + b"]" * 100_000, "application/json", "not valid JSON"),
    "huge-body": (b'{"pad":"' + b"x" * (MAX_BODY_BYTES + 10) + b'"}', "application/json", "bytes"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn(api_key=KEY) as llm:
        yield llm


@pytest.fixture
def llm(server: OpenAIStandIn) -> Iterator[OpenAIStandIn]:
    server.reset()
    yield server
    server.reset()


def client(llm: OpenAIStandIn, base_url: str | None = None) -> LLMClient:
    return LLMClient(base_url or llm.base_url, KEY, "gpt-test", timeout=10, max_retries=0)


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_a_malformed_answer_is_analyzer_unavailable_with_its_reason(llm: OpenAIStandIn, name: str) -> None:
    body, content_type, reason = MALFORMED[name]
    llm.raw(body, content_type=content_type)
    async with client(llm) as c:
        with pytest.raises(AnalyzerUnavailable) as caught:
            await c.judge(BUNDLE)
    assert reason in str(caught.value)
    assert "Traceback" not in str(caught.value)


async def test_a_malformed_answer_gives_the_policys_fallback_not_a_verdict(llm: OpenAIStandIn) -> None:
    llm.raw(b"<html>gateway</html>", content_type="text/html")
    analysis = AnalysisSpec.model_validate({"llm": {"provider": "openai", "model": "gpt-test"}})
    decision = DecisionSpec.model_validate({"onAnalyzerUnavailable": "pause"})
    evidence = evidence_from_logs("app", "ok\n" * 20, "ok\n" * 20)
    async with client(llm) as c:
        j = await judge(evidence, analysis, decision, c)
    assert j.llm is None
    assert j.llm_error is not None and "content type 'text/html'" in j.llm_error
    assert j.verdict.analyzer.value == "statistical"
    assert analysis.llm.provider == LLMProvider.OPENAI


async def test_a_redirect_to_another_host_is_never_followed(llm: OpenAIStandIn) -> None:
    with OpenAIStandIn() as elsewhere:
        elsewhere.respond("healthy", 100, "promote me")
        llm.redirect(f"{elsewhere.base_url}/chat/completions", status=307)
        async with client(llm) as c:
            with pytest.raises(AnalyzerUnavailable, match="redirect"):
                await c.judge(BUNDLE)
        assert elsewhere.completions == 0  # neither the key nor the evidence went there


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_every_redirect_status_is_refused(llm: OpenAIStandIn, status: int) -> None:
    llm.redirect("http://127.0.0.2:9/v1/chat/completions", status=status)
    async with client(llm) as c:
        with pytest.raises(AnalyzerUnavailable, match=f"HTTP {status}"):
            await c.judge(BUNDLE)
    assert llm.completions == 1
