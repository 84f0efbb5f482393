"""One analysis of one canary, through the services' public entry points: the guards before acting,
what is done at most once, and what happens when two analyses of one canary run at the same time."""

from __future__ import annotations

import asyncio
from typing import Any

from selfheal.domain import ledger
from selfheal.domain.argo import Rollout
from selfheal.services import analysis, triggers
from selfheal.services.analysis import Trigger
from selfheal.testing.fakes import SentPatch
from tests.unit.services.world import CANARY, NS, ROLLOUT, World, policy

ABORT = SentPatch("rollout/status", NS, ROLLOUT, {"status": {"abort": True}})
PROMOTE = SentPatch("rollout/status", NS, ROLLOUT, {"status": {"pauseConditions": None}})


async def test_a_panicking_canary_at_a_pause_is_aborted_explained_and_ticketed(world: World) -> None:
    world.canary("canary-panic")
    outcome = await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [policy()])

    assert outcome is not None and outcome.action_taken == "abort"
    assert world.kube.rollout_patches() == [ABORT]
    assert world.kube.rollout(NS, ROLLOUT).status.abort
    unhealthy = [e for e in world.kube.posted if e.reason == "CanaryUnhealthy"]
    assert len(unhealthy) == 1 and unhealthy[0].type == "Warning" and "selfheal aborted it" in unhealthy[0].message
    assert outcome.ticket == f"{ROLLOUT}-{CANARY}"
    ticket = world.kube.tickets[(NS, outcome.ticket)]
    assert ticket["status"]["occurrences"] == 1
    assert ticket["spec"]["fingerprint"] == outcome.judgement.fingerprint
    assert "RemediationTicketOpened" in world.reasons()


async def test_a_healthy_canary_at_an_indefinite_pause_is_promoted_with_the_cli_patch(world: World) -> None:
    world.canary("canary-random-colors")
    outcome = await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [policy()])

    assert outcome is not None and outcome.action_taken == "promote"
    assert world.kube.rollout_patches() == [PROMOTE]
    assert "CanaryHealthy" in world.reasons() and outcome.ticket is None
    assert world.kube.tickets == {}


async def test_a_rollout_paused_by_hand_is_not_promoted(world: World) -> None:
    world.canary("canary-random-colors", paused=True)
    outcome = await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [policy()])
    assert outcome is not None and outcome.action_taken.startswith("skipped")
    assert "paused by hand" in outcome.action_taken or "paused" in outcome.action_taken
    assert world.kube.rollout_patches() == []


async def test_dry_run_records_the_verdict_and_acts_on_nothing(world: World) -> None:
    world.canary("canary-panic")
    outcome = await triggers.on_rollout(
        world.runtime, world.kube.rollout(NS, ROLLOUT), [policy(decision={"dryRun": True})]
    )

    assert outcome is not None and outcome.action_taken == "dry-run:abort"
    assert world.kube.rollout_patches() == []
    assert "CanaryUnhealthy" in world.reasons()
    assert world.kube.tickets == {}


async def test_no_action_when_the_rollout_moved_to_another_revision_during_the_analysis(world: World) -> None:
    world.canary("canary-panic")
    world.kube.log_gate = asyncio.Event()
    running = asyncio.create_task(
        analysis.analyze(world.runtime, policy(), world.kube.rollout(NS, ROLLOUT), Trigger.INDEFINITE_PAUSE)
    )
    await asyncio.wait_for(world.kube.reading.wait(), 5)
    world.update_rollout(lambda obj: obj["status"].update(currentPodHash="next9f1"))
    world.kube.log_gate.set()
    outcome = await running

    assert outcome is not None and outcome.action_taken.startswith(
        "skipped: the Rollout changed since it was judged: its canary is next9f1"
    )
    assert world.kube.rollout_patches() == []


async def test_an_already_aborted_rollout_is_not_aborted_again(world: World) -> None:
    world.canary("canary-panic", status={"abort": True, "pauseConditions": None, "controllerPause": False})
    outcome = await analysis.analyze(world.runtime, policy(), world.kube.rollout(NS, ROLLOUT), Trigger.ANALYSIS_FAILED)

    assert outcome is not None and outcome.action_taken == "skipped: already aborted"
    assert world.kube.rollout_patches() == []
    assert outcome.ticket is not None  # the failure is still recorded


async def test_a_revision_is_aborted_at_most_once_even_after_a_retry(world: World) -> None:
    world.canary("canary-panic")
    await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [policy()])
    # the user retries: Argo clears the abort and the canary pauses at the step again
    world.update_rollout(lambda obj: obj["status"].pop("abort"))
    outcome = await analysis.analyze(world.runtime, policy(), world.kube.rollout(NS, ROLLOUT), Trigger.INDEFINITE_PAUSE)

    assert outcome is None  # the pause of this revision was judged already: neither judged nor acted on again
    assert world.kube.rollout_patches() == [ABORT]


async def test_a_healthy_canary_that_is_not_paused_is_not_promoted(world: World) -> None:
    world.canary("canary-random-colors", step=2, status={"pauseConditions": None, "controllerPause": False})
    outcome = await analysis.analyze(world.runtime, policy(), world.kube.rollout(NS, ROLLOUT), Trigger.LOG_WATCH)

    assert outcome is not None and outcome.action_taken == "skipped: not paused at a step selfheal may promote"
    assert world.kube.rollout_patches() == []


async def test_pause_is_not_sent_to_a_rollout_already_paused(world: World) -> None:
    world.canary("canary-panic", paused=True)
    outcome = await triggers.on_rollout(
        world.runtime, world.kube.rollout(NS, ROLLOUT), [policy(decision={"onUnhealthy": "pause"})]
    )
    assert outcome is not None and outcome.action_taken == "skipped: already paused"
    assert world.kube.rollout_patches() == []


async def test_a_second_analysis_of_a_canary_in_flight_is_skipped(world: World) -> None:
    world.canary("canary-panic")
    world.kube.log_gate = asyncio.Event()
    ro = world.kube.rollout(NS, ROLLOUT)
    first = asyncio.create_task(analysis.analyze(world.runtime, policy(), ro, Trigger.INDEFINITE_PAUSE))
    await asyncio.wait_for(world.kube.reading.wait(), 5)

    second = analysis.analyze(world.runtime, policy(), ro, Trigger.ANALYSIS_FAILED)
    assert await asyncio.wait_for(second, 5) is None, "a second analysis ran while the first was in flight"
    world.kube.log_gate.set()
    outcome = await first
    assert outcome is not None and outcome.action_taken == "abort"
    assert world.kube.rollout_patches() == [ABORT]
    assert world.runtime.in_flight == set()


async def test_two_concurrent_triggers_promote_a_healthy_canary_once(world: World) -> None:
    """The Rollout event and the policy's catch-up round see the same pause at the same moment."""
    world.canary("canary-random-colors")
    world.runtime.indexes.policies = {NS: [policy()]}
    world.kube.log_gate = asyncio.Event()
    ro = world.kube.rollout(NS, ROLLOUT)
    event = asyncio.create_task(triggers.on_rollout(world.runtime, ro, [policy()]))
    sweep = asyncio.create_task(triggers.catch_up(world.runtime, NS, ROLLOUT))
    await asyncio.wait_for(world.kube.reading.wait(), 5)
    world.kube.log_gate.set()
    await asyncio.wait_for(asyncio.gather(event, sweep), 10)

    assert world.kube.rollout_patches() == [PROMOTE]
    assert world.reasons().count("CanaryHealthy") == 1


async def test_each_pause_is_judged_once_and_an_inconclusive_one_again_after_the_interval(world: World) -> None:
    world.canary("canary-random-colors")
    for key in [k for k in world.kube.logs if CANARY in k[1]]:
        world.kube.logs[key] = ""  # the canary has not logged yet: too little evidence
    watched = policy(triggers={"logWatch": {"intervalSeconds": 60}})
    first = await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [watched])
    assert first is not None and first.judgement.verdict.verdict == "inconclusive"
    reads = world.kube.calls["list_pods"]

    assert await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [watched]) is None
    assert world.kube.calls["list_pods"] == reads, "the same pause was judged twice"

    world.clock.advance(60 * world.runtime.config.log_watch_scale + 1)
    again = await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [watched])
    assert again is not None and world.kube.calls["list_pods"] > reads


async def test_the_hourly_budget_stops_further_analyses_and_says_so(world: World) -> None:
    world.canary("canary-panic")
    tight = policy(budget={"analysesPerHour": 1}, decision={"dryRun": True})
    ro = world.kube.rollout(NS, ROLLOUT)
    assert await analysis.analyze(world.runtime, tight, ro, Trigger.INDEFINITE_PAUSE) is not None
    assert await analysis.analyze(world.runtime, tight, ro, Trigger.LOG_WATCH) is None
    assert world.reasons().count("AnalysisBudgetExhausted") == 1

    world.clock.advance(3600)
    assert await analysis.analyze(world.runtime, tight, ro, Trigger.LOG_WATCH) is not None


def test_the_cycle_key_is_the_failing_run_or_else_the_attempt(world: World) -> None:
    world.canary("canary-panic")
    ro = world.kube.rollout(NS, ROLLOUT)
    assert analysis.cycle_key(None, ro, CANARY) == f"{CANARY}:attempt-0"
    retried = ledger.for_revision(ledger.for_revision(None, CANARY, aborted=True), CANARY, aborted=False)
    assert analysis.cycle_key(retried, ro, CANARY) == f"{CANARY}:attempt-1"
    assert analysis.cycle_key(retried, ro, "other00") == "other00:attempt-0"

    running: dict[str, Any] = {"name": "web-new5c4-2.1", "status": "Running"}
    with_run = Rollout.from_obj(
        {
            **world.kube.rollouts[(NS, ROLLOUT)],
            "status": {**ro_status(world), "canary": {"currentBackgroundAnalysisRunStatus": running}},
        }
    )
    assert analysis.cycle_key(retried, with_run, CANARY) == "web-new5c4-2.1"


def ro_status(world: World) -> dict[str, Any]:
    return dict(world.kube.rollouts[(NS, ROLLOUT)]["status"])
