"""Verdict combination: the statistical and LLM verdicts and the policy's decision rules become one action."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from selfheal.domain.verdict import Analyzer, Verdict, VerdictKind

if TYPE_CHECKING:
    from selfheal.domain.policy import DecisionSpec

_SUMMARY_LIMIT = 2000


class Action(StrEnum):
    ABORT = "abort"
    PAUSE = "pause"
    PROMOTE = "promote"
    NONE = "none"


class Decision(BaseModel):
    """The final verdict and what to do about it. With ``dry_run`` the caller records it and acts on nothing."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    action: Action
    reason: str
    dry_run: bool = False
    analyzer_unavailable: bool = False
    llm_overruled: bool = False


def _value(setting: object) -> str:
    """A policy enum member or plain string as its wire value."""
    return str(getattr(setting, "value", setting))


def _sure(verdict: Verdict, threshold: int) -> VerdictKind:
    """The verdict's kind, or inconclusive when its confidence is below the threshold.

    Hard evidence (a crash, a restart, a failed metric) is a fact, not an opinion: no threshold
    turns it into "unsure"."""
    if verdict.hard_evidence and verdict.verdict == VerdictKind.UNHEALTHY:
        return verdict.verdict
    if verdict.verdict != VerdictKind.INCONCLUSIVE and verdict.confidence < threshold:
        return VerdictKind.INCONCLUSIVE
    return verdict.verdict


def _with_kind(verdict: Verdict, kind: VerdictKind, **changes: object) -> Verdict:
    return verdict.model_copy(update={"verdict": kind, **changes})


def _merge_refs(*verdicts: Verdict) -> list[str]:
    refs: list[str] = []
    for verdict in verdicts:
        refs += [ref for ref in verdict.evidence_refs if ref not in refs]
    return refs


def _combine(statistical: Verdict, llm: Verdict, threshold: int) -> tuple[Verdict, bool, str]:
    """The LLM's verdict, guarded by the statistical hard evidence. Returns (verdict, overruled, note)."""
    llm_kind = _sure(llm, threshold)
    note = ""
    if llm_kind != llm.verdict:
        note = f"the {llm.analyzer} verdict ({llm.verdict}, {llm.confidence}%) is below the {threshold}% threshold"
    hard = statistical.hard_evidence and statistical.verdict == VerdictKind.UNHEALTHY
    if hard and llm_kind != VerdictKind.UNHEALTHY:
        kind = _sure(statistical, threshold)
        summary = (
            f"{statistical.summary} (the {llm.analyzer} analyzer said {llm.verdict} at {llm.confidence}%, "
            "but hard evidence cannot be overruled)"
        )
        verdict = _with_kind(
            statistical,
            kind,
            analyzer=Analyzer.COMBINED,
            summary=summary[:_SUMMARY_LIMIT],
            root_cause=statistical.root_cause or llm.root_cause,
            suggested_fix=statistical.suggested_fix or llm.suggested_fix,
            evidence_refs=_merge_refs(statistical, llm),
            hard_evidence=True,
        )
        note = (
            f"the {llm.analyzer} verdict ({llm.verdict}, {llm.confidence}%) was overruled by statistical "
            f"hard evidence ({', '.join(statistical.evidence_refs) or 'restarts/crashes/failed metrics'})"
        )
        return verdict, True, note
    if llm_kind == VerdictKind.HEALTHY and statistical.verdict == VerdictKind.INCONCLUSIVE:
        # Without canary data of its own, the operator cannot check a "healthy" read from a few lines
        # the workload wrote: it stays unsure until there is evidence.
        note = (
            f"the {llm.analyzer} verdict ({llm.verdict}, {llm.confidence}%) is not confirmed: "
            f"{statistical.summary[:200]}"
        )
        verdict = _with_kind(
            statistical,
            VerdictKind.INCONCLUSIVE,
            analyzer=Analyzer.COMBINED,
            evidence_refs=_merge_refs(statistical, llm),
        )
        return verdict, True, note
    agree = llm.verdict == statistical.verdict
    verdict = _with_kind(
        llm,
        llm_kind,
        analyzer=Analyzer.COMBINED if agree else llm.analyzer,
        evidence_refs=_merge_refs(llm, statistical) if agree else list(llm.evidence_refs),
        hard_evidence=statistical.hard_evidence,
    )
    return verdict, False, note


def _map(kind: VerdictKind, decision: DecisionSpec) -> tuple[Action, str]:
    if kind == VerdictKind.UNHEALTHY:
        setting = _value(decision.on_unhealthy)
        return Action(setting), f"onUnhealthy={setting}"
    if kind == VerdictKind.HEALTHY:
        setting = _value(decision.on_healthy)
        return Action(setting), f"onHealthy={setting}"
    setting = _value(decision.on_inconclusive)
    action = Action(setting)
    # An unsure verdict never promotes, whatever the setting says.
    return (Action.NONE if action == Action.PROMOTE else action), f"onInconclusive={setting}"


def decide(
    statistical: Verdict,
    llm: Verdict | None,
    decision: DecisionSpec,
    *,
    llm_error: str | None = None,
    llm_configured: bool,
) -> Decision:
    """Combine the always-present statistical verdict with the LLM's (if any) and map it to an action."""
    threshold = decision.confidence_threshold
    notes: list[str] = []
    overruled = False
    unavailable = False
    forced: Action | None = None

    if llm_configured and llm is not None and llm_error is None:
        final, overruled, note = _combine(statistical, llm, threshold)
        if note:
            notes.append(note)
    else:
        final = _with_kind(statistical, _sure(statistical, threshold))
        if final.verdict != statistical.verdict:
            notes.append(
                f"the statistical verdict ({statistical.verdict}, {statistical.confidence}%) "
                f"is below the {threshold}% threshold"
            )
        if llm_configured:
            unavailable = True
            fallback = _value(decision.on_analyzer_unavailable)
            error = (llm_error or "no answer")[:200]
            if fallback == "statistical":
                notes.insert(0, f"analyzer unavailable ({error}); using the statistical verdict")
            else:
                forced = Action(fallback)
                notes.insert(0, f"analyzer unavailable ({error}); onAnalyzerUnavailable={fallback}")

    if forced is not None:
        action, rule = forced, f"onAnalyzerUnavailable={forced.value}"
    else:
        action, rule = _map(final.verdict, decision)

    outcome = f"{final.verdict} ({final.analyzer}, {final.confidence}% confidence) -> {action.value} by {rule}"
    reason = "; ".join([*notes, outcome])
    reason = reason[0].upper() + reason[1:] + "."
    dry_run = bool(decision.dry_run)
    if dry_run:
        reason += " Dry run: nothing is done."
    return Decision(
        verdict=final,
        action=action,
        reason=reason,
        dry_run=dry_run,
        analyzer_unavailable=unavailable,
        llm_overruled=overruled,
    )
