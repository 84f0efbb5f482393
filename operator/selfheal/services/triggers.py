"""Which trigger an observed Rollout or AnalysisRun fires, under which policy, and the canary jobs that answer them."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from selfheal.domain import ledger
from selfheal.domain.argo import AR_ERROR, AR_FAILED, AnalysisRun, Rollout
from selfheal.domain.schedule import Priority, look_rank
from selfheal.domain.ticket import ticket_name
from selfheal.domain.views import RolloutView
from selfheal.errors import SelfHealError, TransientError
from selfheal.services import execution
from selfheal.services.analysis import Outcome, Trigger, analyze, look_at_logs
from selfheal.services.policies import PolicyRef, choose_policy, policies_for
from selfheal.services.runtime import Runtime

log = logging.getLogger(__name__)


def governing_policy(labels: Mapping[str, str], policies: Iterable[PolicyRef]) -> PolicyRef | None:
    """The policy that decides for a Rollout with these labels (several select it: the first by name)."""
    return choose_policy(policies_for(labels, policies))


def canary_key(namespace: str, name: str) -> tuple[str, str, str]:
    """The scheduler's key for the triggered work on one Rollout's canary: it is never queued twice."""
    return ("canary", namespace, name)


def look_key(namespace: str, name: str) -> tuple[str, str, str]:
    """The scheduler's key for the log-watch look at one canary. Apart from :func:`canary_key`, so that a
    decision never waits for a look to end (Argo may scale the canary down meanwhile); a look is not queued
    while triggered work on the canary is, and an analysis already running on it makes the other skip."""
    return ("look", namespace, name)


def pause_trigger(view: RolloutView, policy: PolicyRef) -> Trigger | None:
    """The trigger a pause fires under the policy: an indefinite step, else an inconclusive analysis."""
    triggers = policy.spec.triggers
    if triggers.indefinite_pause and view.indefinite_pause:
        return Trigger.INDEFINITE_PAUSE
    if triggers.analysis_inconclusive and view.inconclusive_pause:
        return Trigger.ANALYSIS_INCONCLUSIVE
    return None


def _pause_situation(view: RolloutView, trigger: Trigger) -> str:
    """The ledger's name for the pause (as `analysis.situation_of` names it)."""
    return f"{trigger.value}/step-{view.step}"


def _interval(rt: Runtime, policy: PolicyRef) -> float:
    return policy.spec.triggers.log_watch.interval_seconds * rt.config.log_watch_scale


def pause_due(rt: Runtime, view: RolloutView, policy: PolicyRef, now: datetime) -> bool:
    """A pause waits for a verdict: never judged, or judged inconclusive an interval ago (as far as the
    judgement ledger's copy in memory knows: `analyze` checks it again before judging)."""
    trigger = pause_trigger(view, policy)
    if trigger is None:
        return False
    record = rt.ledger.cached(view.namespace, policy.name, view.name)
    if record is None or record.pod_template_hash != view.canary:
        return True
    return ledger.is_due(record, _pause_situation(view, trigger), _interval(rt, policy), now)


def _failed_runs(rt: Runtime, view: RolloutView) -> list[AnalysisRun]:
    """The Failed and Error runs of the revision the Rollout runs now that were not analyzed yet."""
    return [
        run
        for run in rt.indexes.unsuccessful_runs(view.namespace, view.uid)
        if run.phase in (AR_FAILED, AR_ERROR)
        and run.pod_hash
        and run.pod_hash == view.current
        and (view.namespace, run.name, run.uid) not in rt.handled_runs
    ]


def catch_up_due(rt: Runtime, view: RolloutView, policy: PolicyRef, now: datetime) -> bool:
    """Triggered work is waiting on this canary: a failed run not analyzed yet, or a pause without a verdict."""
    failed = policy.spec.triggers.analysis_failed and bool(_failed_runs(rt, view))
    return failed or pause_due(rt, view, policy, now)


def look_due(rt: Runtime, view: RolloutView, policy: PolicyRef, now: datetime) -> float | None:
    """When the canary's logs are due for the policy's periodic look, the look's rank (smaller goes first)."""
    watch = policy.spec.triggers.log_watch
    if not watch.enabled or not view.in_progress:
        return None
    last = rt.last_look.get((policy.namespace, policy.name, view.name))
    interval = _interval(rt, policy)
    if last is not None and (now - last).total_seconds() < interval:
        return None
    return look_rank(last, view.progress, interval)


# --- what the handlers call on each event -----------------------------------------------------------


def rollout_seen(rt: Runtime, view: RolloutView, body: Mapping[str, Any]) -> None:
    """Every Rollout event: keep what is remembered about its revisions current, and queue the pause it
    reached for a verdict when one is due (first in the queue: a Rollout waits)."""
    rt.forget_revisions(view.namespace, view.name, {h for h in (view.canary, view.stable, view.current) if h})
    policy = governing_policy(view.labels, rt.indexes.namespace_policies(view.namespace))
    if policy is None:
        return
    if pause_due(rt, view, policy, rt.clock()):
        job = functools.partial(catch_up, rt, view.namespace, view.name, dict(body))
        rt.scheduler.submit(canary_key(view.namespace, view.name), Priority.TRIGGERED, job)


def run_seen(rt: Runtime, run: AnalysisRun) -> None:
    """An AnalysisRun event: a Failed or Error run of a Rollout queues that Rollout's catch-up, first in the queue."""
    if run.phase not in (AR_FAILED, AR_ERROR) or run.owner is None or run.owner.kind != "Rollout":
        return
    if (run.namespace, run.name, run.uid) in rt.handled_runs:
        return
    job = functools.partial(catch_up, rt, run.namespace, run.owner.name, None)
    rt.scheduler.submit(canary_key(run.namespace, run.owner.name), Priority.TRIGGERED, job)


# --- the jobs ---------------------------------------------------------------------------------------


async def catch_up(rt: Runtime, namespace: str, name: str, body: Mapping[str, Any] | None = None) -> None:
    """The triggered work on one canary: its failed runs not analyzed yet, then its pause waiting for a
    verdict. ``body`` is the Rollout as its event showed it; without it, it is read."""
    try:
        body = body or await rt.kube.get_rollout_obj(namespace, name)
        if body is None:
            return
        ro = Rollout.from_obj(body)
        policies = rt.indexes.namespace_policies(namespace)
        for run in _failed_runs(rt, RolloutView.of(ro)):
            await on_analysis_run(rt, run, body, policies)
        await on_rollout(rt, ro, policies)
    except TransientError as e:
        log.warning("analysis of %s/%s deferred to the policy's next round: %s", namespace, name, e)
    except SelfHealError as e:
        log.error("analysis of %s/%s failed: %s", namespace, name, e)


async def look(rt: Runtime, namespace: str, name: str) -> Outcome | None:
    """The periodic look at one canary's logs, under the policy that governs it now."""
    try:
        ro = await rt.kube.get_rollout(namespace, name)
        if ro is None:
            return None
        policy = governing_policy(ro.labels, rt.indexes.namespace_policies(namespace))
        if policy is None or not policy.spec.triggers.log_watch.enabled:
            return None
        rt.last_look[(policy.namespace, policy.name, ro.name)] = rt.clock()
        return await look_at_logs(rt, policy, ro)
    except TransientError as e:
        log.warning("log watch of %s/%s deferred: %s", namespace, name, e)
    except SelfHealError as e:
        log.error("log watch of %s/%s failed: %s", namespace, name, e)
    return None


# --- the decisions ----------------------------------------------------------------------------------


async def on_rollout(rt: Runtime, ro: Rollout, policies: Iterable[PolicyRef]) -> Outcome | None:
    """Decide at an indefinite or inconclusive-analysis pause.

    Each pause is judged once; an inconclusive judgement (too little evidence yet), or one made without
    the analyzer, is judged again after the policy's log-watch interval, so a pause reached early gets
    its verdict when there is data. A judgement the Rollout outran before it could act is not kept.
    What was judged and done is kept in the judgement ledger (`execution`), across restarts.
    """
    view = RolloutView.of(ro)
    rt.forget_revisions(ro.namespace, ro.name, {h for h in (view.canary, view.stable, view.current) if h})
    policy = governing_policy(ro.labels, policies)
    if policy is None:
        return None
    await execution.catch_up(rt, policy, ro)
    trigger = pause_trigger(view, policy)
    if trigger is None:
        return None
    return await analyze(rt, policy, ro, trigger)


async def on_analysis_run(
    rt: Runtime, run: AnalysisRun, rollout_obj: Mapping[str, Any] | None, policies: Iterable[PolicyRef]
) -> Outcome | None:
    """An AnalysisRun of a Rollout ended Failed or Error: analyze that revision once per run."""
    if run.phase not in (AR_FAILED, AR_ERROR) or rollout_obj is None:
        return None
    ro = Rollout.from_obj(rollout_obj)
    if run.owner is None or run.owner.uid != ro.uid:
        return None
    # Only the revision being rolled out now: old failed runs (e.g. replayed at start-up) are history.
    if not run.pod_hash or run.pod_hash != RolloutView.of(ro).current:
        return None
    policy = governing_policy(ro.labels, policies)
    if policy is None or not policy.spec.triggers.analysis_failed:
        return None
    handled = (ro.namespace, run.name, run.uid)
    if handled in rt.handled_runs:
        return None
    ticket = await rt.kube.get_ticket(ro.namespace, ticket_name(ro.name, run.pod_hash))
    if ticket and run.name in ((ticket.get("status") or {}).get("occurrenceKeys") or []):
        rt.handled_runs.add(handled)
        return None
    outcome = await analyze(rt, policy, ro, Trigger.ANALYSIS_FAILED, analysis_run=run, occurrence_key=run.name)
    if outcome is not None:
        rt.handled_runs.add(handled)
    return outcome
