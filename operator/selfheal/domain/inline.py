"""The inline verdict: what Argo's web metric provider asks selfheal, and the answer its conditions read.

An AnalysisTemplate's ``web`` metric names the canary through the template's args (namespace, rollout, the
canary and stable pod-template hashes); the answer is JSON that both ``successCondition: result.healthy``
and the AI metric plugin's ``result.score > 0.50`` (``jsonPath: "{$.score}"``) read the same way:

- ``verdict`` healthy | unhealthy | inconclusive, and ``healthy`` true only for a healthy verdict;
- ``score`` 0-1, above 0.5 exactly when healthy (the confidence, never below 0.51), 0 otherwise;
- in dry run (``spec.decision.dryRun``) every measurement passes: healthy, score 1, and ``judged`` plus
  the summary say what the verdict really was.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from selfheal.domain.decision import Decision
from selfheal.domain.verdict import VerdictKind

# Where the operator answers; a web metric whose URL has this path asks selfheal itself.
VERDICT_PATH = "/api/v1/verdict"
# Names as Kubernetes spells them (a namespace is a DNS label, a Rollout a DNS subdomain); a pod-template
# hash is what Argo's SafeEncodeString makes of a number, or any other short lowercase token.
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HASH_PATTERN = r"^[a-z0-9]{1,63}$"
# Argo's web provider waits timeoutSeconds, 10 by default.
DEFAULT_TIMEOUT_SECONDS = 10.0
# The answer's summary stays short: a template reading `{$}` stores the whole answer in the AnalysisRun.
MAX_ANSWER_SUMMARY = 500
# A healthy verdict scores at least this, so that `score > 0.50` holds for every healthy verdict.
MIN_HEALTHY_SCORE = 0.51


class VerdictRequest(BaseModel):
    """One measurement's question: which canary of which Rollout, and how long Argo waits for the answer."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    namespace: str = Field(pattern=NAMESPACE_PATTERN, max_length=63)
    rollout: str = Field(pattern=NAME_PATTERN, max_length=253)
    canary: str = Field(pattern=HASH_PATTERN)
    stable: str = Field("", pattern=r"^([a-z0-9]{1,63})?$")
    timeout_seconds: float = Field(DEFAULT_TIMEOUT_SECONDS, gt=0, le=600)

    @property
    def answer_within(self) -> float:
        """Seconds the answer may take: the metric's timeout less a margin for the network and Argo."""
        return max(0.1, self.timeout_seconds - max(0.5, 0.2 * self.timeout_seconds))


class VerdictAnswer(BaseModel):
    """The JSON body of an answer (camelCase on the wire)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    verdict: VerdictKind
    healthy: bool
    score: float = Field(ge=0, le=1)
    confidence: int = Field(ge=0, le=100)
    summary: str
    ticket: str = ""
    # What selfheal concluded before a dry run turned it into a pass.
    judged: VerdictKind
    dry_run: bool = False
    analyzer: str = ""
    # The analyzer's verdict for this evidence window is still being computed; the statistics answered.
    analyzer_pending: bool = False
    rollout: str = ""
    canary: str = ""
    step: str = ""
    reason: str = ""

    def wire(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)


def score_of(kind: VerdictKind, confidence: int) -> float:
    """The plugin-style score: how sure selfheal is that the canary may go on; 0 when it may not."""
    if kind != VerdictKind.HEALTHY:
        return 0.0
    return max(MIN_HEALTHY_SCORE, min(confidence, 100) / 100)


def inline_kind(decision: Decision, *, statistics_alone: bool) -> VerdictKind:
    """The verdict an inline measurement reports.

    A healthy verdict reached without the analyzer the policy names (its answer not in yet, or
    unavailable) stands only when the policy accepts the statistics alone
    (``onAnalyzerUnavailable: statistical``); otherwise it is inconclusive. Unhealthy always stands.
    """
    kind = decision.verdict.verdict
    if kind == VerdictKind.HEALTHY and decision.analyzer_unavailable and not statistics_alone:
        return VerdictKind.INCONCLUSIVE
    return kind


def answer_of(
    decision: Decision,
    *,
    statistics_alone: bool,
    analyzer_pending: bool,
    ticket: str = "",
    rollout: str = "",
    canary: str = "",
    step: str = "",
) -> VerdictAnswer:
    """The answer to one measurement, from the decision reached on its evidence."""
    verdict = decision.verdict
    judged = inline_kind(decision, statistics_alone=statistics_alone)
    summary = " ".join(verdict.summary.split())
    if judged != verdict.verdict:
        summary = f"{summary} (the analyzer's verdict is not in, and the policy does not pass on statistics alone)"
    if analyzer_pending:
        summary += " The analyzer's verdict on this evidence window is still pending."
    kind, score = judged, score_of(judged, verdict.confidence)
    if decision.dry_run:
        kind, score = VerdictKind.HEALTHY, 1.0
        if judged != VerdictKind.HEALTHY:
            summary = f"Dry run: judged {judged} ({verdict.confidence}%), this measurement would have failed. {summary}"
    return VerdictAnswer(
        verdict=kind,
        healthy=kind == VerdictKind.HEALTHY,
        score=score,
        confidence=verdict.confidence,
        summary=_short(summary),
        ticket=ticket,
        judged=judged,
        dry_run=decision.dry_run,
        analyzer=str(verdict.analyzer),
        analyzer_pending=analyzer_pending,
        rollout=rollout,
        canary=canary,
        step=step,
        reason=_short(decision.reason),
    )


def _short(text: str) -> str:
    return text if len(text) <= MAX_ANSWER_SUMMARY else text[: MAX_ANSWER_SUMMARY - 1] + "…"


def window_expired(started: datetime | None, now: datetime, seconds: float) -> bool:
    """Whether an evidence window that began at ``started`` is over: the analyzer is asked again after it."""
    return started is None or (now - started).total_seconds() >= seconds
