"""Which trigger fires under which policy, and the keys that make a failure count once: handled runs,
occurrence keys on the ticket, and what survives a restart because it is kept in the cluster."""

from __future__ import annotations

from typing import Any

from selfheal.domain.argo import AnalysisRun
from selfheal.domain.ledger import CanaryRecord
from selfheal.domain.views import RolloutView
from selfheal.services import triggers
from selfheal.services.planner import Planner
from tests.unit.services.world import CANARY, NS, ROLLOUT, UID, World, policy

TICKET = f"{ROLLOUT}-{CANARY}"


def failed_run(name: str = "web-new5c4-2", *, uid: str = "run-uid-1", pod_hash: str = CANARY) -> dict[str, Any]:
    """A background AnalysisRun of the canary that ended Failed on its error-rate metric."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": uid,
            "labels": {"rollouts-pod-template-hash": pod_hash, "rollout-type": "Background"},
            "ownerReferences": [{"kind": "Rollout", "name": ROLLOUT, "uid": UID, "controller": True}],
            "creationTimestamp": "2026-11-20T13:59:00Z",
        },
        "status": {
            "phase": "Failed",
            "message": 'Metric "error-rate" assessed Failed due to failed (3) > failureLimit (2)',
            "metricResults": [
                {
                    "name": "error-rate",
                    "phase": "Failed",
                    "failed": 3,
                    "measurements": [{"phase": "Failed", "value": "0.31"}],
                }
            ],
        },
    }


def aborted_by_argo(world: World) -> None:
    """Argo aborts the canary itself when its analysis fails."""
    world.canary("canary-panic", step=2, status={"abort": True, "pauseConditions": None, "controllerPause": False})


async def test_a_failed_run_opens_one_ticket_counted_by_the_run_name(world: World) -> None:
    aborted_by_argo(world)
    body = world.kube.rollouts[(NS, ROLLOUT)]
    outcome = await triggers.on_analysis_run(world.runtime, AnalysisRun.from_obj(failed_run()), body, [policy()])

    assert outcome is not None and outcome.ticket == TICKET
    assert outcome.action_taken == "skipped: already aborted"
    status = world.kube.tickets[(NS, TICKET)]["status"]
    assert status["occurrences"] == 1 and status["occurrenceKeys"] == ["web-new5c4-2"]
    assert outcome.judgement.evidence.failed_metrics[0].name == "error-rate"


async def test_the_same_failed_run_seen_again_is_not_analyzed_again(world: World) -> None:
    aborted_by_argo(world)
    body = world.kube.rollouts[(NS, ROLLOUT)]
    run = AnalysisRun.from_obj(failed_run())
    await triggers.on_analysis_run(world.runtime, run, body, [policy()])
    reads = world.kube.calls["read_log"]

    assert await triggers.on_analysis_run(world.runtime, run, body, [policy()]) is None
    assert world.kube.calls["read_log"] == reads
    assert world.kube.tickets[(NS, TICKET)]["status"]["occurrences"] == 1


async def test_after_a_restart_a_run_already_on_the_ticket_is_not_counted_again(world: World) -> None:
    """Kopf replays every AnalysisRun at start-up; the ticket's occurrence keys say which were counted."""
    aborted_by_argo(world)
    body = world.kube.rollouts[(NS, ROLLOUT)]
    run = AnalysisRun.from_obj(failed_run())
    await triggers.on_analysis_run(world.runtime, run, body, [policy()])
    reads = world.kube.calls["read_log"]

    restarted = world.restart()
    assert await triggers.on_analysis_run(restarted, run, body, [policy()]) is None
    assert world.kube.calls["read_log"] == reads
    assert (NS, run.name, run.uid) in restarted.handled_runs
    assert world.kube.tickets[(NS, TICKET)]["status"]["occurrences"] == 1


async def test_a_retry_that_fails_again_is_one_more_occurrence_of_the_same_ticket(world: World) -> None:
    aborted_by_argo(world)
    body = world.kube.rollouts[(NS, ROLLOUT)]
    await triggers.on_analysis_run(world.runtime, AnalysisRun.from_obj(failed_run()), body, [policy()])
    retry = AnalysisRun.from_obj(failed_run("web-new5c4-2.1", uid="run-uid-2"))
    outcome = await triggers.on_analysis_run(world.runtime, retry, body, [policy()])

    assert outcome is not None and outcome.ticket == TICKET
    status = world.kube.tickets[(NS, TICKET)]["status"]
    assert status["occurrences"] == 2 and status["occurrenceKeys"] == ["web-new5c4-2", "web-new5c4-2.1"]
    assert list(world.kube.tickets) == [(NS, TICKET)]
    assert world.reasons().count("RemediationTicketOpened") == 1


async def test_runs_of_other_revisions_or_rollouts_are_history(world: World) -> None:
    aborted_by_argo(world)
    body = world.kube.rollouts[(NS, ROLLOUT)]
    old = AnalysisRun.from_obj(failed_run("web-old7d8-1", pod_hash="old7d8"))
    assert await triggers.on_analysis_run(world.runtime, old, body, [policy()]) is None
    foreign = failed_run()
    foreign["metadata"]["ownerReferences"][0]["uid"] = "another-rollout"
    assert await triggers.on_analysis_run(world.runtime, AnalysisRun.from_obj(foreign), body, [policy()]) is None
    switched_off = policy(triggers={"analysisFailed": False})
    assert (
        await triggers.on_analysis_run(world.runtime, AnalysisRun.from_obj(failed_run()), body, [switched_off]) is None
    )
    assert world.kube.calls["read_log"] == 0 and world.kube.tickets == {}


async def test_the_policy_whose_name_sorts_first_decides(world: World) -> None:
    world.canary("canary-panic")
    dry = policy("a-shadow", decision={"dryRun": True})
    acting = policy("b-acting")
    outcome = await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [acting, dry])
    assert outcome is not None and outcome.action_taken == "dry-run:abort"
    assert world.kube.rollout_patches() == []


async def test_a_rollout_no_policy_selects_is_left_alone(world: World) -> None:
    world.canary("canary-panic")
    other = policy(selector={"matchLabels": {"app": "other"}})
    assert await triggers.on_rollout(world.runtime, world.kube.rollout(NS, ROLLOUT), [other]) is None
    assert world.kube.calls["list_pods"] == 0


async def test_the_catch_up_finds_a_failed_run_whose_event_was_missed(world: World) -> None:
    aborted_by_argo(world)
    world.runtime.indexes.policies = {NS: [policy()]}
    world.runtime.indexes.runs = {(NS, UID): [AnalysisRun.from_obj(failed_run())]}
    view = RolloutView.of(world.kube.rollout(NS, ROLLOUT))
    assert triggers.catch_up_due(world.runtime, view, policy(), world.clock())

    await triggers.catch_up(world.runtime, NS, ROLLOUT)
    assert world.kube.tickets[(NS, TICKET)]["status"]["occurrenceKeys"] == ["web-new5c4-2"]
    assert not triggers.catch_up_due(world.runtime, view, policy(), world.clock())

    await triggers.catch_up(world.runtime, NS, ROLLOUT)
    assert world.kube.tickets[(NS, TICKET)]["status"]["occurrences"] == 1


async def test_the_policy_round_drops_the_judgements_of_rollouts_the_policy_no_longer_governs(world: World) -> None:
    aborted_by_argo(world)
    world.runtime.indexes.policies = {NS: [policy()]}
    world.runtime.indexes.rollouts = {(NS, ROLLOUT): [RolloutView.of(world.kube.rollout(NS, ROLLOUT))]}
    await world.runtime.ledger.put(NS, "web-policy", "deleted-one", CanaryRecord(pod_template_hash="abc1234"))
    await world.runtime.ledger.put(NS, "web-policy", ROLLOUT, CanaryRecord(pod_template_hash=CANARY))
    await Planner(world.runtime)._refresh_policy(NS, "web-policy")
    canaries = world.kube.policies[(NS, "web-policy")]["status"]["canaries"]
    assert "deleted-one" not in canaries and ROLLOUT in canaries


async def test_the_log_watch_looks_once_per_interval_and_judges_each_attempt_once(world: World) -> None:
    world.canary("canary-http-500", step=2, status={"pauseConditions": None, "controllerPause": False})
    watched = policy(triggers={"logWatch": {"enabled": True, "intervalSeconds": 60}})
    world.runtime.indexes.policies = {NS: [watched]}
    view = RolloutView.of(world.kube.rollout(NS, ROLLOUT))

    assert triggers.look_due(world.runtime, view, watched, world.clock()) is not None
    outcome = await triggers.look(world.runtime, NS, ROLLOUT)
    assert outcome is not None
    assert outcome.judgement.verdict.verdict == "unhealthy" and outcome.action_taken == "abort"
    assert triggers.look_due(world.runtime, view, watched, world.clock()) is None, "due again before the interval"

    world.clock.advance(60 * world.runtime.config.log_watch_scale + 1)
    aborted = RolloutView.of(world.kube.rollout(NS, ROLLOUT))  # nothing in progress to watch any more
    assert triggers.look_due(world.runtime, aborted, watched, world.clock()) is None
    assert await triggers.look(world.runtime, NS, ROLLOUT) is None
    assert world.kube.rollout_patches()[-1].body == {"status": {"abort": True}}
    assert len(world.kube.rollout_patches()) == 1
