"""Carry out a judgement step by step (ticket, action, Events), each step in the ledger: a restart resumes
where it stopped and repeats nothing.

The judgement is recorded before anything is done about it (`record`); then the failure goes on its
RemediationTicket (from the draft kept in the record, so the evidence survives a restart after the canary's
pods are gone), the action is sent with the patches `kubectl argo rollouts` sends, and the verdict is
explained in Events whose names derive from their content. Each step is recorded once done (`carry_out`).
After a restart, an action the Rollout already shows is recorded as done rather than sent again, a ticket
or an Event that exists is found rather than made twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from selfheal.domain import ledger
from selfheal.domain.argo import (
    ABORT_STATUS_PATCH,
    PAUSE_SPEC_PATCH,
    ROLLOUT_API_VERSION,
    Rollout,
    canary_hash,
    is_aborted,
    is_inconclusive_pause,
    is_paused_at_indefinite_step,
    promote_patches,
)
from selfheal.domain.decision import Action
from selfheal.domain.ledger import CanaryRecord, JudgedSituation, JudgementRecord, SituationRecord, Step
from selfheal.domain.situation import CHANGED, Situation, refusal_to_proceed, refusal_to_stop
from selfheal.domain.ticket import TicketSpec, ticket_name
from selfheal.domain.verdict import VerdictKind
from selfheal.domain.words import (
    EventText,
    action_failed_event,
    decision_log,
    last_action,
    ticket_opened_event,
    verdict_event,
)
from selfheal.errors import Conflict, SelfHealError
from selfheal.services import events, remediation, tickets
from selfheal.services.judge import Judgement, redactor_for
from selfheal.services.locks import ticket_key
from selfheal.services.policies import PolicyRef
from selfheal.services.runtime import Runtime

log = logging.getLogger(__name__)


# An abort refused because the Rollout changed (409) is checked and sent again this many times.
ABORT_ATTEMPTS = 3
SKIPPED_CHANGED = f"skipped: {CHANGED}"


@dataclass(frozen=True)
class Where:
    """The policy whose status keeps the record, and the Rollout it is about."""

    policy: PolicyRef
    namespace: str
    rollout: str

    @classmethod
    def of(cls, policy: PolicyRef, ro: Rollout) -> Where:
        return cls(policy, ro.namespace, ro.name)

    async def load(self, rt: Runtime) -> CanaryRecord | None:
        return await rt.ledger.get(self.namespace, self.policy.name, self.rollout)

    async def save(self, rt: Runtime, record: CanaryRecord | None) -> None:
        await rt.ledger.put(self.namespace, self.policy.name, self.rollout, record)


# --- recording and resuming -----------------------------------------------------------------------


async def observe(rt: Runtime, policy: PolicyRef, ro: Rollout) -> CanaryRecord | None:
    """The record of the Rollout's live canary, its attempts counted; dropped once no canary is live."""
    where = Where.of(policy, ro)
    current = await where.load(rt)
    pod_hash = canary_hash(ro)
    if pod_hash is None:
        if current is not None and (current.last is None or current.last.done):
            await where.save(rt, None)
            return None
        return current  # a judgement to finish first: kept until it is done
    unfinished = current is not None and current.last is not None and not current.last.done
    if unfinished and current is not None and current.pod_template_hash != pod_hash:
        return current  # the previous revision's judgement is finished before this one is recorded
    record = ledger.for_revision(current, pod_hash, is_aborted(ro))
    await where.save(rt, record)
    return record


async def resume(rt: Runtime, policy: PolicyRef, ro: Rollout) -> CanaryRecord | None:
    """The Rollout's record kept current, with a judgement a restart interrupted carried out to its end.
    The caller holds the canary's in-flight guard."""
    record = await observe(rt, policy, ro)
    if record is not None and record.last is not None and not record.last.done:
        await carry_out(rt, policy, ro, record, resuming=True)
        record = await observe(rt, policy, ro)
    return record


async def catch_up(rt: Runtime, policy: PolicyRef, ro: Rollout) -> CanaryRecord | None:
    """`resume`, unless an analysis of the canary is in flight (it resumes first itself)."""
    key = (ro.namespace, ro.name, canary_hash(ro) or ro.status.current_pod_hash)
    if key in rt.in_flight:
        return None
    rt.in_flight.add(key)
    try:
        return await resume(rt, policy, ro)
    finally:
        rt.in_flight.discard(key)


def ticket_due(j: Judgement, ro: Rollout, analysis_failed: bool) -> bool:
    """An unhealthy canary that is (or is about to be) aborted is a failure to fix: it gets its ticket."""
    if j.verdict.verdict != VerdictKind.UNHEALTHY:
        return False
    aborting = j.decision.action == Action.ABORT and not j.decision.dry_run
    return aborting or is_aborted(ro) or analysis_failed


async def record(
    rt: Runtime,
    policy: PolicyRef,
    ro: Rollout,
    judged: Situation,
    j: Judgement,
    *,
    trigger: str,
    situation: str,
    occurrence_key: str,
    analysis_failed: bool,
) -> CanaryRecord:
    """Write the judgement to the ledger before anything is done about it, with the ticket it calls for."""
    now = rt.clock()
    where = Where.of(policy, ro)
    current = await where.load(rt)
    base = ledger.for_revision(current, judged.canary, judged.aborted)
    v = j.verdict
    # Judged without the analyzer it was meant to have: asked again after the interval, like an unsure one.
    again = j.llm_error is not None
    base = ledger.with_judged(base, JudgedSituation(situation=situation, verdict=v.verdict, at=now, again=again))
    due = ticket_due(j, ro, analysis_failed)
    draft = ""
    if due:
        redact = redactor_for(policy.spec.analysis).redact
        draft = tickets.ticket_spec(j, ro, policy.name, trigger, redact).model_dump_json(
            by_alias=True, exclude_none=True
        )
    last = JudgementRecord(
        situation=situation,
        trigger=trigger,
        revision=ro.revision[:63],
        at=now,
        verdict=v.verdict,
        confidence=v.confidence,
        analyzer=str(v.analyzer),
        summary=v.summary[: ledger.MAX_SUMMARY],
        reason=j.decision.reason[: ledger.MAX_REASON],
        analyzer_error=(j.llm_error or "")[: ledger.MAX_ERROR],
        action=j.decision.action.value,
        dry_run=j.decision.dry_run,
        occurrence_key=occurrence_key[:253],
        fingerprint=j.fingerprint,
        ticket=ticket_name(ro.name, judged.canary) if due else "",
        step=Step.JUDGED,
        judged=SituationRecord.of(judged),
        draft=draft,
    )
    result = base.model_copy(update={"last": last})
    await where.save(rt, result)
    return result


async def carry_out(
    rt: Runtime, policy: PolicyRef, ro: Rollout, canary: CanaryRecord, *, resuming: bool = False
) -> CanaryRecord:
    """Do what the canary's last judgement calls for, from the step it reached; the record when done."""
    where = Where.of(policy, ro)
    last = canary.last
    assert last is not None
    if last.step == Step.JUDGED:
        update: dict[str, object] = {"step": Step.TICKETED}
        if last.ticket and last.draft:
            name, opened = await _ticket(rt, policy, ro, last)
            update.update(ticket=name, opened=opened, draft="")
        last = last.model_copy(update=update)
        canary = canary.model_copy(update={"last": last})
        if last.ticket:
            await where.save(rt, canary)
    if last.step == Step.TICKETED:
        canary = await _act(rt, ro, canary, last, resuming=resuming)
        last = canary.last
        assert last is not None
        if last.result.startswith(SKIPPED_CHANGED):  # the Rollout outran the judgement: judged again
            canary = ledger.without_judged(canary, last.situation)
        await where.save(rt, canary)
        if last.ticket:
            await tickets.note_action(
                rt.kube, ro.namespace, last.ticket, last_action(last.result), last.revision, rt.clock()
            )
    if last.step == Step.ACTED:
        posted = await _explain(rt, ro, last)
        if posted and last.opened:
            rt.metrics.tickets_opened.inc(namespace=ro.namespace)
            told = ticket_opened_event(last.ticket, last.revision, last.fingerprint, await _headline(rt, ro, last))
            posted = await rollout_event(rt, last.judged.uid or ro.uid, ro.namespace, ro.name, told)
            log.info(
                "opened RemediationTicket %s/%s for revision %s of %s",
                ro.namespace,
                last.ticket,
                last.revision,
                ro.name,
                extra={"namespace": ro.namespace, "ticket": last.ticket, "rollout": ro.name, "revision": last.revision},
            )
        if posted:  # else the Events are posted at the next look at the Rollout
            canary = canary.model_copy(update={"last": last.model_copy(update={"step": Step.DONE})})
            await where.save(rt, canary)
    return canary


# --- the ticket -----------------------------------------------------------------------------------


async def _ticket(rt: Runtime, policy: PolicyRef, ro: Rollout, last: JudgementRecord) -> tuple[str, bool]:
    """Record the failure on its ticket: a merged fix failing the same way reopens the fix's ticket
    (`remediation.record_failure`); otherwise the revision's ticket is created or counts one more
    occurrence. ``(name, opened)``: opened when this judgement's occurrence is the ticket's first."""
    spec = TicketSpec.model_validate_json(last.draft)
    regressed = await remediation.record_failure(
        rt, ro.namespace, ro.name, spec.pod_template_hash, spec.revision, spec.signature or spec.fingerprint, rt.clock()
    )
    if regressed:
        return regressed, False
    async with rt.lock(ticket_key(ro.namespace, last.ticket)):
        name, opened, counted = await tickets.record(rt.kube, spec, ro, key=last.occurrence_key, now=rt.clock())
    if counted and not opened:
        log.info("ticket %s/%s: one more occurrence (%s)", ro.namespace, name, last.occurrence_key)
    return name, opened


# --- the action -----------------------------------------------------------------------------------


async def _act(
    rt: Runtime, ro: Rollout, canary: CanaryRecord, last: JudgementRecord, *, resuming: bool
) -> CanaryRecord:
    """Apply the decision with the patches `kubectl argo rollouts` sends, at most once per revision
    (promote: once per step), to the situation that was judged only; the record with the result.

    Each patch carries the resourceVersion of a fresh read found to be still the judged situation,
    so a change in between is refused by the apiserver (409) instead of overwritten.
    """
    judged = last.judged.situation()
    action = Action(last.action)
    taken = "none"
    once = ""
    if action != Action.NONE and last.dry_run:
        taken = f"dry-run:{action.value}"
    elif action != Action.NONE:
        detail = judged.step_label() if action == Action.PROMOTE else f"attempt-{canary.attempt}"
        once = ledger.acted_key(action.value, detail)
        if once in canary.acted:
            taken = "skipped: already done"
        else:
            taken = await _send(rt, ro, judged, action, last, resuming=resuming)
    if taken == action.value and action != Action.NONE:
        canary = ledger.with_acted(canary, once)
        if last.verdict == VerdictKind.UNHEALTHY and action in (Action.ABORT, Action.PAUSE):
            rt.metrics.canaries_stopped.inc(namespace=ro.namespace)
    return canary.model_copy(update={"last": last.model_copy(update={"result": taken, "step": Step.ACTED})})


async def _send(
    rt: Runtime, ro: Rollout, judged: Situation, action: Action, last: JudgementRecord, *, resuming: bool
) -> str:
    fresh = await rt.kube.get_rollout(ro.namespace, ro.name)
    if resuming and fresh is not None and ledger.fulfilled(action.value, judged, Situation.of(fresh)):
        return action.value  # sent before a restart kept it from being recorded
    try:
        if action == Action.ABORT:
            taken = await _abort(rt, ro, judged, fresh)
        elif action == Action.PAUSE:
            taken = await _pause(rt, ro, judged, fresh, stopping=last.verdict == VerdictKind.UNHEALTHY)
        else:
            taken = await _promote(rt, ro, judged, fresh)
    except Conflict:
        return f"{SKIPPED_CHANGED} (the apiserver refused the patch)"
    except SelfHealError as e:
        await rollout_event(
            rt, judged.uid or ro.uid, ro.namespace, ro.name, action_failed_event(action.value, last.revision, str(e))
        )
        raise
    if taken == action.value:
        rt.metrics.actions.inc(namespace=ro.namespace, action=action.value)
    return taken


async def _abort(rt: Runtime, ro: Rollout, judged: Situation, fresh: Rollout | None) -> str:
    """Abort the judged revision, wherever it stands now; a 409 is read again and retried a few times."""
    for _ in range(ABORT_ATTEMPTS):
        why = refusal_to_stop(judged, fresh)
        if why is not None or fresh is None:
            return f"skipped: {why}"
        if is_aborted(fresh):
            return "skipped: already aborted"
        try:
            await rt.kube.patch_rollout_status(
                ro.namespace, ro.name, ABORT_STATUS_PATCH, resource_version=fresh.resource_version
            )
        except Conflict:
            fresh = await rt.kube.get_rollout(ro.namespace, ro.name)
            continue
        return Action.ABORT.value
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


# --- the Events -----------------------------------------------------------------------------------


def explanation(last: JudgementRecord) -> EventText:
    """The verdict's Event, from the record alone: the same words whenever it is posted."""
    return verdict_event(
        verdict=last.verdict,
        confidence=last.confidence,
        analyzer=last.analyzer,
        summary=last.summary,
        revision=last.revision,
        trigger=last.trigger,
        taken=last.result,
        decision_reason=last.reason,
        analyzer_error=last.analyzer_error or None,
    )


async def _explain(rt: Runtime, ro: Rollout, last: JudgementRecord) -> bool:
    """Every decision is an Event on the Rollout (`kubectl describe rollout` answers "why") and a line of
    the operator's log."""
    message, fields = decision_log(
        namespace=ro.namespace,
        rollout=ro.name,
        revision=last.revision,
        trigger=last.trigger,
        verdict=last.verdict.value,
        confidence=last.confidence,
        analyzer=last.analyzer,
        action=last.result,
        reason=last.reason,
    )
    log.info("%s", message, extra=fields)
    return await rollout_event(rt, last.judged.uid or ro.uid, ro.namespace, ro.name, explanation(last))


async def _headline(rt: Runtime, ro: Rollout, last: JudgementRecord) -> str:
    """What failed, in one line, as the ticket says it."""
    try:
        obj = await rt.kube.get_ticket(ro.namespace, last.ticket)
    except SelfHealError:
        return ""
    return str(((obj or {}).get("spec") or {}).get("headline") or "")


async def rollout_event(rt: Runtime, uid: str, namespace: str, name: str, event: EventText) -> bool:
    """An Event on the Rollout; its name derives from its content, so posting it again changes nothing.
    False when the apiserver could not take it now (it is worth posting again later)."""
    return await events.post(rt, events.about(ROLLOUT_API_VERSION, "Rollout", namespace, name, uid), event)
