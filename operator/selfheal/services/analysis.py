"""One analysis of one canary: gather evidence, judge it, and hand the judgement over to be carried out."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum

from selfheal.domain import ledger
from selfheal.domain.argo import AnalysisRun, Rollout, current_step_index, is_canary_in_progress
from selfheal.domain.evidence import Evidence, Side
from selfheal.domain.ledger import CanaryRecord
from selfheal.domain.situation import Situation
from selfheal.domain.ticket import ticket_name
from selfheal.domain.verdict import VerdictKind
from selfheal.domain.words import EventText, budget_event, decision_log, last_action, ticket_opened_event, verdict_event
from selfheal.services import execution, remediation, tickets
from selfheal.services.analyzers import analyzer_for
from selfheal.services.execution import SKIPPED_CHANGED
from selfheal.services.gather import gather_evidence
from selfheal.services.judge import Judgement, assess, judge, redactor_for
from selfheal.services.locks import ticket_key
from selfheal.services.policies import PolicyRef
from selfheal.services.runtime import Runtime

log = logging.getLogger(__name__)


class Trigger(StrEnum):
    ANALYSIS_FAILED = "analysisFailed"
    ANALYSIS_INCONCLUSIVE = "analysisInconclusive"
    INDEFINITE_PAUSE = "indefinitePause"
    LOG_WATCH = "logWatch"
    # Argo's own analysis asked, through its web metric provider (services/inline.py).
    INLINE = "inline"


@dataclass
class Outcome:
    judgement: Judgement
    action_taken: str
    ticket: str | None = None

    @property
    def superseded(self) -> bool:
        """The Rollout changed before the action: the judgement no longer applies to it."""
        return self.action_taken.startswith(SKIPPED_CHANGED)


async def analyze(
    rt: Runtime,
    policy: PolicyRef,
    ro: Rollout,
    trigger: Trigger,
    *,
    analysis_run: AnalysisRun | None = None,
    occurrence_key: str = "",
    situation: str = "",
) -> Outcome | None:
    """Analyze the Rollout's current canary once; None when skipped (another analysis of the same canary
    is running, the situation was judged already, or the budget is spent). Safe to call on every event:
    a judged situation is judged again only while its verdict is unsure, and repeats neither repeat
    actions nor count twice, across restarts too (the judgement ledger)."""
    judged = Situation.of(ro)
    key = (ro.namespace, ro.name, judged.canary)
    if not judged.canary or key in rt.in_flight:
        return None
    rt.in_flight.add(key)
    started = time.monotonic()
    try:
        canary = await execution.resume(rt, policy, ro)
        occurrence_key = occurrence_key or cycle_key(canary, ro, judged.canary)
        situation = situation or situation_of(ro, trigger, analysis_run, occurrence_key)
        interval = policy.spec.triggers.log_watch.interval_seconds * rt.config.log_watch_scale
        if canary is not None and not ledger.is_due(canary, situation, interval, rt.clock()):
            return None
        outcome = await _analyze(rt, policy, ro, judged, trigger, analysis_run, occurrence_key, situation)
    finally:
        rt.in_flight.discard(key)
    if outcome is not None:
        rt.metrics.analysis_seconds.observe(time.monotonic() - started, trigger=trigger.value)
    return outcome


def cycle_key(canary: CanaryRecord | None, ro: Rollout, pod_hash: str) -> str:
    """What one attempt at rolling out a revision is called, so each attempt counts once as an occurrence.

    The AnalysisRun of the attempt names it (a retry gets a new one: ``.1``, ``.2``...), whichever
    trigger noticed the failure; without one, the attempt number the ledger keeps does (an attempt ends
    with an abort, the next starts with a retry).
    """
    status, blue_green = ro.status.canary, ro.status.blue_green
    for run in (
        status.current_background_analysis_run_status,
        status.current_step_analysis_run_status,
        blue_green.pre_promotion_analysis_run_status,
        blue_green.post_promotion_analysis_run_status,
    ):
        if run is not None and run.name and run.status not in ("", "Successful"):
            return run.name
    attempt = canary.attempt if canary is not None and canary.pod_template_hash == pod_hash else 0
    return f"{pod_hash}:attempt-{attempt}"


def situation_of(ro: Rollout, trigger: Trigger, analysis_run: AnalysisRun | None, cycle: str) -> str:
    """The name of the situation a trigger asks to judge: a failed run, a pause at a step, or a log-watch
    finding of one attempt. Each is judged once (again only while unsure)."""
    if analysis_run is not None and analysis_run.name:
        return f"run/{analysis_run.name}"
    if trigger == Trigger.LOG_WATCH:
        return f"{trigger.value}/{cycle}"
    return f"{trigger.value}/step-{current_step_index(ro)}"


async def _analyze(
    rt: Runtime,
    policy: PolicyRef,
    ro: Rollout,
    judged: Situation,
    trigger: Trigger,
    analysis_run: AnalysisRun | None,
    occurrence_key: str,
    situation: str,
) -> Outcome | None:
    """Gather and judge, then record the judgement and carry it out (`execution`)."""
    spec = policy.spec
    now = rt.clock()
    usage = rt.usage_of(policy.namespace, policy.name)
    usage.roll(now)
    if usage.this_hour >= spec.budget.analyses_per_hour:
        await post_event(rt, ro, budget_event(policy.name, spec.budget.analyses_per_hour, trigger.value, ro.revision))
        return None
    evidence = await gather_evidence(
        rt.kube,
        ro,
        spec.analysis.logs,
        trigger=trigger.value,
        now=now,
        analysis_run=analysis_run,
        runs=rt.indexes.watched_runs(ro.namespace, ro.uid),
    )
    evidence = _with_snapshot(rt, evidence)
    analyzer, analyzer_error = await analyzer_for(
        rt.kube, rt.clients, policy.namespace, spec.analysis.llm, observe_llm=rt.metrics.llm_request_seconds.observe
    )
    tokens_left = max(0, spec.budget.tokens_per_day - usage.tokens_today)
    j = await judge(
        evidence,
        spec.analysis,
        spec.decision,
        analyzer,
        analyzer_error=analyzer_error,
        token_budget_left=tokens_left,
        cpu=rt.cpu.run,
    )
    usage.count_analysis(now)
    usage.count_tokens(j.tokens, now)
    _count_analysis(rt, policy, ro.namespace, trigger, j)

    canary = await execution.record(
        rt,
        policy,
        ro,
        judged,
        j,
        trigger=trigger.value,
        situation=situation,
        occurrence_key=occurrence_key,
        analysis_failed=trigger == Trigger.ANALYSIS_FAILED,
    )
    canary = await execution.carry_out(rt, policy, ro, canary)
    last = canary.last
    assert last is not None
    return Outcome(judgement=j, action_taken=last.result, ticket=last.ticket or None)


async def look_at_logs(rt: Runtime, policy: PolicyRef, ro: Rollout) -> Outcome | None:
    """The periodic look while a canary progresses: cheap statistics first; the full analysis (LLM,
    action) only when the statistics find the canary unhealthy, once per attempt (again only while the
    verdict is unsure). The evidence is kept as a snapshot."""
    if not is_canary_in_progress(ro):
        return None
    now = rt.clock()
    evidence = await gather_evidence(
        rt.kube,
        ro,
        policy.spec.analysis.logs,
        trigger=Trigger.LOG_WATCH.value,
        now=now,
        runs=rt.indexes.watched_runs(ro.namespace, ro.uid),
    )
    if evidence.has_canary_logs():
        rt.keep_snapshot(evidence)
    _, _, statistical = await rt.cpu.run(assess, evidence, policy.spec.analysis)
    if statistical.verdict != VerdictKind.UNHEALTHY:
        return None
    return await analyze(rt, policy, ro, Trigger.LOG_WATCH)


def _count_analysis(rt: Runtime, policy: PolicyRef, namespace: str, trigger: Trigger, j: Judgement) -> None:
    m = rt.metrics
    m.analyses.inc(
        namespace=namespace,
        policy=policy.name,
        trigger=trigger.value,
        verdict=str(j.verdict.verdict),
        analyzer=str(j.verdict.analyzer),
    )
    if j.llm_error:
        m.analyzer_unavailable.inc(namespace=namespace, policy=policy.name)
    if j.tokens:
        m.llm_tokens.inc(j.tokens, namespace=namespace, policy=policy.name)


def _with_snapshot(rt: Runtime, evidence: Evidence) -> Evidence:
    """When the canary pods are gone (scaled down by an abort), use the canary side of the latest snapshot."""
    has_canary_logs = evidence.has_canary_logs()
    snapshot = rt.snapshots.get((evidence.namespace, evidence.rollout, evidence.canary_hash))
    if has_canary_logs:
        rt.keep_snapshot(evidence)
        return evidence
    if snapshot is None:
        return evidence
    stable = evidence.side(Side.STABLE) or snapshot.side(Side.STABLE)
    return evidence.model_copy(
        update={"pods": snapshot.side(Side.CANARY) + stable, "events": evidence.events or snapshot.events}
    )


# --- for the verdict endpoint (services/inline.py): Argo acts on the answer, selfheal explains and tickets it


async def post_event(rt: Runtime, ro: Rollout, event: EventText) -> None:
    await execution.rollout_event(rt, ro.uid, ro.namespace, ro.name, event)


async def explain(rt: Runtime, ro: Rollout, j: Judgement, trigger: Trigger, taken: str) -> None:
    """The verdict's Event on the Rollout and its line in the operator's log."""
    v = j.verdict
    message, fields = decision_log(
        namespace=ro.namespace,
        rollout=ro.name,
        revision=ro.revision,
        trigger=trigger.value,
        verdict=v.verdict.value,
        confidence=v.confidence,
        analyzer=v.analyzer.value,
        action=taken,
        reason=j.decision.reason,
    )
    log.info("%s", message, extra=fields)
    event = verdict_event(
        verdict=v.verdict,
        confidence=v.confidence,
        analyzer=v.analyzer.value,
        summary=v.summary,
        revision=ro.revision,
        trigger=trigger.value,
        taken=taken,
        decision_reason=j.decision.reason,
        analyzer_error=j.llm_error,
    )
    await post_event(rt, ro, event)


async def open_ticket(
    rt: Runtime, policy: PolicyRef, ro: Rollout, j: Judgement, trigger: Trigger, occurrence_key: str, taken: str
) -> str:
    """The ticket of a failing verdict, counted once per ``occurrence_key``; a merged fix failing the same
    way reopens the fix's ticket."""
    spec = tickets.ticket_spec(j, ro, policy.name, trigger.value, redactor_for(policy.spec.analysis).redact)
    regressed = await remediation.record_failure(
        rt, ro.namespace, ro.name, spec.pod_template_hash, spec.revision, spec.signature or spec.fingerprint, rt.clock()
    )
    if regressed:
        return regressed
    async with rt.lock(ticket_key(ro.namespace, ticket_name(ro.name, spec.pod_template_hash))):
        name, opened, counted = await tickets.record(
            rt.kube, spec, ro, key=occurrence_key, now=rt.clock(), action=last_action(taken)
        )
    if opened:
        rt.metrics.tickets_opened.inc(namespace=ro.namespace)
        await post_event(rt, ro, ticket_opened_event(name, ro.revision, j.fingerprint, spec.headline))
        log.info("opened RemediationTicket %s/%s for revision %s of %s", ro.namespace, name, ro.revision, ro.name)
    elif counted:
        log.info("ticket %s/%s: one more occurrence (%s)", ro.namespace, name, occurrence_key)
    return name
