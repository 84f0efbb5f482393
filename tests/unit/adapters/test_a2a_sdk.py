"""The A2A client against agents built with the official a2a-sdk: its server, its agent card, its JSON.

The stand-in in selfheal.testing shares the client's reading of the spec; these agents do not. Each is a tiny
`AgentExecutor` answering the verdict JSON, served by the SDK's own Starlette routes under uvicorn on
127.0.0.1, and driven by our `A2AClient` end to end: card discovery, SendMessage (or message/send through
the SDK's 0.3 compatibility layer), the Task or Message it answers, the verdict parsed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from a2a.helpers import get_data_parts, new_data_part, new_task_from_user_message, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import a2a_pb2 as a2a
from starlette.applications import Starlette

from selfheal.adapters.a2a import ROLE_KEY, A2AClient
from selfheal.domain.evidence import Evidence
from selfheal.domain.logdiff import diff_logs
from selfheal.domain.prompt import answer_json_schema, build_messages
from selfheal.errors import AnalyzerUnavailable
from selfheal.testing.llm_server import verdict_content

RPC_PATH = "/a2a"
VERDICT = verdict_content(
    "unhealthy", 87, "The canary panics with index out of range.", "a bounds check", ["T1"], "check the index"
)


def as_received(message: a2a.Message) -> dict[str, Any]:
    """What the executor got, read through the SDK: role, context, text parts with their metadata, data parts."""
    return {
        "role": a2a.Role.Name(message.role),
        "contextId": message.context_id,
        "texts": [(part.text, dict(part.metadata)) for part in message.parts if part.HasField("text")],
        "data": [(get_data_parts([part])[0], part.media_type) for part in message.parts if part.HasField("data")],
    }


@dataclass
class Seen:
    """What the agent received, as the SDK handed it to the executor."""

    inputs: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return [b["method"] for b in self.bodies]


Behaviour = Callable[[RequestContext, EventQueue], Any]


class VerdictAgent(AgentExecutor):
    """Answers every message the way ``behaviour`` does; records what it was sent."""

    def __init__(self, behaviour: Behaviour, seen: Seen) -> None:
        self.behaviour, self.seen = behaviour, seen

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        self.seen.inputs.append(context.get_user_input())
        if context.message is not None:
            self.seen.messages.append(as_received(context.message))
        await self.behaviour(context, event_queue)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


async def answer_with_data_message(context: RequestContext, queue: EventQueue) -> None:
    message = new_text_message("", context_id=context.context_id, role=a2a.Role.ROLE_AGENT)
    del message.parts[:]
    message.parts.append(new_data_part(VERDICT))
    await queue.enqueue_event(message)


async def answer_with_text_message(context: RequestContext, queue: EventQueue) -> None:
    await queue.enqueue_event(
        new_text_message(json.dumps(VERDICT), context_id=context.context_id, role=a2a.Role.ROLE_AGENT)
    )


def _task_updater(context: RequestContext, queue: EventQueue) -> tuple[a2a.Task, TaskUpdater]:
    assert context.message is not None
    task = context.current_task or new_task_from_user_message(context.message)
    return task, TaskUpdater(queue, task.id, task.context_id)


async def answer_with_task_artifact(context: RequestContext, queue: EventQueue) -> None:
    """A long-running agent's shape: a Task, working, then an artifact and completed."""
    task, updater = _task_updater(context, queue)
    await queue.enqueue_event(task)
    await updater.update_status(a2a.TaskState.TASK_STATE_WORKING)
    await asyncio.sleep(0.2)
    await updater.add_artifact([new_data_part(VERDICT)], name="verdict")
    await updater.update_status(a2a.TaskState.TASK_STATE_COMPLETED)


async def fail_the_task(context: RequestContext, queue: EventQueue) -> None:
    task, updater = _task_updater(context, queue)
    await queue.enqueue_event(task)
    reason = new_text_message("the model backend is out of quota", context_id=task.context_id)
    await updater.update_status(a2a.TaskState.TASK_STATE_FAILED, message=reason)


async def ask_for_input(context: RequestContext, queue: EventQueue) -> None:
    task, updater = _task_updater(context, queue)
    await queue.enqueue_event(task)
    question = new_text_message("Which namespace is production?", context_id=task.context_id)
    await updater.update_status(a2a.TaskState.TASK_STATE_INPUT_REQUIRED, message=question)


async def answer_wrongly_once(context: RequestContext, queue: EventQueue) -> None:
    """A first answer that is not a verdict, then a valid one when asked again in the same context."""
    task, updater = _task_updater(context, queue)
    await queue.enqueue_event(task)
    first = not context.related_tasks and "invalid" not in context.get_user_input()
    part = new_text_part("The canary looks fine to me!") if first else new_data_part(VERDICT)
    await updater.add_artifact([part], name="verdict")
    await updater.update_status(a2a.TaskState.TASK_STATE_COMPLETED)


class SDKAgent:
    """An a2a-sdk agent served by uvicorn on 127.0.0.1 in a thread of its own."""

    def __init__(self, behaviour: Behaviour, *, versions: tuple[str, ...] = ("1.0",), tenant: str = "") -> None:
        self.seen = Seen()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        card = a2a.AgentCard(
            name="sdk-verdict-agent",
            description="Judges canaries",
            version="1.0.0",
            supported_interfaces=[
                a2a.AgentInterface(
                    url=self.base_url + RPC_PATH, protocol_binding="JSONRPC", protocol_version=v, tenant=tenant
                )
                for v in versions
            ],
            capabilities=a2a.AgentCapabilities(streaming=False),
            default_input_modes=["text/plain", "application/json"],
            default_output_modes=["application/json", "text/plain"],
            skills=[a2a.AgentSkill(id="judge", name="judge a canary", description="A verdict", tags=["canary"])],
        )
        handler = DefaultRequestHandler(
            agent_executor=VerdictAgent(behaviour, self.seen), task_store=InMemoryTaskStore(), agent_card=card
        )
        app = Starlette(
            routes=[
                *create_agent_card_routes(card),
                *create_jsonrpc_routes(handler, RPC_PATH, enable_v0_3_compat="0.3" in versions),
            ]
        )

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            """The SDK's app, with each JSON-RPC request's headers and body kept for the tests."""
            if scope["type"] != "http" or scope["method"] != "POST":
                return await app(scope, receive, send)
            self.seen.headers.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
            chunks = []
            while True:
                event = await receive()
                chunks.append(event.get("body", b""))
                if not event.get("more_body"):
                    break
            self.seen.bodies.append(json.loads(b"".join(chunks)))
            replayed = iter([{"type": "http.request", "body": b"".join(chunks), "more_body": False}])

            async def replay() -> Any:
                return next(replayed, None) or await receive()

            return await app(scope, replay, send)

        self._server = uvicorn.Server(uvicorn.Config(recording, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> SDKAgent:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "the SDK agent did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@pytest.fixture
def bundle() -> Any:
    stable = "\n".join(f"INFO served colour=blue id={i}" for i in range(100))
    canary = stable + "\n" + "\n".join(["panic: runtime error: index out of range [5] with length 3"] * 20)
    return build_messages(Evidence(namespace="shop", rollout="web", canary_hash="abc"), diff_logs(canary, stable))


def client_for(agent: SDKAgent, timeout: float = 10) -> A2AClient:
    return A2AClient(agent.base_url, timeout=timeout, max_retries=1)


@pytest.mark.parametrize(
    "behaviour",
    [answer_with_data_message, answer_with_text_message, answer_with_task_artifact],
    ids=["data-message", "text-message", "task-with-artifact"],
)
async def test_verdict_from_an_sdk_agent(behaviour: Behaviour, bundle: Any) -> None:
    with SDKAgent(behaviour) as agent:
        async with client_for(agent) as client:
            result = await client.judge(bundle)
            assert client.card is not None
            assert client.card.protocol.version == "1.0" and client.card.name == "sdk-verdict-agent"
    # The protobuf Struct carries the confidence as 87.0; it is still the integer 87.
    assert result.verdict.model_dump() == VERDICT
    assert result.attempts == 1 and result.model == "sdk-verdict-agent"
    if behaviour is answer_with_task_artifact:
        assert result.task_id and result.context_id
    # The SDK routed SendMessage with the 1.0 header; the agent got the prompt as text and the schema as data.
    assert agent.seen.methods == ["SendMessage"]
    assert all(h.get("a2a-version") == "1.0" for h in agent.seen.headers)
    (received,) = agent.seen.messages
    assert received["role"] == "ROLE_USER"
    assert [text for text, _ in received["texts"]] == [m["content"] for m in bundle.messages]
    assert [meta[ROLE_KEY] for _, meta in received["texts"]] == [m["role"] for m in bundle.messages]
    ((schema, media_type),) = received["data"]
    assert schema == answer_json_schema()  # numbers come back as floats: 0.0 == 0
    assert media_type == "application/schema+json"
    assert "index out of range" in agent.seen.inputs[0]


async def test_a_failed_task_names_the_agents_reason(bundle: Any) -> None:
    with SDKAgent(fail_the_task) as agent:
        async with client_for(agent) as client:
            with pytest.raises(AnalyzerUnavailable, match=r"task \S+ failed: the model backend is out of quota"):
                await client.judge(bundle)


async def test_an_agent_asking_a_question_is_not_a_verdict(bundle: Any) -> None:
    with SDKAgent(ask_for_input) as agent:
        async with client_for(agent) as client:
            with pytest.raises(AnalyzerUnavailable, match=r"stopped in state input-required.*Which namespace"):
                await client.judge(bundle)


async def test_an_invalid_answer_is_asked_again_in_the_same_context(bundle: Any) -> None:
    with SDKAgent(answer_wrongly_once) as agent:
        async with client_for(agent) as client:
            result = await client.judge(bundle)
    assert result.attempts == 2 and result.verdict.verdict == "unhealthy"
    first, second = agent.seen.messages
    assert second["contextId"] == result.context_id
    assert not any("invalid" in text for text, _ in first["texts"])
    assert any("invalid" in text for text, _ in second["texts"])


async def test_the_sdk_0_3_compatibility_layer_reads_us_too(bundle: Any) -> None:
    """A card offering only 0.3 (an SDK agent with its compatibility layer on): message/send, 0.3 shapes."""
    with SDKAgent(answer_with_task_artifact, versions=("0.3",)) as agent:
        async with client_for(agent) as client:
            result = await client.judge(bundle)
            assert client.card is not None and client.card.protocol.version == "0.3"
    assert result.verdict.model_dump() == VERDICT
    assert agent.seen.methods == ["message/send"]
    assert agent.seen.headers[-1].get("a2a-version") == "0.3"


async def test_a_card_offering_both_versions_gets_1_0(bundle: Any) -> None:
    with SDKAgent(answer_with_data_message, versions=("0.3", "1.0")) as agent:
        async with client_for(agent) as client:
            await client.judge(bundle)
            assert client.card is not None and client.card.protocol.version == "1.0"


async def test_a_tenant_on_the_interface_travels_with_each_call(bundle: Any) -> None:
    with SDKAgent(answer_with_task_artifact, tenant="team-a") as agent:
        async with client_for(agent) as client:
            assert (await client.judge(bundle)).verdict.verdict == "unhealthy"
    assert [b["params"].get("tenant") for b in agent.seen.bodies] == ["team-a"]


async def test_an_agent_speaking_only_a_future_version_is_refused_clearly(bundle: Any) -> None:
    with SDKAgent(answer_with_data_message, versions=("2.0",)) as agent:
        async with client_for(agent) as client:
            with pytest.raises(AnalyzerUnavailable, match=r"versions this client does not speak \(2\.0"):
                await client.judge(bundle)
    assert agent.seen.messages == []
