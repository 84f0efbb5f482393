"""The verdict: what an analyzer concluded about a canary, and why."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class VerdictKind(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    INCONCLUSIVE = "inconclusive"


class Analyzer(StrEnum):
    """Who produced a verdict."""

    STATISTICAL = "statistical"
    LLM = "llm"
    A2A = "a2a"
    COMBINED = "combined"


class Verdict(BaseModel):
    """One analyzer's conclusion. ``confidence`` is 0-100."""

    model_config = ConfigDict(frozen=True)

    verdict: VerdictKind
    confidence: int = Field(ge=0, le=100)
    summary: str = Field(max_length=2000)
    analyzer: Analyzer
    root_cause: str = ""
    suggested_fix: str = ""
    # Identifiers of the evidence items that decided it (template ids like "T3", "restarts", "metric:error-rate").
    evidence_refs: list[str] = Field(default_factory=list)
    # True when the evidence contains facts an LLM may never overrule (new crash/panic signature,
    # restarts, OOMKilled, CrashLoopBackOff, failed metrics).
    hard_evidence: bool = False
