"""A scriptable OpenAI chat completions stand-in: a real HTTP server on loopback, in its own thread."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from selfheal.testing.loopback import Fault, LoopbackServer

DEFAULT_MODEL = "stand-in-model"

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_denied", None),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    409: ("conflict", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", None),
}
_DEFAULT_MESSAGES = {
    400: "Invalid request.",
    403: "You are not allowed to use this model.",
    404: "The model does not exist or you do not have access to it.",
    408: "Request timed out.",
    409: "Conflict.",
    422: "Unprocessable entity.",
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
    504: "Gateway timeout.",
}


@dataclass
class ErrorReply:
    """An OpenAI-style error answer; a `respond_with` function may return one."""

    status: int
    message: str = ""
    type: str | None = None
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Sent verbatim instead of the OpenAI error object, for servers whose error bodies have another shape.
    body: Any = None

    def response(self) -> web.Response:
        if self.body is not None:
            return web.json_response(self.body, status=self.status, headers=self.headers)
        default_type, default_code = _ERROR_TYPES.get(
            self.status, ("server_error" if self.status >= 500 else "invalid_request_error", None)
        )
        body = {
            "error": {
                "message": self.message or _DEFAULT_MESSAGES.get(self.status, f"HTTP {self.status}"),
                "type": self.type or default_type,
                "param": self.param,
                "code": self.code if self.code is not None else default_code,
            }
        }
        return web.json_response(body, status=self.status, headers=self.headers)


Responder = Callable[[dict[str, Any]], Any]


def verdict_content(
    verdict: str = "healthy",
    confidence: int = 99,
    summary: str = "The canary behaves like the stable.",
    root_cause: str = "",
    evidence_refs: list[str] | tuple[str, ...] = (),
    suggested_fix: str = "",
) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "confidence": confidence,
        "summary": summary,
        "root_cause": root_cause,
        "evidence_refs": list(evidence_refs),
        "suggested_fix": suggested_fix,
    }


# --- how OpenAI-compatible servers treat response_format (and the other request fields that vary) -------


def _format_type(response_format: Any) -> str:
    return str(response_format.get("type")) if isinstance(response_format, dict) else ""


def _llama_cpp_python(body: dict[str, Any]) -> ErrorReply | None:
    """llama-cpp-python 0.3: its pydantic model knows only text and json_object; FastAPI's validation error
    comes back as HTTP 500 naming response_format."""
    kind = _format_type(body.get("response_format"))
    if not kind or kind in ("text", "json_object"):
        return None
    message = (
        "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': '" + kind + "', "
        "'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n"
        '  File "llama_cpp/server/app.py", line 376, in create_chat_completion\n    POST /v1/chat/completions'
    )
    return ErrorReply(500, message, type="internal_server_error")


def _llama_server(body: dict[str, Any]) -> ErrorReply | None:
    """llama.cpp's own llama-server before json_schema support: HTTP 500 with its own error object."""
    kind = _format_type(body.get("response_format"))
    if not kind or kind in ("text", "json_object"):
        return None
    message = f'response_format type must be one of "text" or "json_object", but got: {kind}'
    return ErrorReply(500, body={"error": {"code": 500, "message": message, "type": "server_error"}})


def _vllm_xgrammar(body: dict[str, Any]) -> ErrorReply | None:
    """vLLM 0.8 with the xgrammar backend: a schema with numeric bounds is refused with 400, in vLLM's
    top-level error object; json_object (extra keys ignored) is accepted."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict) or _format_type(response_format) != "json_schema":
        return None
    schema = json.dumps((response_format.get("json_schema") or {}).get("schema") or {})
    if not any(f'"{word}"' in schema for word in ("minimum", "maximum", "multipleOf")):
        return None
    message = "The provided JSON schema contains features not supported by xgrammar."
    return ErrorReply(
        400, body={"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": 400}
    )


def _lm_studio(body: dict[str, Any]) -> ErrorReply | None:
    """LM Studio: structured output only through json_schema; its error is a bare string."""
    kind = _format_type(body.get("response_format"))
    if not kind or kind in ("json_schema", "text"):
        return None
    return ErrorReply(400, body={"error": "'response_format.type' must be 'json_schema'"})


def _openai_reasoning(body: dict[str, Any]) -> ErrorReply | None:
    """OpenAI's reasoning models: max_tokens and a temperature other than 1 are refused."""
    if "max_tokens" in body:
        return ErrorReply(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    if body.get("temperature") not in (None, 1):
        return ErrorReply(
            400,
            "Unsupported value: 'temperature' does not support 0 with this model. "
            "Only the default (1) value is supported.",
            param="temperature",
            code="unsupported_value",
        )
    return None


def _no_response_format(body: dict[str, Any]) -> ErrorReply | None:
    """A gateway that knows no response_format at all (Azure OpenAI's older API versions)."""
    if body.get("response_format") is None:
        return None
    return ErrorReply(400, "Unrecognized request argument supplied: response_format", param="response_format")


def _accept(body: dict[str, Any]) -> ErrorReply | None:
    return None


@dataclass(frozen=True)
class ServerBehaviour:
    """How one server treats a request: what it refuses (given the whole body), and whether it ignores
    json_schema (the model then writes as it likes: prose around a code fence)."""

    refuse: Callable[[dict[str, Any]], ErrorReply | None] = _accept
    ignores_json_schema: bool = False


SERVERS: dict[str, ServerBehaviour] = {
    "openai": ServerBehaviour(),
    "openai-reasoning": ServerBehaviour(_openai_reasoning),
    "llama-cpp-python": ServerBehaviour(_llama_cpp_python),
    "llama-server": ServerBehaviour(_llama_server),
    "ollama-0.4": ServerBehaviour(ignores_json_schema=True),
    "vllm-0.8": ServerBehaviour(_vllm_xgrammar),
    "lm-studio": ServerBehaviour(_lm_studio),
    "no-response-format": ServerBehaviour(_no_response_format),
}


def _unconstrained(content: str) -> str:
    """What a model writes when nothing constrains it to JSON."""
    return f"Sure! Here is my assessment of the canary:\n\n```json\n{content}\n```\n\nLet me know if you need more."


def _estimate(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


class OpenAIStandIn(LoopbackServer):
    """``with OpenAIStandIn() as llm:`` serves ``POST {llm.base_url}/chat/completions``.

    By default every request gets the same healthy verdict. Script it with `respond`,
    `respond_with`, and the faults `down`, `slow`, `drip`, `malformed`, `http_error`, `no_json_schema`;
    `hold` keeps answers back until `release`, so a test can act while an analysis waits;
    `imitate` makes it treat ``response_format`` as another server does (llama.cpp, Ollama, vLLM, ...).
    Every parsed request body is kept in ``requests`` (headers in ``request_headers``).
    Safe to use from tests and from an operator running in another process.
    """

    thread_name = "openai-stand-in"

    def __init__(
        self, *, api_key: str | None = None, model: str = DEFAULT_MODEL, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self._answer: Any = verdict_content()
        self._responder: Responder | None = None
        self._no_json_schema = False
        self._server = SERVERS["openai"]
        self._gate: asyncio.Event | None = None
        self._held = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/chat/completions", self._chat)
        router.add_get("/v1/models", self._models)
        router.add_route("*", "/{tail:.*}", self._not_found)

    # --- scripting -----------------------------------------------------------------------------

    def respond(
        self,
        verdict: str = "healthy",
        confidence: int = 99,
        summary: str = "The canary behaves like the stable.",
        root_cause: str = "",
        evidence_refs: list[str] | tuple[str, ...] = (),
        suggested_fix: str = "",
    ) -> None:
        """Answer every request with this verdict."""
        with self._lock:
            self._responder = None
            self._answer = verdict_content(verdict, confidence, summary, root_cause, evidence_refs, suggested_fix)

    def respond_with(self, fn: Responder) -> None:
        """Answer with ``fn(request_body)``: a dict (sent as JSON content), a str (sent as is) or an `ErrorReply`."""
        with self._lock:
            self._responder = fn

    def malformed(self, times: int | None = None, kind: str = "not_json") -> None:
        """Answer with unusable content: ``not_json`` (prose), ``wrong_schema`` (JSON, wrong fields) or ``empty``."""
        if kind not in ("not_json", "wrong_schema", "empty"):
            raise ValueError(f"unknown malformed kind {kind!r}")
        with self._lock:
            self._faults.append(Fault("malformed", times, kind))

    def raw(
        self,
        body: bytes | str,
        *,
        content_type: str = "application/json",
        status: int = 200,
        headers: dict[str, str] | None = None,
        times: int | None = None,
    ) -> None:
        """Answer with exactly these bytes: a body no real endpoint should send (HTML, an event stream,
        a JSON array, a huge body), or a redirect (``status`` 3xx with a ``Location`` header)."""
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._faults.append(Fault("raw", times, (status, content_type, data, dict(headers or {}))))

    def redirect(self, location: str, status: int = 307, times: int | None = None) -> None:
        """Answer with a redirect to ``location``, as a proxy or a moved endpoint would."""
        self.raw(b"", content_type="text/plain", status=status, headers={"Location": location}, times=times)

    def http_error(
        self,
        status: int = 500,
        times: int | None = None,
        message: str = "",
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        """Answer with an OpenAI-style error; ``retry_after`` (seconds) is sent as ``retry-after-ms``."""
        headers = {"retry-after-ms": str(int(retry_after * 1000))} if retry_after is not None else {}
        with self._lock:
            self._faults.append(Fault("http_error", times, ErrorReply(status, message, code=code, headers=headers)))

    def hold(self) -> None:
        """Keep every answer back, from now until `release`; ``held`` counts the requests waiting."""
        self._call(self._set_gate(False))

    def release(self) -> None:
        """Let the held requests (and all later ones) be answered."""
        self._call(self._set_gate(True))

    @property
    def held(self) -> int:
        with self._lock:
            return self._held

    async def _init_loop_state(self) -> None:
        await super()._init_loop_state()
        self._gate = asyncio.Event()
        self._gate.set()

    async def _set_gate(self, open_: bool) -> None:
        assert self._gate is not None
        if open_:
            self._gate.set()
        else:
            self._gate.clear()

    async def _wait_at_gate(self) -> None:
        """Wait while answers are held, or until the server goes down."""
        assert self._gate is not None and self._stopping is not None
        if self._gate.is_set():
            return
        with self._lock:
            self._held += 1
        try:
            gate, stopping = asyncio.ensure_future(self._gate.wait()), asyncio.ensure_future(self._stopping.wait())
            _, pending = await asyncio.wait({gate, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        finally:
            with self._lock:
                self._held -= 1

    def no_json_schema(self, enabled: bool = True) -> None:
        """Reject ``response_format`` of type ``json_schema`` with 400, like endpoints without structured output."""
        with self._lock:
            self._no_json_schema = enabled

    def imitate(self, server: str) -> None:
        """Treat ``response_format`` as ``server`` does: one of `SERVERS` (``openai`` is the default)."""
        if server not in SERVERS:
            raise ValueError(f"unknown server {server!r}; known: {sorted(SERVERS)}")
        with self._lock:
            self._server = SERVERS[server]

    def reset(self) -> None:
        """Back to the default healthy answer, no faults, no held answers, no recorded requests (stays up or down)."""
        if self._loop is not None:
            self.release()
        with self._lock:
            self._answer = verdict_content()
            self._responder = None
            self._server = SERVERS["openai"]
            self.clear_faults()
            self.requests.clear()
            self.request_headers.clear()

    def clear_faults(self) -> None:
        with self._lock:
            self._clear_faults()
            self._no_json_schema = False

    @property
    def completions(self) -> int:
        """Requests received on chat completions."""
        return len(self.requests)

    # --- serving -------------------------------------------------------------------------------

    def _check_auth(self, request: web.Request) -> ErrorReply | None:
        if not self.api_key:
            return None
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return ErrorReply(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
            )
        key = header[len("Bearer ") :]
        if key != self.api_key:
            shown = (key[:3] + "*" * 4 + key[-4:]) if len(key) > 8 else "*" * len(key)
            return ErrorReply(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key in your account settings.",
                code="invalid_api_key",
            )
        return None

    async def _models(self, request: web.Request) -> web.Response:
        denied = self._check_auth(request)
        if denied:
            return denied.response()
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "selfheal-stand-in"}],
            }
        )

    async def _not_found(self, request: web.Request) -> web.Response:
        return ErrorReply(404, f"Invalid URL ({request.method} {request.path})", code=None).response()

    async def _chat(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return ErrorReply(400, "We could not parse the JSON body of your request.").response()
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(dict(request.headers))
        denied = self._check_auth(request)
        if denied:
            return denied.response()
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return ErrorReply(400, "you must provide a model parameter", param="model").response()
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return ErrorReply(400, "'messages' must be a non-empty array", param="messages").response()
        if body.get("stream"):
            return ErrorReply(400, "streaming is not supported by the stand-in", param="stream").response()
        await self._wait_at_gate()
        await self._pause()
        response_format = body.get("response_format")
        with self._lock:
            no_schema, server = self._no_json_schema, self._server
        if no_schema and _format_type(response_format) == "json_schema":
            return ErrorReply(
                400,
                "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
                param="response_format",
            ).response()
        refusal = server.refuse(body)
        if refusal is not None:
            return refusal.response()
        fault = self._take_fault(("http_error", "raw", "malformed"))
        if fault is not None and fault.kind == "http_error" and fault.detail is not None:
            return fault.detail.response()
        if fault is not None and fault.kind == "raw":
            status, content_type, data, headers = fault.detail
            return web.Response(status=status, body=data, headers={"Content-Type": content_type, **headers})
        if fault is not None and fault.kind == "malformed":
            content = {
                "not_json": "I think the canary looks fine, promote it!",
                "wrong_schema": json.dumps({"verdict": "promote", "confidence": "very", "why": "looks ok"}),
                "empty": "",
            }[fault.detail]
        else:
            with self._lock:
                responder, answer = self._responder, self._answer
            reply = responder(body) if responder is not None else answer
            if isinstance(reply, ErrorReply):
                return reply.response()
            if hasattr(reply, "model_dump_json"):
                content = reply.model_dump_json()
            elif isinstance(reply, str):
                content = reply
            else:
                content = json.dumps(reply)
            if server.ignores_json_schema and _format_type(response_format) == "json_schema":
                content = _unconstrained(content)
        prompt_tokens = sum(_estimate(str(m.get("content", ""))) + 4 for m in messages if isinstance(m, dict)) + 3
        finish_reason = "stop"
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(cap, int) and _estimate(content) > cap:  # the model is stopped at the cap, mid-answer
            content, finish_reason = content[: cap * 4], "length"
        completion_tokens = _estimate(content)
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "system_fingerprint": "fp_selfheal_stand_in",
            },
            headers={"x-request-id": f"req_{uuid.uuid4().hex[:16]}"},
        )
