"""The inline verdict's question and answer: what Argo's web provider may ask, and what its conditions read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from selfheal.domain.decision import Action, Decision
from selfheal.domain.inline import (
    MAX_ANSWER_SUMMARY,
    VerdictRequest,
    answer_of,
    inline_kind,
    score_of,
    window_expired,
)
from selfheal.domain.verdict import Analyzer, Verdict, VerdictKind
from selfheal.testing.argosim.expr import evaluate, jsonpath

HEALTHY, UNHEALTHY, INCONCLUSIVE = VerdictKind.HEALTHY, VerdictKind.UNHEALTHY, VerdictKind.INCONCLUSIVE


def decision(kind: VerdictKind, confidence: int = 90, *, dry_run: bool = False, unavailable: bool = False) -> Decision:
    verdict = Verdict(
        verdict=kind, confidence=confidence, summary="canary panics: index out of range", analyzer=Analyzer.STATISTICAL
    )
    return Decision(
        verdict=verdict, action=Action.NONE, reason="why", dry_run=dry_run, analyzer_unavailable=unavailable
    )


# --- the question ------------------------------------------------------------------------------------


def test_a_question_names_the_canary_as_the_template_args_do() -> None:
    q = VerdictRequest.model_validate(
        {"namespace": "shop", "rollout": "web", "canary": "6c5f8b8d4", "stable": "7d84d44bb8", "extra": "ignored"}
    )
    assert (q.namespace, q.rollout, q.canary, q.stable, q.timeout_seconds) == (
        "shop",
        "web",
        "6c5f8b8d4",
        "7d84d44bb8",
        10.0,
    )
    # Argo waits timeoutSeconds (10 by default): the answer leaves it a margin, and never waits for nothing
    assert q.answer_within == 8.0
    assert VerdictRequest(namespace="a", rollout="b", canary="c", timeoutSeconds=1).answer_within == 0.5
    assert VerdictRequest(namespace="a", rollout="b", canary="c", timeoutSeconds=0.2).answer_within == 0.1


@pytest.mark.parametrize(
    "fields",
    [
        {"rollout": "web", "canary": "abc"},  # no namespace
        {"namespace": "shop", "rollout": "web"},  # no canary
        {"namespace": "Shop", "rollout": "web", "canary": "abc"},
        {"namespace": "shop", "rollout": "web/../x", "canary": "abc"},
        {"namespace": "shop", "rollout": "web", "canary": "{{args.canary-hash}}"},  # an arg Argo did not resolve
        {"namespace": "shop", "rollout": "web", "canary": "abc", "stable": "a b"},
        {"namespace": "shop", "rollout": "web", "canary": "abc", "timeoutSeconds": "0"},
        {"namespace": "shop", "rollout": "web", "canary": "x" * 64},
    ],
)
def test_a_malformed_question_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        VerdictRequest.model_validate(fields)


# --- the answer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "confidence", "score"),
    [(HEALTHY, 93, 0.93), (HEALTHY, 100, 1.0), (HEALTHY, 30, 0.51), (UNHEALTHY, 95, 0.0), (INCONCLUSIVE, 80, 0.0)],
)
def test_the_score_clears_one_half_exactly_when_healthy(kind: VerdictKind, confidence: int, score: float) -> None:
    assert score_of(kind, confidence) == score
    assert (score_of(kind, confidence) > 0.5) == (kind == HEALTHY)


@pytest.mark.parametrize("kind", list(VerdictKind))
@pytest.mark.parametrize("confidence", [0, 40, 51, 70, 99, 100])
def test_every_familiar_condition_reads_the_answer_the_same_way(kind: VerdictKind, confidence: int) -> None:
    """`result.healthy`, the plugin's `result.score > 0.50` (whole body or `{$.score}`) and the verdict agree."""
    body = answer_of(decision(kind, confidence), statistics_alone=True, analyzer_pending=False).wire()
    expected = kind == HEALTHY
    assert evaluate("result.healthy", jsonpath("{$}", body)) is expected
    assert evaluate("result == true", jsonpath("{$.healthy}", body)) is expected
    assert evaluate("result.score > 0.50", jsonpath("{$}", body)) is expected
    assert evaluate("result > 0.50", jsonpath("{$.score}", body)) is expected
    assert evaluate('result == "healthy"', jsonpath("{$.verdict}", body)) is expected
    assert 0 <= body["score"] <= 1 and body["confidence"] == confidence


def test_the_answer_says_what_a_user_needs_in_camel_case() -> None:
    body = answer_of(
        decision(UNHEALTHY), statistics_alone=True, analyzer_pending=True, ticket="web-6c5", rollout="web", canary="6c5"
    ).wire()
    assert body["verdict"] == "unhealthy" and body["healthy"] is False and body["ticket"] == "web-6c5"
    assert body["analyzerPending"] is True and body["dryRun"] is False and body["judged"] == "unhealthy"
    assert "index out of range" in body["summary"] and "still pending" in body["summary"]
    assert (body["rollout"], body["canary"]) == ("web", "6c5")


def test_a_healthy_verdict_without_the_analyzer_passes_only_when_the_policy_accepts_statistics() -> None:
    unheard = decision(HEALTHY, unavailable=True)
    assert inline_kind(unheard, statistics_alone=True) == HEALTHY
    assert inline_kind(unheard, statistics_alone=False) == INCONCLUSIVE
    answer = answer_of(unheard, statistics_alone=False, analyzer_pending=True)
    assert answer.healthy is False and answer.score == 0 and "statistics alone" in answer.summary
    # an unhealthy verdict needs no analyzer
    assert inline_kind(decision(UNHEALTHY, unavailable=True), statistics_alone=False) == UNHEALTHY


def test_in_dry_run_every_measurement_passes_and_the_answer_says_what_was_judged() -> None:
    answer = answer_of(decision(UNHEALTHY, 88, dry_run=True), statistics_alone=True, analyzer_pending=False)
    assert (answer.verdict, answer.healthy, answer.score) == (HEALTHY, True, 1.0)
    assert answer.judged == UNHEALTHY and answer.dry_run is True
    assert answer.summary.startswith("Dry run: judged unhealthy (88%), this measurement would have failed.")
    quiet = answer_of(decision(HEALTHY, dry_run=True), statistics_alone=True, analyzer_pending=False)
    assert quiet.judged == HEALTHY and not quiet.summary.startswith("Dry run")


def test_the_summary_stays_short_whatever_the_verdict_said() -> None:
    verdict = Verdict(verdict=UNHEALTHY, confidence=90, summary="x " * 900, analyzer=Analyzer.LLM)
    long = Decision(verdict=verdict, action=Action.NONE, reason="r" * 3000)
    answer = answer_of(long, statistics_alone=True, analyzer_pending=False)
    assert len(answer.summary) <= MAX_ANSWER_SUMMARY and len(answer.reason) <= MAX_ANSWER_SUMMARY


def test_an_evidence_window_lasts_its_seconds() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert window_expired(None, start, 60)
    assert not window_expired(start, start + timedelta(seconds=59), 60)
    assert window_expired(start, start + timedelta(seconds=60), 60)
