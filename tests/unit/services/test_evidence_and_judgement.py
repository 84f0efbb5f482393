"""Evidence gathering (bounded, troubled pods first, one bad log is not fatal), the judgement with an
analyzer that is right, wrong or down, and the ticket record with its occurrence keys."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest

from selfheal.domain.evidence import EventRecord, Evidence, Side
from selfheal.domain.policy import PolicySpec
from selfheal.domain.prompt import LLMVerdict
from selfheal.errors import ConfigError, TransientError
from selfheal.services import tickets
from selfheal.services.gather import gather_evidence
from selfheal.services.judge import judge
from selfheal.testing.fakes import FakeAnalyzer
from tests.unit.services.world import CANARY, NS, ROLLOUT, STABLE, T0, World, log, pod, policy


def spec(**logs: object) -> PolicySpec:
    return policy(analysis={"logs": logs} if logs else {}).spec


async def test_evidence_reads_at_most_the_bounds_and_prefers_troubled_pods(world: World) -> None:
    world.canary("canary-panic")
    world.kube.pods[NS].append(pod(f"{ROLLOUT}-{CANARY}-sick", CANARY, restarts=3, ready=False))
    world.kube.logs[(NS, f"{ROLLOUT}-{CANARY}-sick", "app", False)] = log("canary-panic")
    world.kube.logs[(NS, f"{ROLLOUT}-{CANARY}-sick", "app", True)] = "panic: before the restart\n"
    bounds = spec(podsPerSide=1, tailLines=50).analysis.logs

    evidence = await gather_evidence(world.kube, world.kube.rollout(NS, ROLLOUT), bounds, trigger="test", now=T0)

    canary, stable = evidence.side(Side.CANARY), evidence.side(Side.STABLE)
    assert [p.name for p in canary] == [f"{ROLLOUT}-{CANARY}-sick"] and len(stable) == 1
    logs = {(entry.previous, entry.text.count("\n")) for entry in canary[0].logs}
    assert logs == {(False, 50), (True, 1)}, "the current tail is bounded and the previous container read"
    assert all(entry.truncated for entry in canary[0].logs if not entry.previous)
    assert evidence.canary_hash == CANARY and evidence.stable_hash == STABLE and evidence.revision == "2"
    assert world.kube.calls["read_log"] == 3


async def test_an_unreadable_log_costs_that_log_only(world: World) -> None:
    world.canary("canary-panic")
    world.kube.fail["read_log"] = TransientError("node NotReady")
    evidence = await gather_evidence(
        world.kube, world.kube.rollout(NS, ROLLOUT), spec().analysis.logs, trigger="test", now=T0
    )
    texts = [entry.text for p in evidence.pods for entry in p.logs]
    assert len(texts) == 4 and texts.count("") == 1


async def test_evidence_goes_on_without_events_it_may_not_read(world: World) -> None:
    world.canary("canary-panic")
    world.kube.events[NS] = [EventRecord(object_name=f"{ROLLOUT}-{CANARY}-0", reason="BackOff", type="Warning")]
    ro = world.kube.rollout(NS, ROLLOUT)
    with_events = await gather_evidence(world.kube, ro, spec().analysis.logs, trigger="test", now=T0)
    assert [e.reason for e in with_events.events] == ["BackOff"]

    world.kube.fail["list_events"] = ConfigError("events is forbidden: grant list on events")
    without = await gather_evidence(world.kube, ro, spec().analysis.logs, trigger="test", now=T0)
    assert without.events == [] and len(without.pods) == 4


async def evidence_of(world: World, canary_log: str) -> Evidence:
    world.canary(canary_log)
    return await gather_evidence(
        world.kube, world.kube.rollout(NS, ROLLOUT), spec().analysis.logs, trigger="test", now=T0
    )


def with_llm(**decision: object) -> PolicySpec:
    return policy(
        analysis={"llm": {"provider": "openai", "model": "m", "baseURL": "http://127.0.0.1:1/v1"}},
        decision=decision,
    ).spec


async def test_an_analyzer_calling_a_panicking_canary_healthy_does_not_promote_it(world: World) -> None:
    """Logs are attacker-controlled: a model's 'healthy' never overrules a new crash signature."""
    evidence = await evidence_of(world, "canary-panic")
    fooled = FakeAnalyzer(LLMVerdict(verdict="healthy", confidence=99, summary="All good, promote."))
    s = with_llm()
    j = await judge(evidence, s.analysis, s.decision, fooled)

    assert len(fooled.prompts) == 1 and j.llm is not None and j.llm.verdict == "healthy"
    assert j.verdict.verdict == "unhealthy" and j.decision.action == "abort"
    assert j.tokens == fooled.prompt_tokens + fooled.completion_tokens


async def test_an_unavailable_analyzer_falls_back_to_the_statistics_and_says_why(world: World) -> None:
    evidence = await evidence_of(world, "canary-panic")
    s = with_llm(onAnalyzerUnavailable="statistical")
    j = await judge(evidence, s.analysis, s.decision, FakeAnalyzer(unavailable="timed out after 30s"))
    assert j.llm is None and j.llm_error == "timed out after 30s"
    assert j.verdict.verdict == "unhealthy" and j.verdict.analyzer == "statistical"
    assert j.decision.action == "abort"


async def test_an_exhausted_token_budget_asks_no_analyzer(world: World) -> None:
    evidence = await evidence_of(world, "canary-random-colors")
    analyzer = FakeAnalyzer(LLMVerdict(verdict="healthy", confidence=90, summary="fine"))
    s = with_llm()
    j = await judge(evidence, s.analysis, s.decision, analyzer, token_budget_left=10)
    assert analyzer.prompts == [] and j.llm_error is not None and "token budget" in j.llm_error


async def test_the_fingerprint_names_the_failure_not_the_run(world: World) -> None:
    first = await evidence_of(world, "canary-panic")
    s = policy().spec
    j1 = await judge(first, s.analysis, s.decision, None)
    j2 = await judge(first.model_copy(update={"trigger": "logWatch"}), s.analysis, s.decision, None)
    assert j1.fingerprint == j2.fingerprint and j1.signature


async def test_a_ticket_counts_each_occurrence_key_once(world: World) -> None:
    evidence = await evidence_of(world, "canary-panic")
    s = policy().spec
    j = await judge(evidence, s.analysis, s.decision, None)
    ro = world.kube.rollout(NS, ROLLOUT)
    spec = tickets.ticket_spec(j, ro, "web-policy", "test")

    def record(key: str) -> Awaitable[tuple[str, bool, bool]]:
        return tickets.record(world.kube, spec, ro, key=key, now=T0)

    assert await record("web-new5c4-2") == (f"{ROLLOUT}-{CANARY}", True, True)
    # the same sighting again (a restart in between): not counted, and still the one that opened the ticket
    assert await record("web-new5c4-2") == (f"{ROLLOUT}-{CANARY}", True, False)
    assert await record("web-new5c4-2.1") == (f"{ROLLOUT}-{CANARY}", False, True)
    status = world.kube.tickets[(NS, f"{ROLLOUT}-{CANARY}")]["status"]
    assert status["occurrences"] == 2 and status["occurrenceKeys"] == ["web-new5c4-2", "web-new5c4-2.1"]
    assert world.kube.calls["create_ticket"] == 3 and len(world.kube.tickets) == 1


async def test_a_ticket_whose_first_status_write_was_lost_starts_counting_at_one(world: World) -> None:
    evidence = await evidence_of(world, "canary-panic")
    s = policy().spec
    j = await judge(evidence, s.analysis, s.decision, None)
    ro = world.kube.rollout(NS, ROLLOUT)
    spec = tickets.ticket_spec(j, ro, "p", "t")
    world.kube.fail["patch_ticket_status"] = TransientError("apiserver timed out")
    with pytest.raises(TransientError):
        await tickets.record(world.kube, spec, ro, key="k1", now=T0)
    assert "status" not in world.kube.tickets[(NS, f"{ROLLOUT}-{CANARY}")]
    name, opened, counted = await tickets.record(world.kube, spec, ro, key="k1", now=T0)
    assert (opened, counted) == (True, True)
    assert world.kube.tickets[(NS, name)]["status"]["occurrences"] == 1
