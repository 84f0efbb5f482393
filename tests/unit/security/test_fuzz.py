"""Property tests (hypothesis, bounded so CI stays fast): no input crashes the analysis or leaks a secret."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfheal.adapters.llm import LLMClient
from selfheal.domain.policy import AnalysisSpec
from selfheal.domain.prompt import PromptBundle
from selfheal.domain.redaction import Redactor, fold
from selfheal.errors import AnalyzerUnavailable, ConfigError
from selfheal.services.judge import prepare
from selfheal.services.offline import evidence_from_logs, load_policy
from selfheal.testing.llm_server import OpenAIStandIn, verdict_content
from tests.unit.security.corpus import formats_list, leaked

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters logs really carry, and those an attacker would add: controls, invisible and
# combining characters, look-alikes, brackets, quotes, escapes.
_ALPHABET = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
    st.sampled_from(list("{}[]\"'\\:=,;&|<>/ \t-_.@%$#*\x1b\x00\u200b\u200d\ufeff\u0301\u202e\uff50\u0430")),
)
LINE = st.text(_ALPHABET, max_size=300)
JSON_LINE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(_ALPHABET, max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
).map(lambda value: json.dumps(value, ensure_ascii=False))
# Lines of deeply nested JSON, the shape that overflows a recursive flattener.
DEEP_LINE = st.builds(
    lambda depth, opener, leaf: opener * depth + leaf + {"[": "]", '{"a":': "}"}[opener] * depth,
    st.integers(1, 3000),
    st.sampled_from(["[", '{"a":']),
    st.sampled_from(["1", '"x"', "", "null"]),
)
LOG_LINES = st.lists(st.one_of(LINE, JSON_LINE, DEEP_LINE), min_size=0, max_size=25).map("\n".join)


@FUZZ
@given(canary=LOG_LINES, stable=LOG_LINES)
def test_any_log_goes_through_diff_and_verdict_without_an_error(canary: str, stable: str) -> None:
    evidence = evidence_from_logs("fuzz", canary, stable)
    redactor, diff, verdict, bundle = prepare(evidence, AnalysisSpec())
    json.dumps(bundle.messages)
    assert verdict.verdict.value in ("healthy", "unhealthy", "inconclusive")
    for template in diff.templates:
        for example in template.examples:
            assert redactor.scrub(example) == fold(example)  # what is shown was redacted: nothing new is found


SECRETS = [secret for _, carrier, secret in formats_list() if carrier == secret and "\n" not in secret]
# No escape character around the secret: an ANSI sequence may legitimately swallow what follows it.
QUIET = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=80)


@FUZZ
@given(before=QUIET, secret=st.sampled_from(SECRETS), after=QUIET)
def test_a_known_secret_in_any_surrounding_text_never_survives(before: str, secret: str, after: str) -> None:
    out = Redactor().redact(f"{before} {secret} {after}")
    assert leaked(secret, out) is None, out


@FUZZ
@given(text=st.text(_ALPHABET, max_size=400))
def test_redaction_is_idempotent_on_any_text(text: str) -> None:
    r = Redactor()
    once = r.redact(text)
    assert r.redact(once) == once


# --- LLM bodies through the real openai client --------------------------------------------------

BUNDLE = PromptBundle(messages=[{"role": "user", "content": "evidence"}], estimated_tokens=3)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["choices", "message", "content", "usage", "model", "finish_reason", "refusal", "x"]), inner, max_size=4),
    max_leaves=10,
)  # fmt: skip
CHOICE_CONTENT = st.one_of(st.just(json.dumps(verdict_content())), st.text(max_size=60), JSON_VALUE.map(json.dumps))
COMPLETION = st.builds(
    lambda content, extra: {"choices": [{"message": {"content": content}, **extra}]},
    CHOICE_CONTENT,
    st.dictionaries(st.sampled_from(["finish_reason", "index", "message"]), JSON_VALUE, max_size=2),
)
BODY = st.one_of(
    JSON_VALUE.map(lambda v: json.dumps(v).encode()),
    COMPLETION.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)
CONTENT_TYPE = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/html", "text/event-stream", "text/plain", ""]
)


@pytest.fixture(scope="module")
def llm():
    with OpenAIStandIn() as server:
        yield server


@FUZZ
@given(body=BODY, content_type=CONTENT_TYPE, status=st.sampled_from([200, 200, 200, 201, 202, 204]))
def test_any_llm_body_is_a_verdict_or_analyzer_unavailable(llm, body: bytes, content_type: str, status: int) -> None:
    llm.reset()
    llm.raw(body, content_type=content_type, status=status)

    async def ask() -> object:
        async with LLMClient(llm.base_url, "k", "m", timeout=10, max_retries=0, validation_retries=0) as client:
            try:
                return await client.judge(BUNDLE)
            except AnalyzerUnavailable as e:
                assert str(e)
                return e

    asyncio.run(ask())


# --- policy files ------------------------------------------------------------------------------

POLICY_TEXT = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.builds(
        lambda meta, spec: f"kind: SelfHealingPolicy\nmetadata: {meta}\nspec: {spec}\n".encode(),
        JSON_VALUE.map(json.dumps),
        JSON_VALUE.map(json.dumps),
    ),
)


@FUZZ
@given(content=POLICY_TEXT)
def test_any_policy_file_is_a_policy_or_a_clear_error(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path: Path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_bytes(content)
    try:
        name, _ = load_policy(str(path))
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert isinstance(name, str) and name
