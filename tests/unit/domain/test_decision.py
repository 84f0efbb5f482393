"""Verdict combination: every cell of statistics x analyzer x threshold x fallback x dryRun and its action."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from selfheal.domain.decision import Action, Decision, decide
from selfheal.domain.policy import DecisionSpec
from selfheal.domain.verdict import Analyzer, Verdict, VerdictKind

H, U, N = VerdictKind.HEALTHY, VerdictKind.UNHEALTHY, VerdictKind.INCONCLUSIVE
STAT, LLM, COMB, A2A = Analyzer.STATISTICAL, Analyzer.LLM, Analyzer.COMBINED, Analyzer.A2A
SURE, UNSURE = 90, 60  # against the default 70 % threshold


def stat(kind: VerdictKind, confidence: int = SURE, *, hard: bool = False, refs: list[str] | None = None) -> Verdict:
    return Verdict(
        verdict=kind,
        confidence=confidence,
        summary=f"statistics say {kind}",
        analyzer=STAT,
        hard_evidence=hard,
        evidence_refs=refs or [],
    )


def llm(kind: VerdictKind, confidence: int = SURE, *, analyzer: Analyzer = LLM) -> Verdict:
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


# Every verdict kind maps to its own action, so the action shows the final kind.
DISTINCT = {"on_healthy": "promote", "on_unhealthy": "abort", "on_inconclusive": "pause"}
ACTION_OF = {H: Action.PROMOTE, U: Action.ABORT, N: Action.PAUSE}

# The statistical side: healthy (sure / below the threshold), soft unhealthy (sure / below), hard
# unhealthy (confidence does not matter), inconclusive (too little canary data).
STATISTICS = {
    "H": stat(H, SURE),
    "H-": stat(H, UNSURE),
    "U": stat(U, SURE, refs=["T7"]),
    "U-": stat(U, UNSURE, refs=["T7"]),
    "Uhard": stat(U, 50, hard=True, refs=["restarts", "T3"]),
    "N": stat(N, 20),
}
# The analyzer side: not configured, configured but unavailable, or its answer (sure / below the threshold).
ANSWERS: dict[str, Verdict | str | None] = {
    "none": None,
    "down": "timeout after 30s",
    "H": llm(H, SURE),
    "H-": llm(H, UNSURE),
    "U": llm(U, SURE),
    "U-": llm(U, UNSURE),
    "N": llm(N, SURE),
}

# (statistics, analyzer) -> (final kind, who the final verdict is credited to, analyzer overruled)
TABLE: dict[tuple[str, str], tuple[VerdictKind, Analyzer, bool]] = {
    # statistics sure healthy: a positive case; the analyzer must agree at the threshold to promote
    ("H", "none"): (H, STAT, False),
    ("H", "down"): (H, STAT, False),
    ("H", "H"): (H, COMB, False),
    ("H", "H-"): (N, COMB, False),
    ("H", "U"): (U, LLM, False),
    ("H", "U-"): (N, LLM, False),
    ("H", "N"): (N, LLM, False),
    # statistics healthy below the threshold: too thin a case to promote, whoever agrees
    ("H-", "none"): (N, STAT, False),
    ("H-", "down"): (N, STAT, False),
    ("H-", "H"): (N, COMB, True),
    ("H-", "H-"): (N, COMB, False),
    ("H-", "U"): (U, LLM, False),
    ("H-", "U-"): (N, LLM, False),
    ("H-", "N"): (N, LLM, False),
    # soft unhealthy, sure: the analyzer may lower it to inconclusive, never to healthy
    ("U", "none"): (U, STAT, False),
    ("U", "down"): (U, STAT, False),
    ("U", "H"): (N, COMB, True),
    ("U", "H-"): (N, LLM, False),
    ("U", "U"): (U, COMB, False),
    ("U", "U-"): (U, COMB, False),
    ("U", "N"): (N, LLM, False),
    # soft unhealthy below the threshold: unsure unless the analyzer is sure it is unhealthy
    ("U-", "none"): (N, STAT, False),
    ("U-", "down"): (N, STAT, False),
    ("U-", "H"): (N, COMB, True),
    ("U-", "H-"): (N, LLM, False),
    ("U-", "U"): (U, COMB, False),
    ("U-", "U-"): (N, COMB, False),
    ("U-", "N"): (N, LLM, False),
    # hard evidence: unhealthy whatever the analyzer says, at any confidence
    ("Uhard", "none"): (U, STAT, False),
    ("Uhard", "down"): (U, STAT, False),
    ("Uhard", "H"): (U, COMB, True),
    ("Uhard", "H-"): (U, COMB, True),
    ("Uhard", "U"): (U, COMB, False),
    ("Uhard", "U-"): (U, COMB, False),
    ("Uhard", "N"): (U, COMB, True),
    # too little canary data: the analyzer's healthy is not enough; its sure unhealthy is
    ("N", "none"): (N, STAT, False),
    ("N", "down"): (N, STAT, False),
    ("N", "H"): (N, COMB, True),
    ("N", "H-"): (N, LLM, False),
    ("N", "U"): (U, LLM, False),
    ("N", "U-"): (N, LLM, False),
    ("N", "N"): (N, COMB, False),
}


def run(statistics: str, answer: str, **rules: Any) -> Decision:
    given = ANSWERS[answer]
    return decide(
        STATISTICS[statistics],
        given if isinstance(given, Verdict) else None,
        spec(**{**DISTINCT, **rules}),
        llm_error=given if isinstance(given, str) else None,
        llm_configured=answer != "none",
    )


def test_the_table_has_every_cell() -> None:
    assert set(TABLE) == set(itertools.product(STATISTICS, ANSWERS))


@pytest.mark.parametrize(("statistics", "answer"), list(TABLE), ids=[f"{s}-{a}" for s, a in TABLE])
def test_decision_table(statistics: str, answer: str) -> None:
    kind, credited, overruled = TABLE[(statistics, answer)]
    decision = run(statistics, answer)
    assert (decision.verdict.verdict, decision.verdict.analyzer, decision.llm_overruled) == (
        kind,
        credited,
        overruled,
    ), decision.reason
    assert decision.action == ACTION_OF[kind]
    assert decision.analyzer_unavailable == (answer == "down")
    assert decision.verdict.hard_evidence == (statistics == "Uhard")
    # Each decision says its reason in one sentence that names the rule applied.
    assert decision.reason.endswith(".") and decision.reason[0].isupper()
    assert f"-> {decision.action.value} by on" in decision.reason


@pytest.mark.parametrize(
    ("statistics", "answer", "threshold"),
    list(itertools.product(STATISTICS, ANSWERS, [0, 50, 70, 95, 100])),
)
def test_a_promote_always_has_a_positive_case(statistics: str, answer: str, threshold: int) -> None:
    """Across every cell and threshold: a promote needs the statistics' own healthy at the threshold,
    and the analyzer's healthy at the threshold when it answered; hard evidence never promotes."""
    decision = run(statistics, answer, confidence_threshold=threshold)
    if decision.action != Action.PROMOTE:
        return
    statistical = STATISTICS[statistics]
    assert statistical.verdict == H and statistical.confidence >= threshold
    given = ANSWERS[answer]
    if isinstance(given, Verdict):
        assert given.verdict == H and given.confidence >= threshold


def test_the_threshold_itself_is_sure() -> None:
    decision = decide(stat(H, 70), llm(H, 70), spec(**DISTINCT), llm_configured=True)
    assert decision.action == Action.PROMOTE
    below = decide(stat(H, 70), llm(H, 69), spec(**DISTINCT), llm_configured=True)
    assert below.action == Action.PAUSE
    assert "The llm verdict (healthy, 69%) is below the 70% threshold" in below.reason


@pytest.mark.parametrize("statistics", list(STATISTICS))
@pytest.mark.parametrize(
    ("fallback", "expected"),
    [("pause", Action.PAUSE), ("none", Action.NONE), ("statistical", None)],
)
def test_analyzer_unavailable_applies_the_fallback(statistics: str, fallback: str, expected: Action | None) -> None:
    decision = run(statistics, "down", on_analyzer_unavailable=fallback)
    kind = TABLE[(statistics, "none")][0]
    assert decision.verdict.verdict == kind and decision.verdict.analyzer == STAT
    assert decision.analyzer_unavailable
    assert "analyzer unavailable (timeout after 30s)" in decision.reason.lower()
    if STATISTICS[statistics].hard_evidence:
        # a crash is stopped whether or not the analyzer answers
        assert decision.action == ACTION_OF[U]
        assert fallback == "statistical" or "hard evidence needs no analyzer" in decision.reason
    else:
        assert decision.action == (expected or ACTION_OF[kind])
        assert fallback in decision.reason


@pytest.mark.parametrize(("statistics", "answer"), list(TABLE), ids=[f"{s}-{a}" for s, a in TABLE])
def test_dry_run_computes_the_action_and_flags_it(statistics: str, answer: str) -> None:
    wet = run(statistics, answer)
    dry = run(statistics, answer, dry_run=True)
    assert dry.action == wet.action and dry.verdict == wet.verdict
    assert dry.dry_run and not wet.dry_run
    assert dry.reason == wet.reason + " Dry run: nothing is done."


@pytest.mark.parametrize(
    ("statistical", "answer", "rules", "action"),
    [
        (stat(H), llm(H), {}, Action.NONE),  # onHealthy defaults to none
        (stat(H), llm(H), {"on_healthy": "promote"}, Action.PROMOTE),
        (stat(U), None, {"on_unhealthy": "pause"}, Action.PAUSE),
        (stat(U), None, {"on_unhealthy": "none"}, Action.NONE),
        (stat(N), None, {"on_inconclusive": "abort"}, Action.ABORT),
        (stat(N), None, {}, Action.NONE),
        (stat(U, 50, hard=True), llm(H, 99), {"on_healthy": "promote", "on_unhealthy": "pause"}, Action.PAUSE),
        (stat(H, 40), None, {"on_healthy": "promote", "confidence_threshold": 40}, Action.PROMOTE),
    ],
)
def test_policy_settings_map_the_verdict(
    statistical: Verdict, answer: Verdict | None, rules: dict[str, Any], action: Action
) -> None:
    assert decide(statistical, answer, spec(**rules), llm_configured=answer is not None).action == action


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
    crash = stat(U, 95, hard=True, refs=["restarts", "T3"])
    decision = decide(crash, llm(H, 99), spec(on_healthy="promote"), llm_configured=True)
    assert "overruled" in decision.reason and "hard evidence" in decision.reason
    assert "restarts" in decision.reason
    assert decision.verdict.hard_evidence
    assert decision.verdict.root_cause == "nil map in handler"
    assert decision.verdict.evidence_refs == ["restarts", "T3", "T1"]
    assert decision.verdict.summary.endswith(
        "(the llm analyzer said healthy at 99%: hard evidence cannot be overruled)"
    )


def test_an_unconfirmed_healthy_names_what_the_statistics_saw() -> None:
    decision = decide(stat(U, 95, refs=["T7"]), llm(H, 99), spec(on_healthy="promote"), llm_configured=True)
    assert decision.action == Action.NONE and decision.verdict.verdict == N
    assert decision.reason.startswith(
        "The llm verdict (healthy, 99%) is not confirmed by the statistics (unhealthy, 95%)"
    )
    assert decision.verdict.summary == (
        "statistics say unhealthy (the llm analyzer said healthy at 99%: not confirmed by the statistics "
        "(unhealthy, 95%))"
    )
    assert decision.verdict.evidence_refs == ["T7", "T1"]
    thin = decide(stat(H, 50), llm(H, 99), spec(on_healthy="promote"), llm_configured=True)
    assert "(healthy, 50%, below the 70% threshold)" in thin.verdict.summary


def test_an_a2a_agent_is_credited_like_an_llm() -> None:
    decision = decide(stat(N, 20), llm(U, 95, analyzer=A2A), spec(), llm_configured=True)
    assert decision.verdict.analyzer == A2A and decision.action == Action.ABORT


def test_an_error_wins_over_a_stale_answer() -> None:
    decision = decide(
        stat(U), llm(H, 99), spec(on_healthy="promote"), llm_error="malformed output", llm_configured=True
    )
    assert decision.analyzer_unavailable and decision.action == Action.ABORT


def test_configured_llm_without_answer_or_error_is_unavailable() -> None:
    decision = decide(stat(U), None, spec(), llm_configured=True)
    assert decision.analyzer_unavailable
    assert "no answer" in decision.reason


def test_an_answer_from_an_unconfigured_llm_is_ignored() -> None:
    decision = decide(stat(U), llm(H, 99), spec(on_healthy="promote"), llm_configured=False)
    assert decision.action == Action.ABORT and decision.verdict.analyzer == STAT


def test_reason_is_a_short_sentence() -> None:
    decision = decide(stat(U, 88), None, spec(), llm_configured=False)
    assert decision.reason == "Unhealthy (statistical, 88% confidence) -> abort by onUnhealthy=abort."
    below = decide(stat(H, 50), None, spec(on_healthy="promote"), llm_configured=False)
    assert below.reason.startswith("The statistical verdict (healthy, 50%) is below the 70% threshold")
