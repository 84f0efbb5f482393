"""Which trigger an observed Rollout or AnalysisRun fires, and under which policy."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from selfheal.domain.argo import (
    AR_ERROR,
    AR_FAILED,
    AnalysisRun,
    Rollout,
    canary_hash,
    is_inconclusive_pause,
    is_paused_at_indefinite_step,
    stable_hash,
)
from selfheal.domain.ticket import ticket_name
from selfheal.errors import SelfHealError
from selfheal.services import execution
from selfheal.services.analysis import Outcome, Trigger, analyze, look_at_logs
from selfheal.services.policies import PolicyRef, choose_policy, policies_for
from selfheal.services.runtime import Runtime

log = logging.getLogger(__name__)


def governing_policy(ro: Rollout, policies: Iterable[PolicyRef]) -> PolicyRef | None:
    return choose_policy(policies_for(ro.labels, policies))


async def on_rollout(rt: Runtime, ro: Rollout, policies: Iterable[PolicyRef]) -> Outcome | None:
    """A Rollout changed (or the policy ticked): decide at an indefinite or inconclusive-analysis pause.

    Each pause is judged once; an inconclusive judgement (too little evidence yet), or one made without
    the analyzer, is judged again after the policy's log-watch interval, so a pause reached early gets
    its verdict when there is data. A judgement the Rollout outran before it could act is not kept.
    What was judged and done is kept in the judgement ledger (`execution`), across restarts.
    """
    rt.forget_revisions(
        ro.namespace, ro.name, {h for h in (canary_hash(ro), stable_hash(ro), ro.status.current_pod_hash) if h}
    )
    policy = governing_policy(ro, policies)
    if policy is None:
        return None
    await execution.catch_up(rt, policy, ro)
    triggers = policy.spec.triggers
    if triggers.indefinite_pause and is_paused_at_indefinite_step(ro):
        trigger = Trigger.INDEFINITE_PAUSE
    elif triggers.analysis_inconclusive and is_inconclusive_pause(ro):
        trigger = Trigger.ANALYSIS_INCONCLUSIVE
    else:
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
    if not run.pod_hash or run.pod_hash != (canary_hash(ro) or ro.status.current_pod_hash):
        return None
    policy = governing_policy(ro, policies)
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


def governed(
    policy: PolicyRef, rollouts: Iterable[Mapping[str, Any]], policies: Iterable[PolicyRef]
) -> Iterator[tuple[Rollout, Mapping[str, Any]]]:
    """The Rollouts (model and body) for which ``policy`` is the one that decides."""
    all_policies = list(policies)
    for entry in rollouts:
        try:
            ro = Rollout.from_obj(entry["body"])
        except Exception:  # a Rollout we cannot read must not hide the others
            log.exception("a Rollout of policy %s/%s cannot be read; skipped", policy.namespace, policy.name)
            continue
        chosen = governing_policy(ro, all_policies)
        if chosen is not None and chosen.name == policy.name:
            yield ro, entry["body"]


async def sweep(
    rt: Runtime,
    policy: PolicyRef,
    rollouts: Iterable[Mapping[str, Any]],
    runs: Mapping[Any, Iterable[Mapping[str, Any]]],
    policies: Iterable[PolicyRef],
) -> None:
    """Catch up on failed runs whose event was missed or whose analysis failed for a passing reason,
    and on pauses still waiting for a verdict."""
    all_policies = list(policies)
    mine = list(governed(policy, rollouts, all_policies))
    # The judgement ledger forgets the Rollouts the policy no longer governs (deleted, selected elsewhere).
    try:
        await rt.ledger.prune(policy.namespace, policy.name, {ro.name for ro, _ in mine})
    except SelfHealError as e:  # tried again at the next sweep
        log.warning("judgement ledger of policy %s/%s not pruned yet: %s", policy.namespace, policy.name, e)
    for ro, body in mine:
        try:
            for run_obj in runs.get((ro.namespace, ro.uid), []):
                await on_analysis_run(rt, AnalysisRun.from_obj(run_obj), body, all_policies)
            await on_rollout(rt, ro, all_policies)
        except SelfHealError as e:  # one Rollout's trouble must not hold up the others
            log.warning("catch-up for %s/%s deferred: %s", ro.namespace, ro.name, e)
        except Exception:  # nor may a fault of ours: it is logged whole, and the next Rollout is looked at
            log.exception("catch-up for %s/%s failed unexpectedly", ro.namespace, ro.name)


async def watch_logs(
    rt: Runtime, policy: PolicyRef, rollouts: Iterable[Mapping[str, Any]], policies: Iterable[PolicyRef]
) -> list[Outcome]:
    """The policy's periodic log look at each canary it governs, when its interval has passed."""
    watch = policy.spec.triggers.log_watch
    if not watch.enabled:
        return []
    interval = watch.interval_seconds * rt.config.log_watch_scale
    outcomes = []
    for ro, _ in governed(policy, rollouts, policies):
        key = (policy.namespace, policy.name, ro.name)
        last = rt.last_look.get(key)
        now = rt.clock()
        if last is not None and (now - last).total_seconds() < interval:
            continue
        rt.last_look[key] = now
        try:
            outcome = await look_at_logs(rt, policy, ro)
        except SelfHealError as e:  # one Rollout's trouble must not hold up the others
            log.warning("log watch of %s/%s deferred: %s", ro.namespace, ro.name, e)
            continue
        except Exception:  # nor may a fault of ours: it is logged whole, and the next Rollout is looked at
            log.exception("log watch of %s/%s failed unexpectedly", ro.namespace, ro.name)
            continue
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes
