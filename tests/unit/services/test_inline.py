"""The verdict endpoint's service: the statistics answer every measurement in time, the analyzer is asked once
per evidence window, a failing verdict is explained and ticketed once, and questions it must not answer are
refused with the reason."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from selfheal.domain.inline import VerdictRequest
from selfheal.domain.prompt import LLMVerdict
from selfheal.domain.verdict import VerdictKind
from selfheal.errors import Refused
from selfheal.services import triggers
from selfheal.services.inline import InlineVerdicts
from selfheal.services.policies import PolicyRef
from selfheal.testing.fakes import FakeAnalyzer
from tests.unit.services.world import CANARY, NS, ROLLOUT, STABLE, UID, World, policy

LLM = {"llm": {"provider": "openai", "model": "m", "baseURL": "http://llm.example/v1"}}
# Evidence windows of a minute (the policy's logWatch interval).
WINDOW = {"logWatch": {"intervalSeconds": 60}}


def ask(**fields: Any) -> VerdictRequest:
    return VerdictRequest.model_validate({"namespace": NS, "rollout": ROLLOUT, "canary": CANARY, **fields})


def service(world: World, *policies: PolicyRef, analyzer: Any = None) -> InlineVerdicts:
    async def analyzers(*_: Any, **__: Any) -> tuple[Any, str | None]:
        return analyzer, None

    chosen = list(policies) or [policy(triggers=WINDOW)]
    return InlineVerdicts(world.runtime, lambda namespace: chosen if namespace == NS else [], analyzers=analyzers)


def running_step(world: World) -> None:
    """The Rollout progressing at its analysis step, not paused, with a running AnalysisRun of the canary."""

    def change(obj: dict[str, Any]) -> None:
        obj["status"].update(phase="Progressing", pauseConditions=None, controllerPause=None)
        obj["status"]["canary"] = {
            "currentStepAnalysisRunStatus": {"name": f"{ROLLOUT}-{CANARY}-2-1", "status": "Running"}
        }

    world.update_rollout(change)
    world.kube.analysis_runs[NS] = [run(f"{ROLLOUT}-{CANARY}-2-1", "Running")]


def run(name: str, phase: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "labels": {"rollouts-pod-template-hash": CANARY, "rollout-type": "Step", "step-index": "1"},
            "ownerReferences": [{"kind": "Rollout", "name": ROLLOUT, "uid": UID, "controller": True}],
        },
        "status": {"phase": phase},
    }


class SlowAnalyzer(FakeAnalyzer):
    """An analyzer whose answer waits until the test lets it through."""

    def __init__(self, answer: LLMVerdict) -> None:
        super().__init__(answer)
        self.gate = asyncio.Event()

    async def judge(self, bundle: Any) -> Any:
        self.prompts.append(bundle)
        await self.gate.wait()
        return await FakeAnalyzer(self.answer).judge(bundle)


async def test_a_panicking_canary_fails_the_measurement_with_one_ticket_and_one_event(world: World) -> None:
    world.canary("canary-panic")
    running_step(world)
    verdicts = service(world)
    answers = [await verdicts.answer(ask(stable=STABLE)) for _ in range(3)]

    first = answers[0]
    assert (first.verdict, first.healthy, first.score) == (VerdictKind.UNHEALTHY, False, 0.0)
    assert first.confidence >= 70 and "index out of range" in first.summary
    assert {a.ticket for a in answers} == {f"{ROLLOUT}-{CANARY}"}
    ticket = world.kube.tickets[(NS, f"{ROLLOUT}-{CANARY}")]
    assert ticket["spec"]["trigger"] == "inline"
    # counted once for this attempt, under the running AnalysisRun's name
    assert ticket["status"]["occurrences"] == 1 and ticket["status"]["occurrenceKeys"] == [f"{ROLLOUT}-{CANARY}-2-1"]
    unhealthy = [e for e in world.kube.posted if e.reason == "CanaryUnhealthy"]
    assert len(unhealthy) == 1 and "asked through its web metric" in unhealthy[0].message
    assert "answered Argo's web metric unhealthy (healthy=false, score 0.00)" in unhealthy[0].message
    assert world.kube.rollout_patches() == []  # Argo acts on its own analysis, not selfheal
    assert world.reasons().count("RemediationTicketOpened") == 1

    # The AnalysisRun fails on this answer: the failed-run trigger does not judge it a second time.
    world.kube.analysis_runs[NS] = [run(f"{ROLLOUT}-{CANARY}-2-1", "Failed")]
    failed = (await world.kube.list_analysis_runs(NS, UID))[0]
    obj = await world.kube.get_rollout_obj(NS, ROLLOUT)
    assert await triggers.on_analysis_run(world.runtime, failed, obj, [policy()]) is None
    assert len([e for e in world.kube.posted if e.reason == "CanaryUnhealthy"]) == 1


async def test_a_healthy_canary_passes_every_measurement_and_is_explained_once(world: World) -> None:
    world.canary("canary-random-colors")
    running_step(world)
    verdicts = service(world)
    answers = [await verdicts.answer(ask()) for _ in range(4)]
    assert all(a.healthy and a.verdict == VerdictKind.HEALTHY and 0.5 < a.score <= 1 for a in answers)
    assert all(a.ticket == "" for a in answers) and world.kube.tickets == {}
    assert world.reasons().count("CanaryHealthy") == 1
    usage = world.runtime.usage_of(NS, "web-policy")
    assert usage.this_hour == 1  # one evidence window, one analysis


async def test_questions_asked_together_share_one_reading_of_the_evidence_and_later_ones_read_it_afresh(
    world: World,
) -> None:
    world.canary("canary-random-colors")
    running_step(world)
    verdicts = service(world)
    answers = await asyncio.gather(*(verdicts.answer(ask()) for _ in range(8)))
    assert all(a.healthy for a in answers)
    assert world.kube.calls["list_pods"] == 2  # canary and stable pods listed once for the eight questions
    await verdicts.answer(ask())
    assert world.kube.calls["list_pods"] == 4  # a later measurement sees fresh evidence


async def test_the_analyzer_is_asked_once_per_evidence_window(world: World) -> None:
    world.canary("canary-random-colors")
    running_step(world)
    analyzer = FakeAnalyzer(LLMVerdict(verdict="healthy", confidence=95, summary="Colours differ; nothing broke."))
    verdicts = service(world, policy(analysis=LLM, triggers=WINDOW), analyzer=analyzer)
    for _ in range(6):  # six measurements, `interval: 10s`, within one minute
        answer = await verdicts.answer(ask())
        world.clock.advance(10)
        assert answer.healthy and answer.analyzer == "combined" and not answer.analyzer_pending
    assert len(analyzer.prompts) == 1
    world.clock.advance(1)  # the window is over: the next measurement asks again
    await verdicts.answer(ask())
    assert len(analyzer.prompts) == 2
    usage = world.runtime.usage_of(NS, "web-policy")
    assert usage.this_hour == 2 and usage.tokens_today == 2 * (analyzer.prompt_tokens + analyzer.completion_tokens)


async def test_a_slow_analyzer_never_makes_an_answer_late_and_is_used_once_it_arrives(world: World) -> None:
    world.canary("canary-random-colors")
    running_step(world)
    analyzer = SlowAnalyzer(LLMVerdict(verdict="healthy", confidence=97, summary="fine"))
    verdicts = service(world, policy(analysis=LLM, triggers=WINDOW), analyzer=analyzer)

    started = time.monotonic()
    first = await verdicts.answer(ask(timeoutSeconds=1))  # answers within 0.5 s
    assert time.monotonic() - started < 0.9
    assert first.analyzer_pending and first.analyzer == "statistical"
    assert first.healthy  # the default onAnalyzerUnavailable (statistical) accepts the statistics alone

    analyzer.gate.set()
    await asyncio.sleep(0.05)
    second = await verdicts.answer(ask(timeoutSeconds=1))
    assert not second.analyzer_pending and second.analyzer == "combined" and second.confidence == 97
    assert len(analyzer.prompts) == 1


async def test_without_the_analyzer_a_policy_that_wants_it_does_not_pass_the_canary(world: World) -> None:
    world.canary("canary-random-colors")
    running_step(world)
    analyzer = SlowAnalyzer(LLMVerdict(verdict="healthy", confidence=97, summary="fine"))
    strict = policy(analysis=LLM, triggers=WINDOW, decision={"onAnalyzerUnavailable": "pause"})
    answer = await service(world, strict, analyzer=analyzer).answer(ask(timeoutSeconds=1))
    assert answer.verdict == VerdictKind.INCONCLUSIVE and not answer.healthy and answer.score == 0
    analyzer.gate.set()


async def test_a_crash_fails_the_measurement_while_the_analyzer_is_still_thinking(world: World) -> None:
    world.canary("canary-panic")
    running_step(world)
    analyzer = SlowAnalyzer(LLMVerdict(verdict="healthy", confidence=99, summary="all good"))
    strict = policy(analysis=LLM, triggers=WINDOW, decision={"onAnalyzerUnavailable": "pause"})
    answer = await service(world, strict, analyzer=analyzer).answer(ask(timeoutSeconds=1))
    assert answer.verdict == VerdictKind.UNHEALTHY and answer.ticket
    analyzer.gate.set()


async def test_dry_run_passes_the_measurement_and_records_what_would_have_failed(world: World) -> None:
    world.canary("canary-panic")
    running_step(world)
    shadow = policy(triggers=WINDOW, decision={"dryRun": True})
    answer = await service(world, shadow).answer(ask())
    assert (answer.verdict, answer.healthy, answer.score, answer.dry_run) == (VerdictKind.HEALTHY, True, 1.0, True)
    assert answer.judged == VerdictKind.UNHEALTHY and "would have failed" in answer.summary
    assert answer.ticket == f"{ROLLOUT}-{CANARY}"  # shadow mode records tickets
    [event] = [e for e in world.kube.posted if e.reason == "CanaryUnhealthy"]
    assert "dry run: judged unhealthy, the measurement would have failed" in event.message
    assert world.runtime.handled_runs == set()  # the run passes: a failure of another metric is still judged


async def test_questions_that_cannot_be_answered_are_refused_with_the_reason(world: World) -> None:
    world.canary("canary-panic")
    verdicts = service(world)
    with pytest.raises(Refused) as missing:
        await verdicts.answer(ask(rollout="nope"))
    assert missing.value.status == 404 and f"Rollout {NS}/nope not found" in str(missing.value)

    with pytest.raises(Refused) as stale:
        await verdicts.answer(ask(canary="b4d5eed"))
    assert stale.value.status == 409 and f"its canary is {CANARY}" in str(stale.value)
    with pytest.raises(Refused) as other_stable:
        await verdicts.answer(ask(stable="f00d"))
    assert other_stable.value.status == 409 and STABLE in str(other_stable.value)

    nobody = service(world, policy(selector={"matchLabels": {"app": "other"}}))
    for _ in range(2):
        with pytest.raises(Refused) as ungoverned:
            await nobody.answer(ask())
        assert ungoverned.value.status == 403
        assert f"no SelfHealingPolicy in namespace {NS} selects Rollout {ROLLOUT}" in str(ungoverned.value)
    assert world.reasons().count("InlineVerdictRefused") == 1  # said once on the Rollout, not per measurement
    assert world.kube.tickets == {}


async def test_a_spent_budget_starts_no_new_window(world: World) -> None:
    world.canary("canary-random-colors")
    running_step(world)
    analyzer = FakeAnalyzer(LLMVerdict(verdict="healthy", confidence=95, summary="fine"))
    tight = policy(analysis=LLM, triggers=WINDOW, budget={"analysesPerHour": 1})
    verdicts = service(world, tight, analyzer=analyzer)
    await verdicts.answer(ask())
    world.clock.advance(120)
    later = await verdicts.answer(ask())
    assert len(analyzer.prompts) == 1  # the last window's verdict stands until the budget allows another
    assert later.analyzer == "combined"

    other = service(world, tight, analyzer=analyzer)  # a step never judged this hour: the statistics alone
    fresh = await other.answer(ask())
    assert fresh.analyzer == "statistical" and "budget" in fresh.reason
    assert "AnalysisBudgetExhausted" in world.reasons()


async def test_a_blue_green_preview_is_judged_against_the_active_pods(world: World) -> None:
    world.canary("canary-panic")

    def blue_green(obj: dict[str, Any]) -> None:
        obj["spec"]["strategy"] = {"blueGreen": {"activeService": "web", "previewService": "web-preview"}}
        obj["status"] = {
            "observedGeneration": "2",
            "phase": "Progressing",
            "currentPodHash": CANARY,
            "stableRS": STABLE,
            "blueGreen": {
                "activeSelector": STABLE,
                "previewSelector": CANARY,
                "prePromotionAnalysisRunStatus": {"name": f"{ROLLOUT}-{CANARY}-2-pre", "status": "Running"},
            },
        }

    world.update_rollout(blue_green)
    answer = await service(world).answer(ask(stable=STABLE))
    assert answer.verdict == VerdictKind.UNHEALTHY and answer.step == "blueGreen: preview"
    ticket = world.kube.tickets[(NS, answer.ticket)]
    assert ticket["status"]["occurrenceKeys"] == [f"{ROLLOUT}-{CANARY}-2-pre"]
    assert ticket["spec"]["step"] == "blueGreen: preview"
