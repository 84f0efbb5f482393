"""From evidence to a decision: redact, diff the logs, judge statistically, ask the analyzer, combine."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from selfheal.domain.decision import Decision, decide
from selfheal.domain.evidence import Evidence, Side
from selfheal.domain.fingerprint import FailureSignature, failure_signature
from selfheal.domain.heuristic import statistical_verdict
from selfheal.domain.logdiff import LogDiff, diff_logs
from selfheal.domain.policy import AnalysisSpec, DecisionSpec, LLMProvider
from selfheal.domain.prompt import PromptBundle, build_messages, verdict_from_llm
from selfheal.domain.redaction import Redactor
from selfheal.domain.verdict import Analyzer, Verdict
from selfheal.errors import AnalyzerUnavailable

T = TypeVar("T")
# Runs a pure function with its arguments off the event loop: a thread, or the operator's worker processes.
CpuRunner = Callable[..., Awaitable[Any]]


class AnalyzerClient(Protocol):
    """What the LLM and A2A adapters have in common."""

    async def judge(self, bundle: PromptBundle): ...


@dataclass
class Judgement:
    """Everything one analysis produced, for the Event, the ticket and `selfheal analyze --json`."""

    evidence: Evidence
    diff: LogDiff
    statistical: Verdict
    decision: Decision
    redactions: dict[str, int]
    fingerprint: str
    signature: FailureSignature
    bundle: PromptBundle | None = None
    llm: Verdict | None = None
    llm_error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        return self.decision.verdict

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def redactor_for(analysis: AnalysisSpec) -> Redactor:
    return Redactor([(p.name, p.regex) for p in analysis.redaction.patterns], builtins=analysis.redaction.builtins)


# What `prepare` makes of the evidence: the redactor used, the log diff, the statistical verdict, the prompt.
Prepared = tuple[Redactor, LogDiff, Verdict, PromptBundle]


def assess(evidence: Evidence, analysis: AnalysisSpec) -> tuple[Redactor, LogDiff, Verdict]:
    """The pure part without the prompt: the redacted diff of the logs and the statistical verdict. CPU
    work: the operator runs it in its worker processes."""
    redactor = redactor_for(analysis)
    diff = diff_logs(evidence.log_text(Side.CANARY), evidence.log_text(Side.STABLE), redactor=redactor)
    return redactor, diff, statistical_verdict(evidence, diff, latency=analysis.latency)


def prepare(evidence: Evidence, analysis: AnalysisSpec) -> Prepared:
    """The pure part: the diff, the statistical verdict and the prompt (built whether or not it is sent)."""
    redactor, diff, statistical = assess(evidence, analysis)
    bundle = build_messages(
        evidence,
        diff,
        extra_prompt=analysis.extra_prompt,
        max_input_tokens=analysis.llm.max_input_tokens,
        redactor=redactor,
    )
    return redactor, diff, statistical, bundle


@dataclass(frozen=True)
class Consultation:
    """What the analyzer said about one prompt: its verdict, or why there is none; and the tokens it cost."""

    llm: Verdict | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


async def consult(
    analysis: AnalysisSpec,
    analyzer: AnalyzerClient | None,
    bundle: PromptBundle,
    redactor: Redactor,
    *,
    analyzer_error: str | None = None,
    token_budget_left: int | None = None,
) -> Consultation:
    """Ask the policy's analyzer (if it names one) for its verdict on the prepared prompt."""
    if analysis.llm.provider == LLMProvider.NONE:
        return Consultation()
    if analyzer_error is not None:
        return Consultation(error=analyzer_error)
    if analyzer is None:
        return Consultation(error="no analyzer client")
    if token_budget_left is not None and bundle.estimated_tokens > token_budget_left:
        return Consultation(error=f"token budget exhausted ({token_budget_left} tokens left today)")
    try:
        result = await analyzer.judge(bundle)
    except AnalyzerUnavailable as e:
        return Consultation(error=str(e))
    kind = Analyzer.A2A if analysis.llm.provider == LLMProvider.A2A else Analyzer.LLM
    # The answer's texts are redacted like the logs: CPU work, off the event loop.
    llm = await asyncio.to_thread(verdict_from_llm, result.verdict, kind, redactor=redactor)
    return Consultation(llm, None, result.prompt_tokens, result.completion_tokens)


def conclude(
    evidence: Evidence,
    prepared: tuple[Redactor, LogDiff, Verdict, PromptBundle | None],
    analysis: AnalysisSpec,
    decision: DecisionSpec,
    consultation: Consultation,
) -> Judgement:
    """The decision from the statistical verdict and the analyzer's, and the record that explains it."""
    redactor, diff, statistical, bundle = prepared
    configured = analysis.llm.provider != LLMProvider.NONE
    final = decide(statistical, consultation.llm, decision, llm_error=consultation.error, llm_configured=configured)
    signature = failure_signature(evidence, diff)
    return Judgement(
        evidence=evidence,
        diff=diff,
        statistical=statistical,
        decision=final,
        redactions=dict(redactor.counts),
        fingerprint=signature.fingerprint,
        signature=signature,
        bundle=bundle,
        llm=consultation.llm,
        llm_error=consultation.error,
        prompt_tokens=consultation.prompt_tokens,
        completion_tokens=consultation.completion_tokens,
    )


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run CPU work off the event loop, in a thread (where the operator's worker processes are not used)."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def judge(
    evidence: Evidence,
    analysis: AnalysisSpec,
    decision: DecisionSpec,
    analyzer: AnalyzerClient | None,
    *,
    analyzer_error: str | None = None,
    token_budget_left: int | None = None,
    cpu: CpuRunner = in_thread,
    prompt: bool | None = None,
) -> Judgement:
    """Judge one canary. ``analyzer`` is None when the policy names none or it could not be built
    (``analyzer_error`` then says why); the policy's fallback applies and is recorded. ``cpu`` runs the
    CPU-bound part off the event loop; the prompt is built when an analyzer will read it (or ``prompt``)."""
    configured = analysis.llm.provider != LLMProvider.NONE
    # Templating and diffing a few megabytes of logs is CPU work: off the event loop.
    prepared: tuple[Redactor, LogDiff, Verdict, PromptBundle | None]
    if configured if prompt is None else prompt:
        prepared = await cpu(prepare, evidence, analysis)
    else:
        prepared = (*await cpu(assess, evidence, analysis), None)
    redactor, _, _, bundle = prepared
    if bundle is None:
        consultation = Consultation(error=analyzer_error or "no prompt was built") if configured else Consultation()
    else:
        consultation = await consult(
            analysis, analyzer, bundle, redactor, analyzer_error=analyzer_error, token_budget_left=token_budget_left
        )
    return conclude(evidence, prepared, analysis, decision, consultation)


def secret_digest(value: str) -> str:
    """A short digest of a credential, to key cached clients without keeping the secret as a key."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]
