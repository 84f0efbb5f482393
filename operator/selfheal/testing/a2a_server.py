"""A scriptable A2A agent stand-in (agent card, JSON-RPC message/send and tasks/get): a real HTTP server on loopback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from selfheal.testing.llm_server import verdict_content
from selfheal.testing.loopback import Fault, LoopbackServer

PROTOCOL_VERSION = "0.3.0"
RPC_PATH = "/a2a/v1"
DEFAULT_NAME = "selfheal-stand-in-agent"

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
TASK_NOT_FOUND = -32001
TASK_NOT_CANCELABLE = -32002
PUSH_NOT_SUPPORTED = -32003
UNSUPPORTED_OPERATION = -32004
CONTENT_TYPE_NOT_SUPPORTED = -32005
INVALID_AGENT_RESPONSE = -32006

RPC_MESSAGES = {
    PARSE_ERROR: "Invalid JSON payload",
    INVALID_REQUEST: "Request payload validation error",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid parameters",
    INTERNAL_ERROR: "Internal error",
    TASK_NOT_FOUND: "Task not found",
    TASK_NOT_CANCELABLE: "Task cannot be canceled",
    PUSH_NOT_SUPPORTED: "Push Notification is not supported",
    UNSUPPORTED_OPERATION: "This operation is not supported",
    CONTENT_TYPE_NOT_SUPPORTED: "Incompatible content types",
    INVALID_AGENT_RESPONSE: "Invalid agent response",
}
TERMINAL_STATES = frozenset({"completed", "failed", "canceled", "rejected"})
KNOWN_STATES = frozenset({"submitted", "working", "input-required", "auth-required", "unknown"}) | TERMINAL_STATES

Responder = Callable[[dict[str, Any]], Any]


@dataclass
class _Task:
    id: str
    context_id: str
    states: list[str]
    answer_parts: list[dict[str, Any]]
    history: list[dict[str, Any]]
    failure: str = ""

    def snapshot(self) -> dict[str, Any]:
        state = self.states[0]
        status: dict[str, Any] = {"state": state, "timestamp": _now()}
        task: dict[str, Any] = {
            "kind": "task",
            "id": self.id,
            "contextId": self.context_id,
            "status": status,
            "history": self.history,
        }
        if state == "completed":
            task["artifacts"] = [
                {"artifactId": f"verdict-{self.id[:8]}", "name": "verdict", "parts": self.answer_parts}
            ]
        elif state in ("failed", "rejected", "canceled"):
            status["message"] = _agent_message(
                [{"kind": "text", "text": self.failure or f"task {state}"}], self.context_id, self.id
            )
        return task

    def advance(self) -> None:
        if len(self.states) > 1:
            self.states.pop(0)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _agent_message(parts: list[dict[str, Any]], context_id: str, task_id: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "kind": "message",
        "role": "agent",
        "messageId": uuid.uuid4().hex,
        "parts": parts,
        "contextId": context_id,
    }
    if task_id:
        message["taskId"] = task_id
    return message


def _rpc_result(rid: Any, result: Any) -> web.Response:
    return web.json_response({"jsonrpc": "2.0", "id": rid, "result": result})


def _rpc_error(rid: Any, code: int, message: str = "", data: Any = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message or RPC_MESSAGES.get(code, "Server error")}
    if data is not None:
        error["data"] = data
    # JSON-RPC errors travel with HTTP 200, as the A2A JSON-RPC binding does.
    return web.json_response({"jsonrpc": "2.0", "id": rid, "error": error})


class A2AAgentStandIn(LoopbackServer):
    """``with A2AAgentStandIn() as agent:`` serves an A2A 0.3 agent at ``agent.base_url``.

    ``GET /.well-known/agent-card.json`` (and the older ``agent.json``) returns the card, whose
    ``url`` is the JSON-RPC endpoint; ``message/send`` answers with an agent Message holding a
    healthy verdict as a data part by default. Script it with `respond`, `respond_as_task`,
    `respond_with`, `set_card` and the faults `down`, `slow`, `malformed`, `fail_task`,
    `rpc_error`, `http_error`, `require_key`. Every parsed JSON-RPC body is kept in ``requests``
    (headers in ``request_headers``). Safe to use from tests and from an operator in another process.
    """

    thread_name = "a2a-stand-in"

    def __init__(
        self, *, api_key: str | None = None, name: str = DEFAULT_NAME, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.name = name
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.card_requests = 0
        self._answer: dict[str, Any] = verdict_content()
        self._answer_as = "data"
        self._responder: Responder | None = None
        self._task_states: list[str] | None = None
        self._card_override: dict[str, Any] | None = None
        self._tasks: dict[str, _Task] = {}

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rpc_url(self) -> str:
        return f"{self.base_url}{RPC_PATH}"

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/.well-known/agent-card.json", self._card)
        router.add_get("/.well-known/agent.json", self._card)
        router.add_post(RPC_PATH, self._rpc)
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
        *,
        as_part: str = "data",
    ) -> None:
        """Answer every message/send with this verdict, as a ``data`` part or as JSON in a ``text`` part."""
        if as_part not in ("data", "text"):
            raise ValueError(f"unknown part kind {as_part!r}")
        with self._lock:
            self._responder = None
            self._answer_as = as_part
            self._answer = verdict_content(verdict, confidence, summary, root_cause, evidence_refs, suggested_fix)

    def respond_with(self, fn: Responder) -> None:
        """Answer with ``fn(json_rpc_body)``: a dict (sent as a data part), a str (a text part) or a list of parts."""
        with self._lock:
            self._responder = fn

    def respond_as_task(self, states: list[str] | tuple[str, ...] = ("working", "completed")) -> None:
        """Answer message/send with a Task in ``states[0]``; each tasks/get moves it to the next state.

        The verdict becomes an artifact once the task is ``completed``. Call with ``states=()`` to
        go back to answering with a Message.
        """
        for state in states:
            if state not in KNOWN_STATES:
                raise ValueError(f"unknown task state {state!r}")
        with self._lock:
            self._task_states = list(states) or None

    def set_card(self, card: dict[str, Any] | None) -> None:
        """Serve this agent card instead of the generated one (None: back to the generated one)."""
        with self._lock:
            self._card_override = card

    def require_key(self, key: str | None) -> None:
        """Answer 401 to any request without ``Authorization: Bearer <key>`` (None: no auth)."""
        with self._lock:
            self.api_key = key

    def malformed(self, times: int | None = None, kind: str = "not_json") -> None:
        """Answer with unusable content: ``not_json`` (prose), ``wrong_schema`` (wrong fields) or ``empty``."""
        if kind not in ("not_json", "wrong_schema", "empty"):
            raise ValueError(f"unknown malformed kind {kind!r}")
        with self._lock:
            self._faults.append(Fault("malformed", times, kind))

    def fail_task(
        self, times: int | None = None, state: str = "failed", message: str = "the analysis model crashed"
    ) -> None:
        """Answer message/send with a Task that ends in ``state`` (failed, rejected, canceled...)."""
        if state not in KNOWN_STATES:
            raise ValueError(f"unknown task state {state!r}")
        with self._lock:
            self._faults.append(Fault("fail_task", times, (state, message)))

    def rpc_error(self, code: int = INTERNAL_ERROR, times: int | None = None, message: str = "") -> None:
        """Answer message/send with a JSON-RPC error envelope carrying ``code``."""
        with self._lock:
            self._faults.append(Fault("rpc_error", times, (code, message)))

    def http_error(self, status: int = 503, times: int | None = None) -> None:
        """Answer the JSON-RPC endpoint with a bare HTTP error status (e.g. a proxy's 502/503)."""
        with self._lock:
            self._faults.append(Fault("http_error", times, status))

    def redirect(self, location: str, status: int = 307, times: int | None = None) -> None:
        """Answer message/send with a redirect to ``location``, as a moved agent or a proxy would."""
        with self._lock:
            self._faults.append(Fault("redirect", times, (status, location)))

    def reset(self) -> None:
        """Back to the default healthy Message answer, no faults, no recorded requests (stays up or down)."""
        with self._lock:
            self._answer = verdict_content()
            self._answer_as = "data"
            self._responder = None
            self._task_states = None
            self._card_override = None
            self._clear_faults()
            self._tasks.clear()
            self.requests.clear()
            self.request_headers.clear()
            self.card_requests = 0

    def clear_faults(self) -> None:
        self._clear_faults()

    @property
    def sends(self) -> list[dict[str, Any]]:
        """The message/send requests received."""
        return [r for r in self.requests if isinstance(r, dict) and r.get("method") == "message/send"]

    @property
    def polls(self) -> list[dict[str, Any]]:
        """The tasks/get requests received."""
        return [r for r in self.requests if isinstance(r, dict) and r.get("method") == "tasks/get"]

    # --- serving -------------------------------------------------------------------------------

    def card(self) -> dict[str, Any]:
        """The agent card as served."""
        with self._lock:
            if self._card_override is not None:
                return self._card_override
            key = self.api_key
        card: dict[str, Any] = {
            "protocolVersion": PROTOCOL_VERSION,
            "name": self.name,
            "description": "Judges Argo Rollouts canaries: compares canary with stable evidence and answers "
            "with a verdict and a confidence.",
            "url": self.rpc_url,
            "preferredTransport": "JSONRPC",
            "version": "1.0.0",
            "capabilities": {"streaming": False, "pushNotifications": False, "stateTransitionHistory": False},
            "defaultInputModes": ["text/plain", "application/json"],
            "defaultOutputModes": ["application/json", "text/plain"],
            "skills": [
                {
                    "id": "canary-verdict",
                    "name": "Canary verdict",
                    "description": "Decides whether a canary is healthy, unhealthy or inconclusive.",
                    "tags": ["argo-rollouts", "canary", "analysis"],
                    "inputModes": ["text/plain", "application/json"],
                    "outputModes": ["application/json"],
                }
            ],
        }
        if key:
            card["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            card["security"] = [{"bearer": []}]
        return card

    def _denied(self, request: web.Request) -> web.Response | None:
        with self._lock:
            key = self.api_key
        if not key:
            return None
        header = request.headers.get("Authorization", "")
        if header == f"Bearer {key}":
            return None
        reason = "missing bearer token" if not header.startswith("Bearer ") else "invalid bearer token"
        return web.json_response(
            {"error": "unauthorized", "message": reason},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="a2a", error="invalid_token"'},
        )

    async def _card(self, request: web.Request) -> web.Response:
        with self._lock:
            self.card_requests += 1
        return web.json_response(self.card())

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "not found", "path": request.path}, status=404)

    async def _rpc(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return _rpc_error(None, PARSE_ERROR)
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(dict(request.headers))
        denied = self._denied(request)
        if denied is not None:
            return denied
        if not isinstance(body, dict):
            return _rpc_error(None, INVALID_REQUEST, "a batch or a non-object request is not supported")
        rid = body.get("id")
        if (
            body.get("jsonrpc") != "2.0"
            or not isinstance(body.get("method"), str)
            or not isinstance(rid, (str, int))
            or isinstance(rid, bool)
        ):
            return _rpc_error(rid if isinstance(rid, (str, int)) else None, INVALID_REQUEST)
        params = body.get("params")
        if not isinstance(params, dict):
            return _rpc_error(rid, INVALID_PARAMS, "params must be an object")
        method = body["method"]
        if method == "message/send":
            return await self._message_send(rid, params, body)
        if method == "tasks/get":
            return self._tasks_get(rid, params)
        if method in ("message/stream", "tasks/resubscribe"):
            return _rpc_error(rid, UNSUPPORTED_OPERATION, "streaming is not supported by this agent")
        if method.startswith("tasks/pushNotificationConfig/"):
            return _rpc_error(rid, PUSH_NOT_SUPPORTED)
        return _rpc_error(rid, METHOD_NOT_FOUND, f"Method not found: {method}")

    @staticmethod
    def _check_message(params: dict[str, Any]) -> str | None:
        message = params.get("message")
        if not isinstance(message, dict):
            return "params.message is required"
        if message.get("role") not in ("user", "agent"):
            return "message.role must be 'user' or 'agent'"
        if not isinstance(message.get("messageId"), str) or not message["messageId"]:
            return "message.messageId is required"
        parts = message.get("parts")
        if not isinstance(parts, list) or not parts:
            return "message.parts must be a non-empty array"
        for i, part in enumerate(parts):
            if not isinstance(part, dict):
                return f"message.parts[{i}] must be an object"
            kind = part.get("kind")
            if kind == "text" and not isinstance(part.get("text"), str):
                return f"message.parts[{i}].text must be a string"
            if kind == "data" and not isinstance(part.get("data"), dict):
                return f"message.parts[{i}].data must be an object"
            if kind == "file" and not isinstance(part.get("file"), dict):
                return f"message.parts[{i}].file must be an object"
            if kind not in ("text", "data", "file"):
                return f"message.parts[{i}].kind must be text, data or file"
        return None

    def _answer_parts(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        fault = self._take_fault(("malformed",))
        if fault is not None:
            malformed: dict[str, list[dict[str, Any]]] = {
                "not_json": [{"kind": "text", "text": "I think the canary looks fine, promote it!"}],
                "wrong_schema": [{"kind": "data", "data": {"verdict": "promote", "confidence": "very", "why": "ok"}}],
                "empty": [{"kind": "text", "text": ""}],
            }
            return malformed[fault.detail]
        with self._lock:
            responder, answer, as_part = self._responder, dict(self._answer), self._answer_as
        reply: Any = responder(body) if responder is not None else answer
        if isinstance(reply, list):
            return reply
        if isinstance(reply, str):
            return [{"kind": "text", "text": reply}]
        if hasattr(reply, "model_dump"):
            reply = reply.model_dump()
        if responder is None and as_part == "text":
            return [{"kind": "text", "text": json.dumps(reply)}]
        return [{"kind": "data", "data": reply}]

    async def _message_send(self, rid: Any, params: dict[str, Any], body: dict[str, Any]) -> web.Response:
        problem = self._check_message(params)
        if problem:
            return _rpc_error(rid, INVALID_PARAMS, problem)
        await self._pause()
        http = self._take_fault(("http_error",))
        if http is not None:
            return web.json_response({"error": "upstream unavailable"}, status=http.detail)
        moved = self._take_fault(("redirect",))
        if moved is not None:
            status, location = moved.detail
            return web.Response(status=status, headers={"Location": location})
        rpc = self._take_fault(("rpc_error",))
        if rpc is not None:
            code, text = rpc.detail
            return _rpc_error(rid, code, text)
        message = params["message"]
        context_id = message.get("contextId") or uuid.uuid4().hex
        failing = self._take_fault(("fail_task",))
        with self._lock:
            states = list(self._task_states) if self._task_states else None
        if failing is None and states is None:
            parts = self._answer_parts(body)
            return _rpc_result(rid, _agent_message(parts, context_id))
        task_id = uuid.uuid4().hex
        user = {**message, "contextId": context_id, "taskId": task_id}
        if failing is not None:
            state, text = failing.detail
            task = _Task(task_id, context_id, [state], [], [user], failure=text)
        else:
            assert states is not None
            task = _Task(task_id, context_id, states, self._answer_parts(body), [user])
        with self._lock:
            self._tasks[task_id] = task
            return _rpc_result(rid, task.snapshot())

    def _tasks_get(self, rid: Any, params: dict[str, Any]) -> web.Response:
        task_id = params.get("id")
        if not isinstance(task_id, str):
            return _rpc_error(rid, INVALID_PARAMS, "params.id must be a string")
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return _rpc_error(rid, TASK_NOT_FOUND)
            task.advance()
            snapshot = task.snapshot()
        length = params.get("historyLength")
        if isinstance(length, int) and length >= 0:
            snapshot["history"] = snapshot["history"][-length:] if length else []
        return _rpc_result(rid, snapshot)
