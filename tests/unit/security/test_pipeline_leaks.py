"""Zero leaks through the whole pipeline: the prompt, `selfheal analyze --json`, the Event text, the ticket
and the GitHub issue body, with an LLM (the stand-in, through the real openai client) that echoes
secrets back in its summary, root cause, suggested fix and evidence refs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from selfheal.adapters.llm import LLMClient
from selfheal.domain.argo import Rollout
from selfheal.domain.issue import render_issue
from selfheal.domain.lifecycle import issue_context
from selfheal.domain.policy import AnalysisSpec, DecisionSpec
from selfheal.domain.ticket import RemediationTicket
from selfheal.services.judge import judge, redactor_for
from selfheal.services.offline import evidence_from_logs, result_object
from selfheal.services.tickets import ticket_body, ticket_spec
from selfheal.testing.llm_server import OpenAIStandIn, verdict_content
from tests.unit.security.corpus import CONTEXTS, KEY_CONTEXTS, PLAIN_PASSWORDS, Planted, corpus, leaked

STABLE = "\n".join(
    f"2025-10-09T14:00:{i % 60:02d}Z INFO request served path=/api/items/{i} status=200" for i in range(200)
)
ROLLOUT = Rollout.from_obj(
    {
        "metadata": {"name": "shop", "namespace": "offline", "uid": "uid-shop"},
        "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}},
        "status": {"currentPodHash": "canary", "stableRS": "stable"},
    }
)


def by_context() -> dict[str, list[Planted]]:
    groups: dict[str, list[Planted]] = {}
    for planted in corpus():
        groups.setdefault(planted.fmt.rsplit("@", 1)[1], []).append(planted)
    return groups


GROUPS = by_context()


@pytest.fixture(scope="module")
def llm() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn() as server:
        yield server


def whole(prefix: str, secrets: list[str], limit: int, joiner: str = " ") -> str:
    """``prefix`` and as many whole secrets as fit in ``limit`` characters (never half a secret)."""
    text = prefix
    for secret in secrets:
        if len(text) + len(joiner) + len(secret) > limit:
            break
        text += joiner + secret
    return text


def echoing(secrets: list[str]) -> Any:
    """An LLM that quotes the logs' secrets back in every free-text field of its answer."""
    summary = whole("Canary leaks", secrets, 480)
    cause = whole("The canary logs", secrets[::-1], 1900, " and ")
    fix = whole("Rotate", secrets[len(secrets) // 2 :], 1900)
    refs = [s for s in secrets if len(s) <= 70][:30]
    return lambda body: verdict_content("unhealthy", 90, summary, cause, refs, fix)


def outputs(j: Any) -> dict[str, str]:
    """Every text a judgement becomes: what leaves the cluster or is shown to a user."""
    redact = redactor_for(AnalysisSpec()).redact
    spec = ticket_spec(j, ROLLOUT, "pay", "analysisFailed", redact)
    ticket = RemediationTicket.model_validate(ticket_body(spec, ROLLOUT))
    issue = render_issue(issue_context(ticket, redact, repository="acme/shop"))
    v = j.verdict
    event = f"{v.verdict} (confidence {v.confidence}): {v.summary} {j.decision.reason} {j.llm_error or ''}"
    return {
        "prompt": json.dumps(j.bundle.messages, ensure_ascii=False),
        "--json": json.dumps(result_object(j), ensure_ascii=False),
        "event": event,
        "ticket": json.dumps(ticket_body(spec, ROLLOUT), ensure_ascii=False),
        "issue": issue.title + "\n" + issue.body,
    }


@pytest.mark.parametrize("context", sorted(GROUPS))
async def test_no_secret_reaches_any_output(llm: OpenAIStandIn, context: str) -> None:
    planted = GROUPS[context]
    canary = "\n".join(f"ERROR {p.text}" for p in planted)
    secrets = [p.secret for p in planted]
    llm.respond_with(echoing(secrets))
    analysis = AnalysisSpec.model_validate({"llm": {"provider": "openai", "model": "m", "maxInputTokens": 30000}})
    async with LLMClient(llm.base_url, "k", "m", timeout=30, max_retries=0) as client:
        j = await judge(evidence_from_logs("shop", canary, STABLE), analysis, DecisionSpec(), client)
    assert j.llm is not None, j.llm_error  # the answer was used, so its echoes were checked
    leaks = []
    for where, text in outputs(j).items():
        for p in planted:
            piece = leaked(p.secret, text)
            if piece is not None:
                leaks.append(f"{where}: {p.fmt}: {piece!r}")
    assert not leaks, "\n".join(leaks[:40])
    # Every planted line was redacted and counted (a count is a redaction done, never more).
    assert sum(j.redactions.values()) >= len(planted)


def test_every_context_and_the_plain_passwords_are_planted() -> None:
    assert set(GROUPS) == set(CONTEXTS)
    assert all(any(p.secret == pw for p in GROUPS[c]) for c in KEY_CONTEXTS for pw in PLAIN_PASSWORDS)
