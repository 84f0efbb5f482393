"""Verdict combination: the table of statistical x LLM x policy cases and the action each gives."""

from __future__ import annotations

from typing import Any

import pytest

from selfheal.domain.decision import Action, Decision, decide
from selfheal.domain.policy import DecisionSpec
from selfheal.domain.verdict import Analyzer, Verdict, VerdictKind

H, U, N = VerdictKind.HEALTHY, VerdictKind.UNHEALTHY, VerdictKind.INCONCLUSIVE


def stat(kind: VerdictKind, confidence: int = 90, *, hard: bool = False, refs: list[str] | None = None) -> Verdict:
    return Verdict(
        verdict=kind,
        confidence=confidence,
        summary=f"statistics say {kind}",
        analyzer=Analyzer.STATISTICAL,
        hard_evidence=hard,
        evidence_refs=refs or [],
    )


def llm(kind: VerdictKind, confidence: int = 90, *, analyzer: Analyzer = Analyzer.LLM) -> Verdict:
    return Verdict(
        verdict=kind,
        confidence=confidence,
        summary=f"the model says {kind}",
        analyzer=analyzer,
        root_cause="nil map in handler",
        suggested_fix="initialise the map",
        evidence_refs=["T1"],
    )


def spec(**overrides: Any) -> DecisionSpec:
    return DecisionSpec.model_validate(overrides)


PROMOTING = {"on_healthy": "promote"}
CRASH = stat(U, 95, hard=True, refs=["restarts", "T3"])


@pytest.mark.parametrize(
    ("statistical", "answer", "rules", "action", "kind", "analyzer", "overruled"),
    [
        # no LLM configured: the statistical verdict alone
        (stat(U), None, {}, Action.ABORT, U, Analyzer.STATISTICAL, False),
        (stat(H), None, PROMOTING, Action.PROMOTE, H, Analyzer.STATISTICAL, False),
        (stat(H), None, {}, Action.NONE, H, Analyzer.STATISTICAL, False),
        (stat(N), None, {"on_inconclusive": "pause"}, Action.PAUSE, N, Analyzer.STATISTICAL, False),
        (stat(U), None, {"on_unhealthy": "pause"}, Action.PAUSE, U, Analyzer.STATISTICAL, False),
        (stat(U), None, {"on_unhealthy": "none"}, Action.NONE, U, Analyzer.STATISTICAL, False),
        # below the threshold: inconclusive, never promoted
        (stat(H, 69), None, PROMOTING, Action.NONE, N, Analyzer.STATISTICAL, False),
        (stat(U, 50), None, {"on_inconclusive": "pause"}, Action.PAUSE, N, Analyzer.STATISTICAL, False),
        (stat(H, 70), None, PROMOTING, Action.PROMOTE, H, Analyzer.STATISTICAL, False),
        (stat(H, 40), None, {**PROMOTING, "confidence_threshold": 40}, Action.PROMOTE, H, Analyzer.STATISTICAL, False),
        # LLM answered: its verdict wins...
        (stat(H), llm(U), {}, Action.ABORT, U, Analyzer.LLM, False),
        (stat(U), llm(H), PROMOTING, Action.PROMOTE, H, Analyzer.LLM, False),
        (stat(H), llm(H), PROMOTING, Action.PROMOTE, H, Analyzer.COMBINED, False),
        (stat(U), llm(U, analyzer=Analyzer.A2A), {}, Action.ABORT, U, Analyzer.COMBINED, False),
        (stat(H), llm(N), {**PROMOTING, "on_inconclusive": "pause"}, Action.PAUSE, N, Analyzer.LLM, False),
        # ...unless it is unsure
        (stat(H), llm(H, 60), PROMOTING, Action.NONE, N, Analyzer.COMBINED, False),
        (stat(H), llm(U, 60), {"on_inconclusive": "pause"}, Action.PAUSE, N, Analyzer.LLM, False),
        # ...and a healthy LLM never overrules hard evidence, however sure it is
        (CRASH, llm(H, 99), PROMOTING, Action.ABORT, U, Analyzer.COMBINED, True),
        (CRASH, llm(H, 99), {**PROMOTING, "on_unhealthy": "pause"}, Action.PAUSE, U, Analyzer.COMBINED, True),
        (CRASH, llm(N, 80), PROMOTING, Action.ABORT, U, Analyzer.COMBINED, True),
        (CRASH, llm(H, 50), PROMOTING, Action.ABORT, U, Analyzer.COMBINED, True),
        (CRASH, llm(U, 99), {}, Action.ABORT, U, Analyzer.COMBINED, False),
        # hard evidence is a fact whatever its confidence: no threshold makes it "unsure"
        (stat(U, 50, hard=True), llm(H, 99), PROMOTING, Action.ABORT, U, Analyzer.COMBINED, True),
        (stat(U, 50, hard=True), None, PROMOTING, Action.ABORT, U, Analyzer.STATISTICAL, False),
        # with too little canary data of its own, a "healthy" from the LLM is not enough to promote
        (stat(N, 40), llm(H, 95), PROMOTING, Action.NONE, N, Analyzer.COMBINED, True),
        # soft statistical suspicion does not block a sure healthy LLM
        (stat(U, 80, hard=False), llm(H, 95), PROMOTING, Action.PROMOTE, H, Analyzer.LLM, False),
    ],
)
def test_decision_table(
    statistical: Verdict,
    answer: Verdict | None,
    rules: dict[str, Any],
    action: Action,
    kind: VerdictKind,
    analyzer: Analyzer,
    overruled: bool,
) -> None:
    decision = decide(statistical, answer, spec(**rules), llm_configured=answer is not None)
    assert (decision.action, decision.verdict.verdict, decision.verdict.analyzer, decision.llm_overruled) == (
        action,
        kind,
        analyzer,
        overruled,
    ), decision.reason
    assert not decision.analyzer_unavailable
    assert not decision.dry_run
    assert decision.reason.endswith(".")


def test_inconclusive_never_promotes_even_if_configured_so() -> None:
    class Loose:
        confidence_threshold = 70
        on_unhealthy = "abort"
        on_healthy = "promote"
        on_inconclusive = "promote"
        on_analyzer_unavailable = "statistical"
        dry_run = False

    decision = decide(stat(N), None, Loose(), llm_configured=False)  # type: ignore[arg-type]
    assert decision.action == Action.NONE


def test_overruled_reason_explains_why() -> None:
    decision = decide(CRASH, llm(H, 99), spec(**PROMOTING), llm_configured=True)
    assert "overruled" in decision.reason and "hard evidence" in decision.reason
    assert "restarts" in decision.reason
    assert decision.verdict.hard_evidence
    assert decision.verdict.root_cause == "nil map in handler"
    assert decision.verdict.evidence_refs == ["restarts", "T3", "T1"]


@pytest.mark.parametrize(
    ("fallback", "statistical", "action", "kind"),
    [
        ("statistical", stat(U), Action.ABORT, U),
        ("statistical", stat(H), Action.PROMOTE, H),
        ("statistical", stat(H, 30), Action.NONE, N),
        ("pause", stat(U), Action.PAUSE, U),
        ("pause", stat(H), Action.PAUSE, H),
        ("none", stat(U), Action.NONE, U),
        ("none", stat(H), Action.NONE, H),
    ],
)
def test_analyzer_unavailable(fallback: str, statistical: Verdict, action: Action, kind: VerdictKind) -> None:
    rules = spec(on_healthy="promote", on_analyzer_unavailable=fallback)
    decision = decide(statistical, None, rules, llm_error="timeout after 30s", llm_configured=True)
    assert decision.action == action
    assert decision.verdict.verdict == kind
    assert decision.verdict.analyzer == Analyzer.STATISTICAL
    assert decision.analyzer_unavailable
    assert "analyzer unavailable (timeout after 30s)" in decision.reason.lower()
    assert fallback in decision.reason


def test_an_error_wins_over_a_stale_answer() -> None:
    decision = decide(stat(U), llm(H, 99), spec(**PROMOTING), llm_error="malformed output", llm_configured=True)
    assert decision.analyzer_unavailable and decision.action == Action.ABORT


def test_configured_llm_without_answer_or_error_is_unavailable() -> None:
    decision = decide(stat(U), None, spec(), llm_configured=True)
    assert decision.analyzer_unavailable
    assert "no answer" in decision.reason


def test_an_answer_from_an_unconfigured_llm_is_ignored() -> None:
    decision = decide(stat(U), llm(H, 99), spec(**PROMOTING), llm_configured=False)
    assert decision.action == Action.ABORT and decision.verdict.analyzer == Analyzer.STATISTICAL


@pytest.mark.parametrize(
    ("statistical", "answer", "action"),
    [
        (stat(U), None, Action.ABORT),
        (CRASH, llm(H, 99), Action.ABORT),
        (stat(H), llm(H), Action.PROMOTE),
    ],
)
def test_dry_run_computes_the_action_and_flags_it(statistical: Verdict, answer: Verdict | None, action: Action) -> None:
    decision = decide(statistical, answer, spec(dry_run=True, on_healthy="promote"), llm_configured=answer is not None)
    assert decision.action == action
    assert decision.dry_run
    assert "dry run" in decision.reason.lower()


def test_reason_is_a_short_sentence() -> None:
    decision = decide(stat(U, 88), None, spec(), llm_configured=False)
    assert decision.reason == "Unhealthy (statistical, 88% confidence) -> abort by onUnhealthy=abort."
    below = decide(stat(H, 50), None, spec(on_healthy="promote"), llm_configured=False)
    assert below.reason.startswith("The statistical verdict (healthy, 50%) is below the 70% threshold")
    assert isinstance(below, Decision)
