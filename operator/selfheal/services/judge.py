"""From evidence to a decision: redact, diff the logs, judge statistically, ask the analyzer, combine."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from selfheal.domain.decision import Decision, decide
from selfheal.domain.evidence import Evidence, Side
from selfheal.domain.fingerprint import failure_signature, fingerprint
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
    signature: list[str]
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


def assess(evidence: Evidence, analysis: AnalysisSpec) -> tuple[Redactor, LogDiff, Verdict]:
    """The pure part without the prompt: the redacted diff of the logs and the statistical verdict. CPU
    work: the operator runs it in its worker processes."""
    redactor = redactor_for(analysis)
    diff = diff_logs(evidence.log_text(Side.CANARY), evidence.log_text(Side.STABLE), redactor=redactor)
    return redactor, diff, statistical_verdict(evidence, diff, latency=analysis.latency)


def prepare(evidence: Evidence, analysis: AnalysisSpec) -> tuple[Redactor, LogDiff, Verdict, PromptBundle]:
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
    bundle: PromptBundle | None = None
    if configured if prompt is None else prompt:
        redactor, diff, statistical, bundle = await cpu(prepare, evidence, analysis)
    else:
        redactor, diff, statistical = await cpu(assess, evidence, analysis)
    llm: Verdict | None = None
    error = analyzer_error
    prompt_tokens = completion_tokens = 0
    if configured and analyzer is not None and bundle is not None and error is None:
        if token_budget_left is not None and bundle.estimated_tokens > token_budget_left:
            error = f"token budget exhausted ({token_budget_left} tokens left today)"
        else:
            try:
                result = await analyzer.judge(bundle)
            except AnalyzerUnavailable as e:
                error = str(e)
            else:
                kind = Analyzer.A2A if analysis.llm.provider == LLMProvider.A2A else Analyzer.LLM
                # The answer's texts are redacted like the logs: CPU work, off the event loop.
                llm = await asyncio.to_thread(verdict_from_llm, result.verdict, kind, redactor=redactor)
                prompt_tokens, completion_tokens = result.prompt_tokens, result.completion_tokens
    elif configured and error is None:
        error = "no analyzer client"
    final = decide(statistical, llm, decision, llm_error=error, llm_configured=configured)
    signature = failure_signature(evidence, diff)
    return Judgement(
        evidence=evidence,
        diff=diff,
        statistical=statistical,
        decision=final,
        redactions=dict(redactor.counts),
        fingerprint=fingerprint(evidence.namespace, evidence.rollout, signature),
        signature=signature,
        bundle=bundle,
        llm=llm,
        llm_error=error,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def secret_digest(value: str) -> str:
    """A short digest of a credential, to key cached clients without keeping the secret as a key."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]
