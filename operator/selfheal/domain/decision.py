"""Verdict combination: the statistical and LLM verdicts and the policy's decision rules become one action.

The rules, in order (the table test walks every cell):

1. Hard statistical evidence (a crash, a restart, a failed metric) is a fact: the verdict is unhealthy
   whatever the analyzer says and at any confidence.
2. A healthy verdict needs a positive case from both sides: the statistics say healthy at the
   threshold (enough canary traffic, nothing decisive) and so does the analyzer. The analyzer's
   healthy against anything else from the statistics is inconclusive at best, never a promote.
3. The analyzer may always be more careful than the statistics: its sure unhealthy stands.
4. Otherwise unhealthy when both lean that way and the statistics are sure; inconclusive when not.
5. An unsure verdict never promotes, whatever ``onInconclusive`` says; an unavailable analyzer
   gives the policy's ``onAnalyzerUnavailable``, except against hard evidence, which needs no
   analyzer: a crash is stopped by ``onUnhealthy`` whether or not the analyzer answers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from selfheal.domain.verdict import Analyzer, Verdict, VerdictKind

if TYPE_CHECKING:
    from selfheal.domain.policy import DecisionSpec

_SUMMARY_LIMIT = 2000
_QUOTE_LIMIT = 200


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
    # The analyzer answered, and the statistics kept its verdict from standing.
    llm_overruled: bool = False


def _value(setting: object) -> str:
    """A policy enum member or plain string as its wire value."""
    return str(getattr(setting, "value", setting))


def _is_hard(verdict: Verdict) -> bool:
    return verdict.hard_evidence and verdict.verdict == VerdictKind.UNHEALTHY


def _sure(verdict: Verdict, threshold: int) -> VerdictKind:
    """The verdict's kind, or inconclusive when its confidence is below the threshold.

    Hard evidence (a crash, a restart, a failed metric) is a fact, not an opinion: no threshold
    turns it into "unsure"."""
    if _is_hard(verdict):
        return verdict.verdict
    if verdict.verdict != VerdictKind.INCONCLUSIVE and verdict.confidence < threshold:
        return VerdictKind.INCONCLUSIVE
    return verdict.verdict


def _said(verdict: Verdict) -> str:
    return f"the {verdict.analyzer} verdict ({verdict.verdict}, {verdict.confidence}%)"


def _with_kind(verdict: Verdict, kind: VerdictKind, **changes: object) -> Verdict:
    return verdict.model_copy(update={"verdict": kind, **changes})


def _merge_refs(*verdicts: Verdict) -> list[str]:
    refs: list[str] = []
    for verdict in verdicts:
        refs += [ref for ref in verdict.evidence_refs if ref not in refs]
    return refs


def _statistics_stand(statistical: Verdict, llm: Verdict, kind: VerdictKind, why: str) -> Verdict:
    """The statistical verdict, as ``kind``, with what the analyzer said and why it did not stand."""
    summary = f"{statistical.summary} (the {llm.analyzer} analyzer said {llm.verdict} at {llm.confidence}%: {why})"
    return _with_kind(
        statistical,
        kind,
        analyzer=Analyzer.COMBINED,
        summary=summary[:_SUMMARY_LIMIT],
        root_cause=statistical.root_cause or llm.root_cause,
        suggested_fix=statistical.suggested_fix or llm.suggested_fix,
        evidence_refs=_merge_refs(statistical, llm),
    )


def _combine(statistical: Verdict, llm: Verdict, threshold: int) -> tuple[Verdict, bool, list[str]]:
    """Both verdicts into one, by the rules of this module. Returns (verdict, llm overruled, notes)."""
    stat_kind = _sure(statistical, threshold)
    llm_kind = _sure(llm, threshold)
    notes = [f"{_said(llm)} is below the {threshold}% threshold"] if llm_kind != llm.verdict else []

    if _is_hard(statistical):
        if llm.verdict == VerdictKind.UNHEALTHY:
            agreed = _with_kind(
                llm,
                VerdictKind.UNHEALTHY,
                confidence=max(llm.confidence, statistical.confidence),
                analyzer=Analyzer.COMBINED,
                evidence_refs=_merge_refs(llm, statistical),
                hard_evidence=True,
            )
            return agreed, False, notes
        refs = ", ".join(statistical.evidence_refs) or "restarts/crashes/failed metrics"
        notes.append(f"{_said(llm)} was overruled by statistical hard evidence ({refs})")
        return (
            _statistics_stand(statistical, llm, VerdictKind.UNHEALTHY, "hard evidence cannot be overruled"),
            True,
            notes,
        )

    if llm_kind == VerdictKind.HEALTHY:
        if stat_kind == VerdictKind.HEALTHY:
            agreed = _with_kind(llm, VerdictKind.HEALTHY, analyzer=Analyzer.COMBINED)
            return agreed.model_copy(update={"evidence_refs": _merge_refs(llm, statistical)}), False, notes
        # No positive case from the statistics: the analyzer's healthy is an opinion about text the
        # workload wrote, and cannot promote on its own.
        seen = f"{statistical.verdict}, {statistical.confidence}%"
        if stat_kind != statistical.verdict:
            seen += f", below the {threshold}% threshold"
        notes.append(f"{_said(llm)} is not confirmed by the statistics ({seen})")
        why = f"not confirmed by the statistics ({seen})"
        return _statistics_stand(statistical, llm, VerdictKind.INCONCLUSIVE, why), True, notes

    if llm_kind == VerdictKind.UNHEALTHY:
        agree = statistical.verdict == VerdictKind.UNHEALTHY
        verdict = _with_kind(
            llm,
            VerdictKind.UNHEALTHY,
            analyzer=Analyzer.COMBINED if agree else llm.analyzer,
            evidence_refs=_merge_refs(llm, statistical) if agree else list(llm.evidence_refs),
        )
        return verdict, False, notes

    # The analyzer is unsure (or below the threshold).
    if stat_kind == VerdictKind.UNHEALTHY and llm.verdict == VerdictKind.UNHEALTHY:
        notes.append(f"the statistics are sure ({statistical.confidence}%) and the analyzer leans the same way")
        leaning = _with_kind(
            statistical, VerdictKind.UNHEALTHY, analyzer=Analyzer.COMBINED, evidence_refs=_merge_refs(statistical, llm)
        )
        return leaning, False, notes
    agree = statistical.verdict == llm.verdict
    verdict = _with_kind(
        llm,
        VerdictKind.INCONCLUSIVE,
        analyzer=Analyzer.COMBINED if agree else llm.analyzer,
        evidence_refs=_merge_refs(llm, statistical),
    )
    return verdict, False, notes


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
        final, overruled, notes = _combine(statistical, llm, threshold)
    else:
        final = _with_kind(statistical, _sure(statistical, threshold))
        if final.verdict != statistical.verdict:
            notes.append(f"{_said(statistical)} is below the {threshold}% threshold")
        if llm_configured:
            unavailable = True
            fallback = _value(decision.on_analyzer_unavailable)
            error = (llm_error or "no answer")[:_QUOTE_LIMIT]
            if fallback == "statistical":
                notes.insert(0, f"analyzer unavailable ({error}); using the statistical verdict")
            elif _is_hard(final):
                notes.insert(0, f"analyzer unavailable ({error}); hard evidence needs no analyzer")
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
