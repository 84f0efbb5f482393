"""The verdict endpoint over real HTTP: how questions arrive (query or JSON body), the bearer token, bounded
requests, and which failures become which status (Argo counts every non-2xx as a measurement error)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from selfheal.adapters.verdict_server import (
    MAX_BODY_BYTES,
    PATH,
    VerdictServer,
    start_verdict_server,
    stop_verdict_server,
)
from selfheal.domain.inline import VerdictAnswer, VerdictRequest
from selfheal.domain.verdict import VerdictKind
from selfheal.errors import ConfigError, Refused, TransientError

QUESTION = {"namespace": "shop", "rollout": "web", "canary": "6c5f8b8d4", "stable": "7d84d44bb8"}


class Answers:
    """Answers healthy, or raises what the test puts in ``raise_next``; keeps the questions it got."""

    def __init__(self) -> None:
        self.questions: list[VerdictRequest] = []
        self.raise_next: Exception | None = None

    async def __call__(self, question: VerdictRequest) -> VerdictAnswer:
        self.questions.append(question)
        if self.raise_next is not None:
            error, self.raise_next = self.raise_next, None
            raise error
        return VerdictAnswer(
            verdict=VerdictKind.HEALTHY,
            healthy=True,
            score=0.93,
            confidence=93,
            summary="no new errors",
            judged=VerdictKind.HEALTHY,
            rollout=question.rollout,
            canary=question.canary,
        )


@pytest.fixture
async def served() -> AsyncIterator[tuple[VerdictServer, Answers, list[tuple[float, dict[str, Any]]]]]:
    answers, observed = Answers(), []
    server = await start_verdict_server(
        answers, "127.0.0.1", 0, observe=lambda seconds, **labels: observed.append((seconds, labels))
    )
    yield server, answers, observed
    await stop_verdict_server(server)


async def test_a_get_with_the_template_args_in_the_query_is_answered(served: Any) -> None:
    server, answers, observed = served
    async with httpx.AsyncClient() as client:
        response = await client.get(server.url, params={**QUESTION, "timeoutSeconds": "20"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert (body["verdict"], body["healthy"], body["score"], body["confidence"]) == ("healthy", True, 0.93, 93)
    assert body["canary"] == "6c5f8b8d4" and body["dryRun"] is False
    [question] = answers.questions
    assert (question.stable, question.timeout_seconds) == ("7d84d44bb8", 20.0)
    assert observed and observed[0][1] == {"status": "200"}


async def test_a_post_with_a_json_body_is_answered(served: Any) -> None:
    server, answers, _ = served
    async with httpx.AsyncClient() as client:
        response = await client.post(server.url, json=QUESTION)
        put = await client.put(server.url, json=QUESTION)
    assert response.status_code == 200 == put.status_code
    assert [q.rollout for q in answers.questions] == ["web", "web"]


@pytest.mark.parametrize(
    ("error", "status", "text"),
    [
        (Refused(403, "no SelfHealingPolicy in namespace shop selects Rollout web"), 403, "no SelfHealingPolicy"),
        (Refused(404, "Rollout shop/web not found"), 404, "not found"),
        (Refused(409, "Rollout shop/web is not rolling out 6c5f8b8d4"), 409, "not rolling out"),
        (TransientError("apiserver unreachable"), 503, "apiserver unreachable"),
        (ConfigError("forbidden: cannot list pods"), 500, "misconfigured"),
        (RuntimeError("boom"), 500, "internal error"),
    ],
)
async def test_failures_become_error_statuses_with_the_reason(
    served: Any, error: Exception, status: int, text: str
) -> None:
    server, answers, observed = served
    answers.raise_next = error
    async with httpx.AsyncClient() as client:
        response = await client.get(server.url, params=QUESTION)
    assert response.status_code == status
    assert text in response.json()["error"]
    assert "boom" not in response.text  # an internal fault is not described to the caller
    assert observed[-1][1] == {"status": str(status)}


@pytest.mark.parametrize(
    ("params", "body"),
    [
        ({"rollout": "web", "canary": "abc"}, None),
        ({**QUESTION, "canary": "{{args.canary-hash}}"}, None),
        ({}, b"not json"),
        ({}, b"[1, 2]"),
    ],
)
async def test_a_malformed_question_is_a_400_naming_what_is_wrong(
    served: Any, params: dict[str, str], body: bytes | None
) -> None:
    server, answers, _ = served
    async with httpx.AsyncClient() as client:
        if body is None:
            response = await client.get(server.url, params=params)
        else:
            response = await client.post(server.url, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]
    assert answers.questions == []
    if not body and "namespace" not in params:
        assert "namespace" in response.json()["error"]


async def test_requests_are_bounded(served: Any) -> None:
    server, answers, _ = served
    async with httpx.AsyncClient() as client:
        big = await client.post(server.url, json={**QUESTION, "padding": "x" * (MAX_BODY_BYTES + 1)})
        long_line = await client.get(server.url, params={**QUESTION, "padding": "x" * 8000})
        other = await client.get(f"http://{server.host}:{server.port}/metrics")
    assert big.status_code == 413
    assert long_line.status_code in (400, 414)  # the request line is refused before anything is parsed
    assert other.status_code == 404
    assert answers.questions == []


async def test_with_a_token_only_bearers_of_it_are_answered() -> None:
    answers = Answers()
    server = await start_verdict_server(answers, "127.0.0.1", 0, token="s3cr3t-token")
    try:
        async with httpx.AsyncClient() as client:
            missing = await client.get(server.url, params=QUESTION)
            wrong = await client.get(server.url, params=QUESTION, headers={"Authorization": "Bearer nope"})
            basic = await client.get(server.url, params=QUESTION, headers={"Authorization": "Basic s3cr3t-token"})
            right = await client.get(server.url, params=QUESTION, headers={"Authorization": "Bearer s3cr3t-token"})
    finally:
        await stop_verdict_server(server)
    assert [r.status_code for r in (missing, wrong, basic)] == [401, 401, 401]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "s3cr3t" not in missing.text + wrong.text
    assert right.status_code == 200 and len(answers.questions) == 1


async def test_a_port_in_use_is_a_config_error() -> None:
    first = await start_verdict_server(Answers(), "127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match=f"cannot serve verdicts on 127.0.0.1:{first.port}"):
            await start_verdict_server(Answers(), "127.0.0.1", first.port)
    finally:
        await stop_verdict_server(first)
    assert first.url.endswith(PATH)
