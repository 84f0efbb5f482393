"""The A2A analyzer adapter: an Agent2Agent (JSON-RPC 2.0, protocol 0.3 or 1.0) client asked for a verdict."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel

from selfheal.adapters.a2a_versions import PROTOCOLS, V0_3, VERSION_HEADER, Protocol, protocol_for
from selfheal.adapters.llm import TokenUsage, describe_endpoint, within_deadline
from selfheal.domain.prompt import (
    InvalidAnswer,
    LLMVerdict,
    PromptBundle,
    answer_json_schema,
    estimate_tokens,
    parse_answer,
    validate_verdict,
)
from selfheal.errors import AnalyzerUnavailable

log = logging.getLogger(__name__)

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
# The protocol versions this client speaks (see a2a_versions); a card offering both gets 1.0.
PROTOCOL_VERSIONS = ("1.0", "0.3")
ACCEPTED_OUTPUT_MODES = ["application/json", "text/plain"]
JSONRPC = "JSONRPC"
# Metadata keys this client puts on the parts it sends, so an agent can tell them apart.
ROLE_KEY = "selfheal.dev/role"
PURPOSE_KEY = "selfheal.dev/purpose"
SCHEMA_PURPOSE = "answer-schema"
SCHEMA_NAME = "canary_verdict"
DEFAULT_VALIDATION_RETRIES = 2
# Upper bound on tasks/get calls for one answer; the timeout bounds them as well.
DEFAULT_POLL_ATTEMPTS = 40
_POLL_FIRST = 0.05
_POLL_MAX = 1.0
_RETRY_FIRST = 0.2
_RETRY_MAX = 1.0

PENDING_STATES = frozenset({"submitted", "working"})
FAILED_STATES = frozenset({"failed", "rejected", "canceled", "cancelled"})
INTERRUPTED_STATES = frozenset({"input-required", "auth-required"})

RPC_ERRORS = {
    -32700: "parse error",
    -32600: "invalid request",
    -32601: "method not found",
    -32602: "invalid params",
    -32603: "internal error",
    -32001: "task not found",
    -32002: "task not cancelable",
    -32003: "push notifications not supported",
    -32004: "unsupported operation",
    -32005: "content type not supported",
    -32006: "invalid agent response",
    -32007: "authenticated extended card not configured",
    -32008: "extension support required",
    -32009: "protocol version not supported",
}


class A2AResult(BaseModel):
    """A validated verdict from an A2A agent; the same attributes as `LLMResult`, with ``mode`` "a2a".

    A2A reports no token usage, so the counts are estimates unless the agent put a ``usage``
    object in the answer's metadata. ``attempts`` counts messages sent (1 = first answer valid).
    """

    verdict: LLMVerdict
    prompt_tokens: int
    completion_tokens: int
    mode: Literal["a2a"] = "a2a"
    attempts: int
    model: str = ""
    usage_estimated: bool = True
    task_id: str = ""
    context_id: str = ""


class AgentCard(BaseModel):
    """What this client keeps of an agent card: who the agent is, where its JSON-RPC endpoint is and which
    protocol version it speaks there (``tenant``: the 1.0 interface's tenant, sent with every call)."""

    name: str
    rpc_url: str
    card_url: str
    protocol_version: str = ""
    tenant: str = ""

    @property
    def protocol(self) -> Protocol:
        return protocol_for(self.protocol_version) or PROTOCOLS[V0_3]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _describe(url: str) -> str:
    return describe_endpoint(url)


def verdict_from_parts(parts: list[Any]) -> LLMVerdict:
    """The first schema-valid verdict in ``parts``: data parts first, then text parts holding JSON."""
    reasons: list[str] = []
    data_parts = [p for p in parts if isinstance(p, dict) and p.get("kind", "data" if "data" in p else "") == "data"]
    text_parts = [p for p in parts if isinstance(p, dict) and p.get("kind", "text" if "text" in p else "") == "text"]
    for part in data_parts:
        try:
            return validate_verdict(part.get("data"))
        except InvalidAnswer as invalid:
            reasons.append(f"data part: {invalid.reason}")
    for part in text_parts:
        text = part.get("text")
        try:
            return parse_answer(text if isinstance(text, str) else "")
        except InvalidAnswer as invalid:
            reasons.append(f"text part: {invalid.reason}")
    if not reasons:
        raise InvalidAnswer("the answer had no text or data part")
    raise InvalidAnswer("; ".join(reasons[:3]))


def _parts_text(parts: list[Any]) -> str:
    chunks = []
    for p in parts:
        if isinstance(p, dict):
            if isinstance(p.get("text"), str):
                chunks.append(p["text"])
            elif "data" in p:
                chunks.append(json.dumps(p["data"], default=str))
    return "\n".join(chunks)


def _is_task(result: dict[str, Any]) -> bool:
    kind = result.get("kind")
    if kind is not None:
        return kind == "task"
    return "status" in result and "id" in result


def _is_message(result: dict[str, Any]) -> bool:
    kind = result.get("kind")
    if kind is not None:
        return kind == "message"
    return "parts" in result and "role" in result


def _usage(obj: dict[str, Any]) -> tuple[int, int] | None:
    meta = obj.get("metadata")
    usage = meta.get("usage") if isinstance(meta, dict) else None
    if not isinstance(usage, dict):
        return None
    p = usage.get("prompt_tokens", usage.get("inputTokens"))
    c = usage.get("completion_tokens", usage.get("outputTokens"))
    if isinstance(p, int) and isinstance(c, int) and p >= 0 and c >= 0:
        return p, c
    return None


class _Answer:
    """The agent's final answer to one message: its parts and where it came from."""

    def __init__(self, parts: list[Any], source: dict[str, Any], task_id: str = "", context_id: str = "") -> None:
        self.parts = parts
        self.source = source
        self.task_id = task_id
        self.context_id = context_id


class A2AClient:
    """One A2A agent, built once at startup and closed at cleanup.

    The agent card is fetched once (``/.well-known/agent-card.json``, then the older
    ``agent.json``) and names the JSON-RPC endpoint and its protocol version (1.0 preferred, or
    0.3). Each verdict is one ``SendMessage`` (0.3: ``message/send``); a Task answer is polled
    with ``GetTask`` (``tasks/get``) until it completes, within ``timeout``.
    Connection errors and 5xx are retried at most ``max_retries`` times (the only transport
    retry layer); answers without a valid `LLMVerdict` are asked for again at most
    ``validation_retries`` times. Every failure leaves as `AnalyzerUnavailable`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        timeout: float,
        max_retries: int,
        validation_retries: int = DEFAULT_VALIDATION_RETRIES,
        poll_attempts: int = DEFAULT_POLL_ATTEMPTS,
    ) -> None:
        if not base_url:
            raise ValueError("an A2A agent needs a base URL")
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.validation_retries = max(0, validation_retries)
        self.poll_attempts = max(0, poll_attempts)
        self.usage = TokenUsage()
        self.card: AgentCard | None = None
        self._card_lock = asyncio.Lock()
        self._endpoint = _describe(base_url)
        self._has_key = bool(api_key)
        headers = {"Accept": "application/json", "User-Agent": "selfheal-a2a-client"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout), headers=headers, follow_redirects=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> A2AClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- transport ---------------------------------------------------------------------------

    def _retries_text(self) -> str:
        return f"after {self.max_retries} retries" if self.max_retries else "with retries disabled"

    async def _request(
        self, method: str, url: str, *, deadline: float, json_body: Any = None, allow: frozenset[int] = frozenset()
    ) -> httpx.Response:
        """One HTTP exchange with the transport retries; statuses in ``allow`` are returned, not raised."""
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AnalyzerUnavailable(f"A2A agent at {self._endpoint} did not answer within {self.timeout:g}s")
            try:
                response = await self._client.request(
                    method, url, json=json_body, timeout=httpx.Timeout(min(self.timeout, left))
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as e:
                if attempt < self.max_retries:
                    attempt += 1
                    await self._backoff(attempt, deadline)
                    continue
                raise AnalyzerUnavailable(
                    f"cannot connect to the A2A agent at {self._endpoint} ({self._retries_text()}): "
                    f"{type(e).__name__}: {e}"
                ) from e
            except httpx.TimeoutException as e:
                raise AnalyzerUnavailable(
                    f"A2A agent at {self._endpoint} did not answer within {self.timeout:g}s"
                ) from e
            except httpx.HTTPError as e:
                raise AnalyzerUnavailable(f"A2A agent at {self._endpoint} failed: {type(e).__name__}: {e}") from e
            if response.status_code >= 500 and attempt < self.max_retries:
                attempt += 1
                await self._backoff(attempt, deadline)
                continue
            if response.status_code not in allow:
                self._check_status(response)
            return response

    async def _backoff(self, attempt: int, deadline: float) -> None:
        pause = min(_RETRY_FIRST * 2 ** (attempt - 1), _RETRY_MAX, max(deadline - time.monotonic(), 0))
        log.info("A2A agent at %s: transport retry %d/%d in %.2fs", self._endpoint, attempt, self.max_retries, pause)
        await asyncio.sleep(pause)

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        where = self._endpoint
        if 300 <= status < 400:
            target = response.headers.get("location", "")
            raise AnalyzerUnavailable(
                f"A2A agent at {where} redirected (HTTP {status}) {response.request.method} "
                f"{urlsplit(str(response.request.url)).path} to "
                f"{describe_endpoint(urljoin(str(response.request.url), target)) if target else 'another place'}; "
                "redirects are not followed: the API key and the evidence go only to the configured agent"
            )
        if status < 400:
            return
        if status == 401:
            if self._has_key:
                raise AnalyzerUnavailable(
                    f"A2A agent at {where} rejected the API key (401): check the apiKey Secret of the policy"
                )
            raise AnalyzerUnavailable(f"A2A agent at {where} requires authentication (401) and no apiKey is set")
        if status == 403:
            raise AnalyzerUnavailable(
                f"A2A agent at {where} refused access (403): check the apiKey Secret of the policy"
            )
        if status == 429:
            raise AnalyzerUnavailable(f"A2A agent at {where} is rate limiting us (429)")
        detail = response.text[:200].strip()
        retries = f", {self._retries_text()}" if status >= 500 else ""
        raise AnalyzerUnavailable(
            f"A2A agent at {where} answered HTTP {status} for {response.request.method} "
            f"{urlsplit(str(response.request.url)).path}{retries}" + (f": {detail}" if detail else "")
        )

    # --- the agent card ----------------------------------------------------------------------

    def _card_urls(self) -> list[str]:
        if urlsplit(self.base_url).path.endswith(".json"):
            return [self.base_url]
        base = self.base_url.rstrip("/")
        return [base + path for path in CARD_PATHS]

    async def agent_card(self) -> AgentCard:
        """The agent card, fetched on first use and kept; a bad card is not kept, so a fix is picked up."""
        if self.card is not None:
            return self.card
        async with self._card_lock:
            if self.card is None:
                card = await self._fetch_card(time.monotonic() + self.timeout)
                if self._has_key and _origin(card.rpc_url) != _origin(self.base_url):
                    # The key goes only where the policy said: a card cannot redirect it elsewhere.
                    raise AnalyzerUnavailable(
                        f"the agent card names {describe_endpoint(card.rpc_url)} as its endpoint, not the "
                        f"configured {self._endpoint}; the API key is sent only to the configured host"
                    )
                self.card = card
                self._client.headers[VERSION_HEADER] = card.protocol.version
                log.info(
                    "A2A agent %r: JSON-RPC endpoint %s, protocol %s",
                    card.name,
                    card.rpc_url,
                    card.protocol.version,
                )
        return self.card

    async def _fetch_card(self, deadline: float) -> AgentCard:
        urls = self._card_urls()
        for url in urls:
            try:
                response = await self._request("GET", url, deadline=deadline, allow=frozenset({404}))
            except AnalyzerUnavailable as e:
                raise AnalyzerUnavailable(f"cannot read the agent card at {url}: {e}") from e
            if response.status_code == 404:
                continue
            try:
                card = response.json()
            except ValueError as e:
                raise AnalyzerUnavailable(f"the agent card at {url} is not JSON") from e
            return self._parse_card(card, url)
        raise AnalyzerUnavailable(f"no agent card at {' or '.join(urls)} (HTTP 404)")

    @staticmethod
    def _parse_card(card: Any, card_url: str) -> AgentCard:
        if not isinstance(card, dict):
            raise AnalyzerUnavailable(f"the agent card at {card_url} is not a JSON object")
        name = card.get("name") if isinstance(card.get("name"), str) else ""
        # (url as the card gives it, protocol version, tenant) of each JSON-RPC interface; urls checked below.
        candidates: list[tuple[object, str, str]] = []
        legacy_version = str(card.get("protocolVersion") or "0.3")
        url = card.get("url")
        preferred = card.get("preferredTransport") or JSONRPC
        if isinstance(url, str) and url and str(preferred).upper() == JSONRPC:
            candidates.append((url, legacy_version, ""))
        for entry in card.get("additionalInterfaces") or []:
            if isinstance(entry, dict) and str(entry.get("transport", "")).upper() == JSONRPC:
                candidates.append((entry.get("url"), legacy_version, ""))
        for entry in card.get("supportedInterfaces") or []:
            if isinstance(entry, dict) and str(entry.get("protocolBinding", "")).upper() == JSONRPC:
                tenant = entry.get("tenant")
                version = str(entry.get("protocolVersion") or "1.0")
                candidates.append((entry.get("url"), version, tenant if isinstance(tenant, str) else ""))
        usable: list[AgentCard] = []
        unknown_versions: list[str] = []
        for candidate, version, tenant in candidates:
            if not isinstance(candidate, str) or not candidate:
                continue
            resolved = urljoin(card_url, candidate)
            if urlsplit(resolved).scheme not in ("http", "https") or not urlsplit(resolved).netloc:
                continue
            if protocol_for(version) is None:
                unknown_versions.append(version)
                continue
            usable.append(
                AgentCard(name=name, rpc_url=resolved, card_url=card_url, protocol_version=version, tenant=tenant)
            )
        if usable:
            # The newest protocol both sides speak, then the card's own order.
            return min(usable, key=lambda c: PROTOCOL_VERSIONS.index(c.protocol.version))
        if unknown_versions:
            raise AnalyzerUnavailable(
                f"the agent card at {card_url} offers JSON-RPC only for A2A protocol versions this client does not "
                f"speak ({', '.join(sorted(set(unknown_versions)))}; it speaks {' and '.join(PROTOCOL_VERSIONS)})"
            )
        raise AnalyzerUnavailable(
            f"the agent card at {card_url} names no JSON-RPC endpoint (an http(s) 'url' with "
            "preferredTransport JSONRPC, or a JSONRPC interface)"
        )

    # --- JSON-RPC ----------------------------------------------------------------------------

    async def _rpc(self, card: AgentCard, method: str, params: dict[str, Any], *, deadline: float) -> dict[str, Any]:
        """One JSON-RPC call; the ``result`` object, or `AnalyzerUnavailable` for any error envelope."""
        rid = uuid.uuid4().hex
        body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        response = await self._request("POST", card.rpc_url, deadline=deadline, json_body=body)
        where = self._endpoint
        try:
            envelope = response.json()
        except ValueError as e:
            raise AnalyzerUnavailable(f"A2A agent at {where} answered {method} with a body that is not JSON") from e
        if not isinstance(envelope, dict) or envelope.get("jsonrpc") != "2.0":
            raise AnalyzerUnavailable(f"A2A agent at {where} answered {method} without a JSON-RPC 2.0 envelope")
        error = envelope.get("error")
        if error is not None:
            code: Any = error.get("code") if isinstance(error, dict) else None
            message = error.get("message", "") if isinstance(error, dict) else str(error)
            known = ""
            if isinstance(code, int):
                known = RPC_ERRORS.get(code, "server error" if -32099 <= code <= -32000 else "")
            label = f"{code} ({known})" if known else f"{code}"
            raise AnalyzerUnavailable(f"A2A agent at {where} answered {method} with JSON-RPC error {label}: {message}")
        if envelope.get("id") != rid:
            raise AnalyzerUnavailable(f"A2A agent at {where} answered {method} with a mismatched JSON-RPC id")
        result = envelope.get("result")
        if not isinstance(result, dict):
            raise AnalyzerUnavailable(f"A2A agent at {where} answered {method} without a result object")
        return result

    def _message(self, bundle: PromptBundle, correction: str | None, context_id: str) -> dict[str, Any]:
        """The user message: one text part per bundle message, in order, then the answer schema as data."""
        parts: list[dict[str, Any]] = []
        for m in bundle.messages:
            parts.append({"kind": "text", "text": m.get("content", ""), "metadata": {ROLE_KEY: m.get("role", "user")}})
        if correction:
            parts.append({"kind": "text", "text": correction, "metadata": {ROLE_KEY: "user"}})
        parts.append(
            {
                "kind": "data",
                "data": answer_json_schema(),
                "metadata": {PURPOSE_KEY: SCHEMA_PURPOSE, "name": SCHEMA_NAME, "mimeType": "application/schema+json"},
            }
        )
        message: dict[str, Any] = {
            "kind": "message",
            "role": "user",
            "messageId": uuid.uuid4().hex,
            "parts": parts,
            "metadata": {PURPOSE_KEY: SCHEMA_NAME},
        }
        if context_id:
            message["contextId"] = context_id
        return message

    async def _ask(self, card: AgentCard, message: dict[str, Any]) -> _Answer:
        """Send one message and wait, within the timeout, for its final answer."""
        deadline = time.monotonic() + self.timeout
        protocol = card.protocol
        params = protocol.send_params(message, ACCEPTED_OUTPUT_MODES, card.tenant)
        result = protocol.send_result(await self._rpc(card, protocol.send_method, params, deadline=deadline))
        if _is_message(result):
            parts = result.get("parts")
            return _Answer(
                parts if isinstance(parts, list) else [],
                result,
                str(result.get("taskId") or ""),
                str(result.get("contextId") or ""),
            )
        if not _is_task(result):
            raise AnalyzerUnavailable(
                f"A2A agent at {self._endpoint} answered {protocol.send_method} with neither a Message nor a Task"
            )
        task = result
        polls = 0
        delay = _POLL_FIRST
        while True:
            task_id, state = self._task_state(task)
            if state == "completed":
                return self._task_answer(task)
            if state in FAILED_STATES:
                raise AnalyzerUnavailable(
                    f"A2A agent at {self._endpoint}: task {task_id} {state}{self._status_text(task)}"
                )
            if state in INTERRUPTED_STATES:
                raise AnalyzerUnavailable(
                    f"A2A agent at {self._endpoint}: task {task_id} stopped in state {state}, which an "
                    f"operator cannot answer{self._status_text(task)}"
                )
            if state not in PENDING_STATES:
                raise AnalyzerUnavailable(
                    f"A2A agent at {self._endpoint}: task {task_id} in unexpected state {state!r}"
                )
            if polls >= self.poll_attempts:
                raise AnalyzerUnavailable(
                    f"A2A agent at {self._endpoint}: task {task_id} still {state} after {polls} polls"
                )
            if time.monotonic() + delay >= deadline:
                raise AnalyzerUnavailable(
                    f"A2A agent at {self._endpoint}: task {task_id} still {state} after {self.timeout:g}s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)
            polls += 1
            params = protocol.get_params(task_id, card.tenant)
            task = protocol.get_result(await self._rpc(card, protocol.get_method, params, deadline=deadline))
            if not _is_task(task) or str(task.get("id")) != task_id:
                raise AnalyzerUnavailable(
                    f"A2A agent at {self._endpoint} answered {protocol.get_method} with another object"
                )

    def _task_state(self, task: dict[str, Any]) -> tuple[str, str]:
        task_id = task.get("id")
        status = task.get("status")
        state = status.get("state") if isinstance(status, dict) else None
        if not isinstance(task_id, str) or not task_id or not isinstance(state, str):
            raise AnalyzerUnavailable(f"A2A agent at {self._endpoint} sent a Task without an id or a status.state")
        return task_id, state.lower()

    @staticmethod
    def _status_text(task: dict[str, Any]) -> str:
        message = (task.get("status") or {}).get("message")
        parts = message.get("parts") if isinstance(message, dict) else None
        text = _parts_text(parts)[:300].strip() if isinstance(parts, list) else ""
        return f": {text}" if text else ""

    @staticmethod
    def _task_answer(task: dict[str, Any]) -> _Answer:
        parts: list[Any] = []
        for artifact in task.get("artifacts") or []:
            if isinstance(artifact, dict) and isinstance(artifact.get("parts"), list):
                parts.extend(artifact["parts"])
        message = (task.get("status") or {}).get("message")
        if isinstance(message, dict) and isinstance(message.get("parts"), list):
            parts.extend(message["parts"])
        for entry in reversed(task.get("history") or []):
            if isinstance(entry, dict) and entry.get("role") == "agent" and isinstance(entry.get("parts"), list):
                parts.extend(entry["parts"])
                break
        return _Answer(parts, task, str(task.get("id") or ""), str(task.get("contextId") or ""))

    # --- the verdict -------------------------------------------------------------------------

    async def judge(self, bundle: PromptBundle) -> A2AResult:
        """Ask the agent for a verdict on ``bundle``; a valid `A2AResult` or `AnalyzerUnavailable`.

        Everything it takes (the agent card, every message and poll, retries and answers that arrive
        slowly or byte by byte) ends at one deadline, ``timeout`` seconds from the call.
        """
        return await within_deadline(self.timeout, self._judge(bundle), f"A2A agent at {self._endpoint}")

    async def _judge(self, bundle: PromptBundle) -> A2AResult:
        card = await self.agent_card()
        prompt_tokens = completion_tokens = 0
        estimated = False
        reasons: list[str] = []
        correction: str | None = None
        context_id = ""
        for attempt in range(1, self.validation_retries + 2):
            message = self._message(bundle, correction, context_id)
            answer = await self._ask(card, message)
            context_id = answer.context_id or context_id
            usage = _usage(answer.source)
            if usage is None:
                estimated = True
                p = estimate_tokens(_parts_text(message["parts"]))
                c = estimate_tokens(_parts_text(answer.parts))
            else:
                p, c = usage
            prompt_tokens += p
            completion_tokens += c
            self.usage.add(p, c, card.name or self._endpoint)
            try:
                verdict = verdict_from_parts(answer.parts)
            except InvalidAnswer as invalid:
                reasons.append(invalid.reason)
                log.info("A2A answer %d/%d invalid: %s", attempt, self.validation_retries + 1, invalid.reason)
                correction = (
                    f"Your previous answer was invalid: {invalid.reason}. Respond again with only one JSON "
                    "object (as a data part, or as the only content of a text part) with exactly the fields "
                    "verdict, confidence, summary, root_cause, evidence_refs and suggested_fix, matching the "
                    "attached schema."
                )
                continue
            return A2AResult(
                verdict=verdict,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                attempts=attempt,
                model=card.name,
                usage_estimated=estimated,
                task_id=answer.task_id,
                context_id=answer.context_id,
            )
        raise AnalyzerUnavailable(
            f"A2A agent at {self._endpoint} gave no valid verdict in {len(reasons)} attempts; last: {reasons[-1]}"
        )
