"""One analysis of one canary: gather evidence, judge it, act on the Rollout, explain, and record a ticket."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum

from selfheal.adapters.kube import MAX_EVENT_MESSAGE
from selfheal.domain.argo import (
    ABORT_STATUS_PATCH,
    PAUSE_SPEC_PATCH,
    AnalysisRun,
    Rollout,
    canary_hash,
    is_aborted,
    is_canary_in_progress,
    is_inconclusive_pause,
    is_paused_at_indefinite_step,
    promote_patches,
)
from selfheal.domain.decision import Action
from selfheal.domain.evidence import Evidence, Side
from selfheal.domain.situation import CHANGED, Situation, refusal_to_proceed, refusal_to_stop
from selfheal.domain.verdict import VerdictKind
from selfheal.errors import Conflict, SelfHealError
from selfheal.services import remediation, tickets
from selfheal.services.analyzers import analyzer_for
from selfheal.services.gather import gather_evidence
from selfheal.services.judge import Judgement, assess, judge, redactor_for
from selfheal.services.policies import PolicyRef
from selfheal.services.runtime import Runtime

log = logging.getLogger(__name__)


class Trigger(StrEnum):
    ANALYSIS_FAILED = "analysisFailed"
    ANALYSIS_INCONCLUSIVE = "analysisInconclusive"
    INDEFINITE_PAUSE = "indefinitePause"
    LOG_WATCH = "logWatch"


# Event reasons on the Rollout, one per verdict kind.
EVENT_REASONS = {
    VerdictKind.UNHEALTHY: "CanaryUnhealthy",
    VerdictKind.HEALTHY: "CanaryHealthy",
    VerdictKind.INCONCLUSIVE: "CanaryInconclusive",
}
BUDGET_EXHAUSTED = "AnalysisBudgetExhausted"
ACTION_FAILED = "SelfHealActionFailed"
# An abort refused because the Rollout changed (409) is checked and sent again this many times.
ABORT_ATTEMPTS = 3
SKIPPED_CHANGED = f"skipped: {CHANGED}"
# The verdict's summary keeps at least this much of an Event message, however long the rest is.
MIN_EVENT_SUMMARY = 200


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
) -> Outcome | None:
    """Analyze the Rollout's current canary once; None when skipped (another analysis of the same canary
    is running, or the budget is spent). Safe to call on every event: repeats neither repeat actions nor
    count twice."""
    judged = Situation.of(ro)
    key = (ro.namespace, ro.name, judged.canary)
    if not judged.canary or key in rt.in_flight:
        return None
    rt.in_flight.add(key)
    started = time.monotonic()
    try:
        occurrence_key = occurrence_key or cycle_key(rt, ro, judged.canary)
        outcome = await _analyze(rt, policy, ro, judged, trigger, analysis_run, occurrence_key)
    finally:
        rt.in_flight.discard(key)
    if outcome is not None:
        rt.metrics.analysis_seconds.observe(time.monotonic() - started, trigger=trigger.value)
    return outcome


def cycle_key(rt: Runtime, ro: Rollout, pod_hash: str) -> str:
    """What one attempt at rolling out a revision is called, so each attempt counts once as an occurrence.

    The AnalysisRun of the attempt names it (a retry gets a new one: ``.1``, ``.2``...), whichever
    trigger noticed the failure; without one, the attempt number does (an attempt ends with an abort,
    the next starts with a retry).
    """
    canary = ro.status.canary
    for run in (canary.current_background_analysis_run_status, canary.current_step_analysis_run_status):
        if run is not None and run.name and run.status not in ("", "Successful"):
            return run.name
    return f"{pod_hash}:attempt-{rt.attempt(ro.namespace, ro.name, pod_hash)}"


async def _analyze(
    rt: Runtime,
    policy: PolicyRef,
    ro: Rollout,
    judged: Situation,
    trigger: Trigger,
    analysis_run: AnalysisRun | None,
    occurrence_key: str,
) -> Outcome | None:
    """Gather, judge, act on the judged situation, explain, and record a ticket for an aborted failure."""
    spec = policy.spec
    now = rt.clock()
    usage = rt.usage_of(policy.namespace, policy.name)
    usage.roll(now)
    if usage.this_hour >= spec.budget.analyses_per_hour:
        await _event(
            rt,
            ro,
            BUDGET_EXHAUSTED,
            "Warning",
            f"policy {policy.name} spent its {spec.budget.analyses_per_hour} analyses this hour; "
            f"{trigger.value} on revision {ro.revision} not analyzed",
        )
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

    taken, fresh = await _act(rt, ro, judged, j)
    if taken in (Action.ABORT.value, Action.PAUSE.value) and j.verdict.verdict == VerdictKind.UNHEALTHY:
        rt.metrics.canaries_stopped.inc(namespace=ro.namespace)
    await _explain(rt, ro, j, trigger, taken)

    ticket = None
    same_revision = refusal_to_stop(judged, fresh) is None
    aborted = taken == Action.ABORT.value or (same_revision and is_aborted(fresh)) or trigger == Trigger.ANALYSIS_FAILED
    if j.verdict.verdict == VerdictKind.UNHEALTHY and aborted:
        ticket = await _ticket(rt, policy, ro, j, trigger, occurrence_key)
    return Outcome(judgement=j, action_taken=taken, ticket=ticket)


async def look_at_logs(rt: Runtime, policy: PolicyRef, ro: Rollout) -> Outcome | None:
    """The periodic look while a canary progresses: cheap statistics first; the full analysis (LLM,
    action) only when the statistics find the canary unhealthy. The evidence is kept as a snapshot."""
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
    if any(log.text for pod in evidence.side(Side.CANARY) for log in pod.logs):
        rt.keep_snapshot(evidence)
    _, _, statistical = await rt.cpu.run(assess, evidence, policy.spec.analysis)
    if statistical.verdict != VerdictKind.UNHEALTHY:
        return None
    pod_hash = canary_hash(ro) or ""
    key = (ro.namespace, ro.name, pod_hash, Trigger.LOG_WATCH.value, cycle_key(rt, ro, pod_hash))
    interval = policy.spec.triggers.log_watch.interval_seconds * rt.config.log_watch_scale
    if not rt.due(key, interval, now):
        return None  # this attempt was already judged; the finding is not news
    outcome = await analyze(rt, policy, ro, Trigger.LOG_WATCH)
    if outcome is not None:
        rt.judged[key] = (outcome.judgement.verdict.verdict, now)
    return outcome


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
    has_canary_logs = any(log.text for pod in evidence.side(Side.CANARY) for log in pod.logs)
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


async def _act(rt: Runtime, ro: Rollout, judged: Situation, j: Judgement) -> tuple[str, Rollout]:
    """Apply the decision with the patches `kubectl argo rollouts` sends, at most once per revision
    (promote: once per step), to the situation that was judged only; returns what was done and the
    Rollout as last read.

    Each patch carries the resourceVersion of a fresh read found to be still the judged situation,
    so a change in between is refused by the apiserver (409) instead of overwritten.
    """
    action = j.decision.action
    if action == Action.NONE:
        return "none", ro
    if j.decision.dry_run:
        return f"dry-run:{action.value}", ro
    detail = (
        judged.step_label()
        if action == Action.PROMOTE
        else f"attempt-{rt.attempt(ro.namespace, ro.name, judged.canary)}"
    )
    once = (ro.namespace, ro.name, judged.canary, action.value, detail)
    if once in rt.acted:
        return "skipped: already done", ro
    fresh = await rt.kube.get_rollout(ro.namespace, ro.name)
    try:
        if action == Action.ABORT:
            taken, fresh = await _abort(rt, ro, judged, fresh)
        elif action == Action.PAUSE:
            taken = await _pause(rt, ro, judged, fresh, stopping=j.verdict.verdict == VerdictKind.UNHEALTHY)
        else:
            taken = await _promote(rt, ro, judged, fresh)
    except Conflict:
        return f"{SKIPPED_CHANGED} (the apiserver refused the patch)", fresh or ro
    except SelfHealError as e:
        await _event(rt, ro, ACTION_FAILED, "Warning", f"could not {action.value} revision {ro.revision}: {e}")
        raise
    if taken == action.value:
        rt.acted.add(once)
        rt.metrics.actions.inc(namespace=ro.namespace, action=action.value)
    return taken, fresh or ro


async def _abort(rt: Runtime, ro: Rollout, judged: Situation, fresh: Rollout | None) -> tuple[str, Rollout | None]:
    """Abort the judged revision, wherever it stands now; a 409 is read again and retried a few times."""
    for _ in range(ABORT_ATTEMPTS):
        why = refusal_to_stop(judged, fresh)
        if why is not None or fresh is None:
            return f"skipped: {why}", fresh
        if is_aborted(fresh):
            return "skipped: already aborted", fresh
        try:
            await rt.kube.patch_rollout_status(
                ro.namespace, ro.name, ABORT_STATUS_PATCH, resource_version=fresh.resource_version
            )
        except Conflict:
            fresh = await rt.kube.get_rollout(ro.namespace, ro.name)
            continue
        return Action.ABORT.value, fresh
    raise Conflict(f"abort of {ro.namespace}/{ro.name}: the Rollout kept changing")


async def _pause(rt: Runtime, ro: Rollout, judged: Situation, fresh: Rollout | None, *, stopping: bool) -> str:
    """Pause (``spec.paused``): for an unhealthy verdict, the judged revision wherever it stands; for
    any other, only the situation that was judged."""
    why = refusal_to_stop(judged, fresh)
    if why is not None or fresh is None:
        return f"skipped: {why}"
    if fresh.paused or is_aborted(fresh):
        return "skipped: already " + ("paused" if fresh.paused else "aborted")
    why = None if stopping else refusal_to_proceed(judged, fresh)
    if why is not None:
        return f"skipped: {why}"
    await rt.kube.patch_rollout(ro.namespace, ro.name, PAUSE_SPEC_PATCH, resource_version=fresh.resource_version)
    return Action.PAUSE.value


async def _promote(rt: Runtime, ro: Rollout, judged: Situation, fresh: Rollout | None) -> str:
    """Promote the pause that was judged, exactly as `kubectl argo rollouts promote` would.

    The status patch goes first with the checked resourceVersion; a spec patch (never needed: a
    Rollout paused by hand is not promoted) would carry the version the first one produced, so a
    change between the two is refused too.
    """
    why = refusal_to_proceed(judged, fresh)
    if why is not None or fresh is None:
        return f"skipped: {why}"
    if not (is_paused_at_indefinite_step(fresh) or is_inconclusive_pause(fresh)):
        return "skipped: not paused at a step selfheal may promote"
    status_patch, spec_patch = promote_patches(fresh)
    version = fresh.resource_version
    if status_patch:
        updated = await rt.kube.patch_rollout_status(ro.namespace, ro.name, status_patch, resource_version=version)
        version = str((updated.get("metadata") or {}).get("resourceVersion") or "")
    if spec_patch:
        await rt.kube.patch_rollout(ro.namespace, ro.name, spec_patch, resource_version=version)
    return Action.PROMOTE.value


async def _explain(rt: Runtime, ro: Rollout, j: Judgement, trigger: Trigger, taken: str) -> None:
    """Every verdict is an Event on the Rollout: `kubectl describe rollout` answers "why"."""
    v = j.verdict
    head = (
        f"{v.verdict} (confidence {v.confidence}, analyzer {v.analyzer}, trigger {trigger.value}, "
        f"revision {ro.revision}): "
    )
    tail = f" Action: {taken}. {j.decision.reason}"
    if j.llm_error:
        tail += f" Analyzer unavailable: {j.llm_error[:200]}"
    # The values that decided it come first in the summary: it gets all the room the Event has left.
    room = max(MIN_EVENT_SUMMARY, MAX_EVENT_MESSAGE - len(head) - len(tail))
    summary = " ".join(v.summary.split())
    if len(summary) > room:
        summary = summary[: room - 1] + "…"
    message = head + summary + tail
    kind = "Warning" if v.verdict == VerdictKind.UNHEALTHY else "Normal"
    await _event(rt, ro, EVENT_REASONS[v.verdict], kind, message)


async def _event(rt: Runtime, ro: Rollout, reason: str, kind: str, message: str) -> None:
    involved = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": ro.name, "namespace": ro.namespace, "uid": ro.uid},
    }
    try:
        await rt.kube.create_event(involved, reason=reason, message=message, type=kind, now=rt.clock())
    except SelfHealError as e:  # an Event is an explanation; losing one must not stop the work
        log.warning("could not post Event %s on %s/%s: %s", reason, ro.namespace, ro.name, e)


async def _ticket(
    rt: Runtime, policy: PolicyRef, ro: Rollout, j: Judgement, trigger: Trigger, occurrence_key: str
) -> str:
    async with rt.lock(f"ticket:{ro.namespace}/{ro.name}/{j.evidence.canary_hash}"):
        regressed = await _record_regression(rt, ro, j)
        if regressed:
            return regressed
        name, created, counted = await tickets.record(
            rt.kube,
            j,
            ro,
            policy=policy.name,
            trigger=trigger.value,
            key=occurrence_key,
            now=rt.clock(),
            redact=redactor_for(policy.spec.analysis).redact,
        )
    if created:
        rt.metrics.tickets_opened.inc(namespace=ro.namespace)
        await _event(
            rt,
            ro,
            "RemediationTicketOpened",
            "Warning",
            f"ticket {name} opened for revision {ro.revision} (fingerprint {j.fingerprint[:12]})",
        )
    elif counted:
        log.info("ticket %s/%s: one more occurrence (%s)", ro.namespace, name, occurrence_key)
    return name


async def _record_regression(rt: Runtime, ro: Rollout, j: Judgement) -> str | None:
    """A fixed-and-merged failure seen again on the revision meant to verify it reopens its ticket."""
    return await remediation.record_failure(
        rt, ro.namespace, ro.name, j.evidence.canary_hash, ro.revision, j.fingerprint, rt.clock()
    )
