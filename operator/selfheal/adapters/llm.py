"""The LLM analyzer adapter: one OpenAI-compatible chat completions client, asked for a schema-valid verdict."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import openai
from pydantic import BaseModel, ConfigDict, ValidationError

from selfheal.domain.prompt import (
    InvalidAnswer,
    LLMVerdict,
    PromptBundle,
    answer_json_schema,
    estimate_tokens,
    parse_answer,
)
from selfheal.errors import AnalyzerUnavailable

log = logging.getLogger(__name__)

# The output formats asked for, most constrained first. An endpoint that refuses one (or answers as if it
# ignored it) is asked with the next from then on:
#   json_schema         OpenAI structured output: OpenAI, vLLM, Ollama >= 0.5, LM Studio, recent llama.cpp;
#   json_object_schema  {"type": "json_object", "schema": ...}, the constrained JSON of llama.cpp's servers
#                       (llama-server, llama-cpp-python), which refuse json_schema with HTTP 500;
#   json_object         JSON mode: any JSON object, the prompt describes the fields;
#   text                no response_format at all, for endpoints that refuse the parameter itself.
Mode = Literal["json_schema", "json_object_schema", "json_object", "text"]
FORMATS: tuple[Mode, ...] = ("json_schema", "json_object_schema", "json_object", "text")
T = TypeVar("T")

SCHEMA_NAME = "canary_verdict"
# How many times malformed or schema-invalid output is asked for again. This is a validation
# retry, separate from the SDK's transport retries (connection errors, 408/409/429/5xx).
DEFAULT_VALIDATION_RETRIES = 2
# How much of an invalid answer is quoted back when asking again.
_ECHO_MAX = 1500
# A valid verdict takes well under this many tokens (its texts are bounded). The cap stops a weak model that
# a grammar keeps writing (whitespace, an endless string) from holding a one-request-at-a-time server until
# its context is full; a cut-off answer is asked for again like any invalid one.
DEFAULT_MAX_ANSWER_TOKENS = 2048
# A chat completion holding one verdict is a few kilobytes; a larger body is refused unread.
MAX_BODY_BYTES = 4 * 1024 * 1024


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    content: str | None = None
    refusal: str | None = None


class _Choice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: _Message
    finish_reason: str | None = None


class _Usage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Completion(BaseModel):
    """The parts of a chat completion body this client reads, validated (any other field is ignored)."""

    model_config = ConfigDict(extra="ignore")

    choices: list[_Choice]
    usage: _Usage | None = None
    model: str | None = None


def parse_completion(content_type: str, body: bytes, where: str) -> Completion:
    """A completion from one HTTP answer body; `AnalyzerUnavailable` saying what was wrong with it."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "text/event-stream":
        raise AnalyzerUnavailable(f"LLM at {where} answered with an event stream, not one JSON completion")
    if kind and not (kind == "application/json" or kind.endswith("+json")):
        raise AnalyzerUnavailable(f"LLM at {where} answered with content type {kind[:60]!r}, not JSON")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise AnalyzerUnavailable(f"LLM at {where} answered with a body that is not valid JSON") from e
    if not isinstance(data, dict):
        raise AnalyzerUnavailable(f"LLM at {where} answered with a JSON {type(data).__name__}, not a completion object")
    try:
        return Completion.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in e.errors()[:4]
        )
        raise AnalyzerUnavailable(
            f"LLM at {where} answered with JSON that is not a chat completion ({problems})"
        ) from e


class LLMResult(BaseModel):
    """A validated verdict and what it cost. ``attempts`` counts completions asked for (1 = first answer valid)."""

    verdict: LLMVerdict
    prompt_tokens: int
    completion_tokens: int
    mode: Mode
    attempts: int
    model: str = ""
    # True when the endpoint reported no usage and the token counts are estimates.
    usage_estimated: bool = False


@dataclass
class TokenUsage:
    """Tokens spent through one client since it was built, failed attempts included."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    completions: int = 0
    by_model: dict[str, int] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, prompt_tokens: int, completion_tokens: int, model: str) -> None:
        """Count one completion's tokens, in total and for ``model``."""
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.completions += 1
        self.by_model[model] = self.by_model.get(model, 0) + prompt_tokens + completion_tokens


# Statuses with which servers refuse an output format: 400/422 (OpenAI, vLLM, Ollama, LM Studio) and 500/501
# (llama.cpp's servers answer a request body they cannot validate with 500).
_REFUSAL_STATUSES = frozenset({400, 422, 500, 501})
# Words a refusal of the output format names (in its message, param or body).
_FORMAT_WORDS = (
    "response_format",
    "response format",
    "json_schema",
    "json schema",
    "json_object",
    "structured output",
    "guided decoding",
    "grammar",
)


def _refuses_format(err: openai.APIStatusError) -> bool:
    """Whether ``err`` is the endpoint refusing the requested output format (not an outage or a bad prompt)."""
    if err.status_code not in _REFUSAL_STATUSES:
        return False
    text = " ".join(str(x) for x in (err.message, err.param, err.code, err.body) if x).lower()
    return any(word in text for word in _FORMAT_WORDS)


def _ignored_format(response: Any) -> bool:
    """Whether a completion asked for under a schema came back as something no schema constraint produces:
    non-empty text that is not one JSON value (prose, or JSON in a code fence). Older Ollama releases, for
    one, accept ``json_schema`` and ignore it."""
    if not response.choices:
        return False
    message = response.choices[0].message
    content = (message.content or "").strip()
    if not content or getattr(message, "refusal", None) or response.choices[0].finish_reason == "length":
        return False
    try:
        json.loads(content)
    except ValueError:
        return True
    return False


def _short(err: openai.APIStatusError) -> str:
    return " ".join(err.message.split())[:200]


def _mentions_temperature(err: openai.APIStatusError) -> bool:
    text = " ".join(str(x) for x in (err.message, err.param, err.body) if x).lower()
    return "temperature" in text


def _wants_max_completion_tokens(err: openai.APIStatusError) -> bool:
    """OpenAI's reasoning models refuse ``max_tokens`` and name ``max_completion_tokens`` instead."""
    text = " ".join(str(x) for x in (err.message, err.param, err.body) if x).lower()
    return "max_tokens" in text and "max_completion_tokens" in text


async def within_deadline(seconds: float, call: Awaitable[T], analyzer: str) -> T:
    """``call``, ended after ``seconds`` whatever it is doing; then ``analyzer`` counts as unavailable."""
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await call
    except TimeoutError as e:
        if not deadline.expired():
            raise
        raise AnalyzerUnavailable(
            f"{analyzer} gave no valid verdict within {seconds:g}s "
            "(the timeout bounds the whole call, retries included)"
        ) from e


def describe_endpoint(url: str) -> str:
    """``scheme://host[:port]`` of an endpoint, for messages: never the user or password a URL may carry."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "the configured endpoint"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class LLMClient:
    """One OpenAI-compatible endpoint, built once at startup and closed at cleanup.

    The SDK's own retries (``max_retries``) are the only retry layer for transport failures,
    408/409/429 and 5xx. Answers that are not a valid `LLMVerdict` are asked for again at most
    ``validation_retries`` times. ``timeout`` bounds each request and, as one deadline, the whole
    `judge` call over all of them. Every failure leaves as `AnalyzerUnavailable`.
    """

    def __init__(
        self,
        base_url: str | None,
        api_key: str,
        model: str,
        *,
        timeout: float,
        max_retries: int,
        temperature: float | None = 0,
        validation_retries: int = DEFAULT_VALIDATION_RETRIES,
        max_completion_tokens: int | None = None,
        observe: Callable[..., None] | None = None,
    ) -> None:
        self.model = model
        # Told the seconds of each completion and its outcome (answered, refused, failed): the latency metric.
        self._observe = observe
        self.timeout = timeout
        self.max_retries = max_retries
        self.temperature = temperature
        self.validation_retries = max(0, validation_retries)
        self.max_completion_tokens = max_completion_tokens or DEFAULT_MAX_ANSWER_TOKENS
        # The cap goes as max_tokens, which every OpenAI-compatible server reads (llama.cpp, Ollama and LM Studio
        # ignore max_completion_tokens), until an endpoint asks for max_completion_tokens instead.
        self._token_param = "max_tokens"
        self.usage = TokenUsage()
        # The output format asked for; steps down `FORMATS` for good when the endpoint refuses or ignores it.
        self.mode: Mode = FORMATS[0]
        self._send_temperature = temperature is not None
        # Redirects are not followed: the key and the evidence go to the configured endpoint only.
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            http_client=openai.DefaultAsyncHttpxClient(timeout=timeout, follow_redirects=False),
        )
        self._endpoint = self._describe(base_url)

    @staticmethod
    def _describe(base_url: str | None) -> str:
        if not base_url:
            return "the OpenAI API"
        return describe_endpoint(base_url)

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _response_format(self) -> dict[str, Any] | None:
        if self.mode == "json_schema":
            return {
                "type": "json_schema",
                "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": answer_json_schema()},
            }
        if self.mode == "json_object_schema":
            return {"type": "json_object", "schema": answer_json_schema()}
        if self.mode == "json_object":
            return {"type": "json_object"}
        return None

    def _step_down(self, why: str) -> bool:
        """Ask for the next, less constrained output format from now on; False when none is left."""
        at = FORMATS.index(self.mode)
        if at + 1 >= len(FORMATS):
            return False
        self.mode = FORMATS[at + 1]
        log.warning("%s %s; asking for %s output from now on", self._endpoint, why, self.mode)
        return True

    async def _complete(self, messages: list[dict[str, str]]) -> Any:
        """One chat completion (SDK retries included), adapting to the output format the endpoint supports.

        A refused format is replaced by the next at once; an ignored one (prose under a schema) is
        replaced for the next completion, since this answer is judged (and re-asked) like any other.
        """
        temperature_adapted = False
        while True:
            kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
            response_format = self._response_format()
            if response_format is not None:
                kwargs["response_format"] = response_format
            if self._send_temperature:
                kwargs["temperature"] = self.temperature
            kwargs[self._token_param] = self.max_completion_tokens
            started = time.monotonic()
            try:
                response = await self._post(kwargs)
            except openai.APIStatusError as e:
                refused = _refuses_format(e)
                self._observed(started, "refused" if refused else "failed")
                if refused and self._step_down(f"refused {self.mode} output ({_short(e)})"):
                    continue
                if (
                    isinstance(e, openai.BadRequestError | openai.UnprocessableEntityError)
                    and self._send_temperature
                    and not temperature_adapted
                    and _mentions_temperature(e)
                ):
                    log.warning("%s rejected the temperature setting; sending none from now on", self._endpoint)
                    self._send_temperature = False
                    temperature_adapted = True
                    continue
                if self._token_param == "max_tokens" and _wants_max_completion_tokens(e):
                    log.warning("%s asked for max_completion_tokens; sending that from now on", self._endpoint)
                    self._token_param = "max_completion_tokens"
                    continue
                raise self._unavailable(e) from e
            except openai.OpenAIError as e:
                self._observed(started, "failed")
                raise self._unavailable(e) from e
            except AnalyzerUnavailable:  # a body refused unread, or not a completion
                self._observed(started, "failed")
                raise
            self._observed(started, "answered")
            if self.mode == "json_schema" and _ignored_format(response):
                self._step_down("answered json_schema requests with text that is not JSON")
            return response

    def _observed(self, started: float, outcome: str) -> None:
        if self._observe is not None:
            self._observe(time.monotonic() - started, outcome=outcome)

    async def _post(self, kwargs: dict[str, Any]) -> Completion:
        """One completion, its body read up to `MAX_BODY_BYTES` and validated before anything uses it."""
        async with self._client.chat.completions.with_streaming_response.create(**kwargs) as raw:
            status = raw.http_response.status_code
            if 300 <= status < 400:
                target = raw.http_response.headers.get("location", "")
                raise AnalyzerUnavailable(
                    f"LLM at {self._endpoint} redirected (HTTP {status}) to "
                    f"{describe_endpoint(target) if target else 'another place'}; redirects are not followed: "
                    "the API key and the evidence go only to the configured endpoint"
                )
            length = raw.http_response.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_BODY_BYTES:
                raise AnalyzerUnavailable(f"LLM at {self._endpoint} answered with {int(length)} bytes, over the limit")
            body = bytearray()
            async for chunk in raw.iter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise AnalyzerUnavailable(
                        f"LLM at {self._endpoint} answered with more than {MAX_BODY_BYTES} bytes; not read further"
                    )
            return parse_completion(raw.http_response.headers.get("content-type", ""), bytes(body), self._endpoint)

    def _unavailable(self, e: openai.OpenAIError) -> AnalyzerUnavailable:
        where = self._endpoint
        retries = f"after {self.max_retries} retries" if self.max_retries else "with retries disabled"
        if isinstance(e, openai.APITimeoutError):
            return AnalyzerUnavailable(f"LLM at {where} did not answer within {self.timeout:g}s ({retries})")
        if isinstance(e, openai.APIConnectionError):
            return AnalyzerUnavailable(f"cannot connect to the LLM at {where} ({retries}): {e.message}")
        if isinstance(e, openai.AuthenticationError):
            return AnalyzerUnavailable(
                f"LLM at {where} rejected the API key (401): check the apiKey Secret of the policy"
            )
        if isinstance(e, openai.PermissionDeniedError):
            return AnalyzerUnavailable(f"LLM at {where} refused access (403) for model {self.model!r}: {e.message}")
        if isinstance(e, openai.NotFoundError):
            return AnalyzerUnavailable(f"LLM at {where} has no model {self.model!r} or no chat completions (404)")
        if isinstance(e, openai.RateLimitError):
            return AnalyzerUnavailable(f"LLM at {where} is rate limiting us (429, {retries}): {e.message}")
        if isinstance(e, openai.APIStatusError) and 300 <= e.status_code < 400:
            target = e.response.headers.get("location", "")
            return AnalyzerUnavailable(
                f"LLM at {where} redirected (HTTP {e.status_code}) to "
                f"{describe_endpoint(target) if target else 'another place'}; redirects are not followed: "
                "the API key and the evidence go only to the configured endpoint"
            )
        if isinstance(e, openai.APIStatusError):
            return AnalyzerUnavailable(f"LLM at {where} answered HTTP {e.status_code} ({retries}): {e.message}")
        return AnalyzerUnavailable(f"LLM at {where} failed: {type(e).__name__}: {e}")

    async def judge(self, bundle: PromptBundle) -> LLMResult:
        """Ask for a verdict on ``bundle``; a valid `LLMResult` or `AnalyzerUnavailable`.

        Everything it takes (validation attempts, the SDK's retries and their back-off, answers that
        arrive slowly or byte by byte) ends at one deadline, ``timeout`` seconds from the call.
        """
        return await within_deadline(self.timeout, self._judge(bundle), f"LLM at {self._endpoint}")

    async def _judge(self, bundle: PromptBundle) -> LLMResult:
        messages = list(bundle.messages)
        prompt_tokens = completion_tokens = 0
        estimated = False
        reasons: list[str] = []
        for attempt in range(1, self.validation_retries + 2):
            response = await self._complete(messages)
            content, refusal, finish = None, None, None
            if response.choices:
                choice = response.choices[0]
                content = choice.message.content
                refusal = getattr(choice.message, "refusal", None)
                finish = choice.finish_reason
            usage = response.usage
            if usage is not None:
                p, c = usage.prompt_tokens or 0, usage.completion_tokens or 0
            else:
                estimated = True
                p = estimate_tokens("".join(m.get("content", "") for m in messages))
                c = estimate_tokens(content or "")
            prompt_tokens += p
            completion_tokens += c
            self.usage.add(p, c, response.model or self.model)
            try:
                if refusal:
                    raise InvalidAnswer("the model refused to answer")
                if finish == "length":
                    raise InvalidAnswer("the answer was cut off at the length limit; keep it short")
                verdict = parse_answer(content)
            except InvalidAnswer as invalid:
                reasons.append(invalid.reason)
                log.info("LLM answer %d/%d invalid: %s", attempt, self.validation_retries + 1, invalid.reason)
                messages = [
                    *bundle.messages,
                    {"role": "assistant", "content": (content or "")[:_ECHO_MAX]},
                    {
                        "role": "user",
                        "content": (
                            f"That answer was invalid: {invalid.reason}. Respond again with only one JSON object "
                            "with exactly the fields verdict, confidence, summary, root_cause, evidence_refs and "
                            "suggested_fix, as the system message describes."
                        ),
                    },
                ]
                continue
            return LLMResult(
                verdict=verdict,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                mode=self.mode,
                attempts=attempt,
                model=response.model or self.model,
                usage_estimated=estimated,
            )
        raise AnalyzerUnavailable(
            f"LLM at {self._endpoint} gave no valid verdict in {len(reasons)} attempts; last: {reasons[-1]}"
        )
