"""The LLM adapter against the OpenAI-compatible servers people run: each treats ``response_format`` its own way.

The stand-in imitates each server's documented (or observed) answer; the adapter must end up with a verdict
constrained as tightly as the server allows, and remember what works.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from selfheal.adapters.llm import LLMClient
from selfheal.domain.prompt import PromptBundle, answer_json_schema
from selfheal.errors import AnalyzerUnavailable
from selfheal.testing.llm_server import ErrorReply, OpenAIStandIn, verdict_content

BUNDLE = PromptBundle(
    messages=[
        {"role": "system", "content": "You judge canaries. Respond with JSON."},
        {"role": "user", "content": "<<<EVIDENCE abc>>>\n{}\n<<<END EVIDENCE abc>>>"},
    ],
    estimated_tokens=40,
)
UNHEALTHY = verdict_content("unhealthy", 91, "The canary panics on every red request.", "index out of range", ["T1"])


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn() as llm:
        yield llm


@pytest.fixture
def llm(server: OpenAIStandIn) -> Iterator[OpenAIStandIn]:
    server.reset()
    server.respond(**UNHEALTHY)
    yield server
    server.reset()


@pytest.fixture
async def client(llm: OpenAIStandIn) -> AsyncIterator[LLMClient]:
    # One SDK retry, as a policy may set: a refusal by HTTP 500 is retried by the SDK before it is read.
    c = LLMClient(llm.base_url, "not-needed", "local-model", timeout=5, max_retries=1)
    yield c
    await c.aclose()


def formats(llm: OpenAIStandIn) -> list[Any]:
    """What each request asked for: the response_format type, with "+schema" when a schema rode along."""
    asked = []
    for body in llm.requests:
        fmt = body.get("response_format")
        if fmt is None:
            asked.append(None)
        else:
            asked.append(fmt["type"] + ("+schema" if "schema" in fmt else ""))
    return asked


@pytest.mark.parametrize("server_name", ["llama-cpp-python", "llama-server"])
async def test_llama_cpp_refusing_json_schema_with_500_gets_its_own_schema_extension(
    llm: OpenAIStandIn, client: LLMClient, server_name: str
) -> None:
    llm.imitate(server_name)
    result = await client.judge(BUNDLE)
    assert result.verdict.verdict == "unhealthy" and result.verdict.confidence == 91
    assert result.mode == "json_object_schema"
    # json_schema refused with HTTP 500 (retried once by the SDK, as any 500), then the constrained JSON.
    assert formats(llm) == ["json_schema", "json_schema", "json_object+schema"]
    assert llm.requests[-1]["response_format"]["schema"] == answer_json_schema()
    # Remembered: the next analysis asks for what works, once.
    llm.requests.clear()
    again = await client.judge(BUNDLE)
    assert again.mode == "json_object_schema"
    assert formats(llm) == ["json_object+schema"]


async def test_vllm_refusing_the_schema_with_its_own_error_body_falls_back(
    llm: OpenAIStandIn, client: LLMClient
) -> None:
    """vLLM's xgrammar backend refuses numeric bounds with 400 and a top-level (not nested) error object."""
    llm.imitate("vllm-0.8")
    result = await client.judge(BUNDLE)
    assert result.verdict.verdict == "unhealthy"
    assert formats(llm) == ["json_schema", "json_object+schema"]
    assert result.mode == "json_object_schema"


async def test_ollama_ignoring_json_schema_is_asked_again_in_json_mode(llm: OpenAIStandIn, client: LLMClient) -> None:
    """Ollama before 0.5 accepts json_schema and ignores it: the model answers in prose; JSON mode holds it."""
    llm.imitate("ollama-0.4")
    result = await client.judge(BUNDLE)
    assert result.verdict.verdict == "unhealthy"
    assert result.attempts == 2
    assert formats(llm) == ["json_schema", "json_object+schema"]
    assert llm.requests[1]["messages"][3]["content"].startswith("That answer was invalid")
    llm.requests.clear()
    assert (await client.judge(BUNDLE)).attempts == 1
    assert formats(llm) == ["json_object+schema"]


async def test_lm_studio_keeps_json_schema(llm: OpenAIStandIn, client: LLMClient) -> None:
    """LM Studio only does json_schema (it refuses json_object): nothing to adapt."""
    llm.imitate("lm-studio")
    result = await client.judge(BUNDLE)
    assert result.mode == "json_schema" and formats(llm) == ["json_schema"]


async def test_a_gateway_without_response_format_gets_plain_requests(llm: OpenAIStandIn, client: LLMClient) -> None:
    llm.imitate("no-response-format")
    result = await client.judge(BUNDLE)
    assert result.verdict.verdict == "unhealthy"
    assert formats(llm) == ["json_schema", "json_object+schema", "json_object", None]
    assert result.mode == "text"
    # The prompt alone asks for the JSON object; nothing else changed in the request.
    assert all(body["messages"] == BUNDLE.messages for body in llm.requests)


async def test_a_server_error_that_names_no_format_is_not_a_refusal(llm: OpenAIStandIn, client: LLMClient) -> None:
    llm.respond_with(lambda body: ErrorReply(500, "CUDA error: out of memory"))
    with pytest.raises(AnalyzerUnavailable, match=r"HTTP 500.*out of memory"):
        await client.judge(BUNDLE)
    assert client.mode == "json_schema"
    assert formats(llm) == ["json_schema", "json_schema"]  # the SDK's one retry, nothing more


async def test_auth_and_rate_limit_errors_naming_the_format_are_not_refusals(
    llm: OpenAIStandIn, client: LLMClient
) -> None:
    llm.respond_with(lambda body: ErrorReply(403, "response_format json_schema needs a paid plan"))
    with pytest.raises(AnalyzerUnavailable, match="403"):
        await client.judge(BUNDLE)
    assert client.mode == "json_schema"


async def test_a_valid_json_answer_never_changes_the_format(llm: OpenAIStandIn, client: LLMClient) -> None:
    """A JSON answer of the wrong shape under json_schema is the model's fault, not an ignored format."""
    llm.malformed(times=1, kind="wrong_schema")
    result = await client.judge(BUNDLE)
    assert result.attempts == 2
    assert formats(llm) == ["json_schema", "json_schema"]


async def test_weak_model_under_the_schema_extension_still_needs_a_valid_answer(
    llm: OpenAIStandIn, client: LLMClient
) -> None:
    """A small model under llama.cpp's constraint may still answer nonsense the schema allows; it is validated,
    and a model that never answers validly leaves the analyzer unavailable (the policy's fallback applies)."""
    llm.imitate("llama-cpp-python")
    llm.respond_with(lambda body: {**UNHEALTHY, "confidence": 250})
    with pytest.raises(AnalyzerUnavailable, match="no valid verdict in 3 attempts"):
        await client.judge(BUNDLE)
    assert formats(llm)[-3:] == ["json_object+schema"] * 3


def test_each_imitated_server_answers_as_documented() -> None:
    """The bodies the stand-in sends, checked with a plain HTTP client (no SDK in between)."""
    import httpx

    schema = {"type": "json_schema", "json_schema": {"name": "v", "strict": True, "schema": answer_json_schema()}}
    with OpenAIStandIn() as llm, httpx.Client(base_url=llm.base_url, timeout=5) as http:

        def post(response_format: dict[str, Any] | None) -> httpx.Response:
            body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
            if response_format is not None:
                body["response_format"] = response_format
            return http.post("/chat/completions", json=body)

        llm.imitate("llama-cpp-python")
        refused = post(schema)
        assert refused.status_code == 500
        assert "response_format" in refused.json()["error"]["message"]
        assert post({"type": "json_object", "schema": answer_json_schema()}).status_code == 200

        llm.imitate("llama-server")
        refused = post(schema)
        assert refused.status_code == 500 and refused.json()["error"]["code"] == 500

        llm.imitate("vllm-0.8")
        refused = post(schema)
        assert refused.status_code == 400
        assert refused.json()["object"] == "error" and "xgrammar" in refused.json()["message"]

        llm.imitate("lm-studio")
        assert post({"type": "json_object"}).json() == {"error": "'response_format.type' must be 'json_schema'"}
        assert post(schema).status_code == 200

        llm.imitate("ollama-0.4")
        content = post(schema).json()["choices"][0]["message"]["content"]
        with pytest.raises(ValueError):
            json.loads(content)
        assert json.loads(post({"type": "json_object"}).json()["choices"][0]["message"]["content"])

        with pytest.raises(ValueError, match="unknown server"):
            llm.imitate("gpt-5-server")


async def test_every_request_caps_the_answer_so_a_runaway_model_cannot_hold_the_server(
    llm: OpenAIStandIn, client: LLMClient
) -> None:
    """A small model under a grammar may write whitespace until the context is full; the cap stops it, and a
    cut-off answer is no verdict."""
    llm.imitate("llama-cpp-python")
    llm.respond_with(lambda body: json.dumps(UNHEALTHY)[:-1] + " " * 100_000)
    with pytest.raises(AnalyzerUnavailable, match="cut off at the length limit"):
        await client.judge(BUNDLE)
    assert {body["max_tokens"] for body in llm.requests} == {2048}
    assert "max_completion_tokens" not in llm.requests[0]


async def test_a_reasoning_model_gets_max_completion_tokens_and_its_default_temperature(
    llm: OpenAIStandIn, client: LLMClient
) -> None:
    llm.imitate("openai-reasoning")
    result = await client.judge(BUNDLE)
    assert result.verdict.verdict == "unhealthy"
    last = llm.requests[-1]
    assert last["max_completion_tokens"] == 2048 and "max_tokens" not in last
    assert "temperature" not in last
    assert last["response_format"]["type"] == "json_schema"  # nothing else given up
    llm.requests.clear()
    await client.judge(BUNDLE)
    assert len(llm.requests) == 1  # remembered
