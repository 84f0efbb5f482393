"""Canary-vs-stable log diff: templates counted per side, normalised by volume, tested for change."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field

from selfheal.domain.logs import SEVERITY_ORDER, TemplateMiner, parse_events
from selfheal.domain.redaction import Redactor

Status = Literal["new", "increased", "decreased", "unchanged", "gone"]

CANARY = "canary"
STABLE = "stable"
EXAMPLE_MAX_CHARS = 500
TEMPLATE_MAX_CHARS = 2000
# A significant rise must also be a material one: the canary rate at least this many times the
# stable rate. With 100k events per side, tiny relative differences would otherwise pass the test.
MIN_RATE_RATIO = 1.5


class TemplateStat(BaseModel):
    """One log template, counted on both sides. Rates are per 1000 events of that side."""

    id: str
    template: str
    severity: Literal["error", "warning", "info"]
    canary_count: int
    stable_count: int
    canary_rate: float
    stable_rate: float
    status: Status
    # One-sided p-value of the observed direction (canary above or below stable), given the
    # total count of the template and each side's event volume; None when a side logged nothing.
    p_value: float | None
    crash_signature: bool
    examples: list[str] = Field(default_factory=list)


class LogDiff(BaseModel):
    """Templates of both sides; the ones that rose significantly in the canary come first."""

    canary_events: int
    stable_events: int
    templates: list[TemplateStat] = Field(default_factory=list)

    def significant(self) -> list[TemplateStat]:
        """Templates new or significantly more frequent in the canary, most serious first."""
        return [t for t in self.templates if t.status in ("new", "increased")]

    def get(self, template_id: str) -> TemplateStat | None:
        return next((t for t in self.templates if t.id == template_id), None)


# ---------------------------------------------------------------------------------------------
# Binomial tails, computed exactly by summing terms outward from the observed count until they
# no longer change the sum. The terms shrink geometrically away from the mean, so the number of
# terms is of the order of a few standard deviations, not of the total count.
# ---------------------------------------------------------------------------------------------

_REL_EPS = 1e-15


def _log_pmf(k: int, n: int, p: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def _sum_up(x: int, n: int, p: float) -> float:
    """sum_{k=x..n} pmf(k); meant for x above the mean."""
    term = math.exp(_log_pmf(x, n, p))
    total = 0.0
    odds = p / (1.0 - p)
    k = x
    while k <= n and term > 0.0:
        total += term
        if term < total * _REL_EPS:
            break
        term *= (n - k) / (k + 1) * odds
        k += 1
    return total


def _sum_down(x: int, n: int, p: float) -> float:
    """sum_{k=0..x} pmf(k); meant for x below the mean."""
    term = math.exp(_log_pmf(x, n, p))
    total = 0.0
    inv_odds = (1.0 - p) / p
    k = x
    while k >= 0 and term > 0.0:
        total += term
        if term < total * _REL_EPS:
            break
        term *= k / (n - k + 1) * inv_odds
        k -= 1
    return total


def binom_sf(x: int, n: int, p: float) -> float:
    """P(X >= x) for X ~ Binomial(n, p)."""
    if x <= 0:
        return 1.0
    if x > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    if x > n * p:
        return min(1.0, _sum_up(x, n, p))
    return max(0.0, 1.0 - _sum_down(x - 1, n, p))


def binom_cdf(x: int, n: int, p: float) -> float:
    """P(X <= x) for X ~ Binomial(n, p)."""
    if x < 0:
        return 0.0
    if x >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    if x < n * p:
        return min(1.0, _sum_down(x, n, p))
    return max(0.0, 1.0 - _sum_up(x + 1, n, p))


def compare_counts(
    canary_count: int, stable_count: int, canary_events: int, stable_events: int
) -> tuple[Literal["up", "down", "same"], float]:
    """Conditional binomial test of equal rates.

    Given the template occurred ``k = canary_count + stable_count`` times, under equal rates its
    canary share follows Binomial(k, canary_events / (canary_events + stable_events)). Returns the
    direction of the observed difference and the one-sided p-value in that direction.
    """
    k = canary_count + stable_count
    share = canary_events / (canary_events + stable_events)
    canary_rate = canary_count / canary_events
    stable_rate = stable_count / stable_events
    if canary_rate > stable_rate:
        return "up", binom_sf(canary_count, k, share)
    if canary_rate < stable_rate:
        return "down", binom_cdf(canary_count, k, share)
    return "same", binom_sf(canary_count, k, share)


def _status(
    c: int, s: int, nc: int, ns: int, *, crash: bool, severity: str, alpha: float
) -> tuple[Status, float | None]:
    if ns == 0:
        # No baseline to compare with: only what is alarming on its own counts as new.
        if c > 0 and (crash or severity != "info"):
            return "new", None
        return "unchanged", None
    if nc == 0:
        return ("gone" if s > 0 else "unchanged"), None
    direction, p = compare_counts(c, s, nc, ns)
    rc, rs = c / nc, s / ns
    if direction == "up":
        if s == 0 and crash:
            # A crash the stable version never showed is a finding even when it happened once.
            return "new", p
        if p < alpha and (s == 0 or rc >= MIN_RATE_RATIO * rs):
            return ("new" if s == 0 else "increased"), p
    elif direction == "down" and p < alpha and (c == 0 or rs >= MIN_RATE_RATIO * rc):
        return ("gone" if c == 0 else "decreased"), p
    return "unchanged", p


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rank_key(t: TemplateStat) -> tuple[object, ...]:
    rising = t.status in ("new", "increased")
    p = t.p_value if t.p_value is not None else 1.0
    return (
        0 if rising else 1,
        0 if t.crash_signature else 1,
        SEVERITY_ORDER[t.severity],
        0 if t.status == "new" else 1,
        math.log10(max(p, 1e-300)) if rising else 0.0,
        -(t.canary_rate - t.stable_rate) if rising else 0.0,
        -(t.canary_count + t.stable_count),
        t.template,
    )


def diff_logs(
    canary: str,
    stable: str,
    *,
    redactor: Redactor | None = None,
    max_examples: int = 3,
    alpha: float = 0.01,
) -> LogDiff:
    """Template both logs, count each template per side and test each for a change in rate.

    Raw text is redacted before anything else, so neither templates nor examples can carry a
    secret. Templates are ranked: new or significantly increased first (crash signatures, then
    errors, then warnings, then info; within those, new before increased, then by p-value and
    effect size), then the rest by severity and volume. Ids ``T1``... follow that order.
    """
    redactor = redactor or Redactor()
    canary_text = redactor.redact(canary) if canary else ""
    stable_text = redactor.redact(stable) if stable else ""
    canary_events = parse_events(canary_text)
    stable_events = parse_events(stable_text)
    miner = TemplateMiner(max_examples=max_examples)
    miner.add_many(canary_events, CANARY)
    miner.add_many(stable_events, STABLE)
    nc, ns = len(canary_events), len(stable_events)

    stats: list[TemplateStat] = []
    for tpl in miner.templates:
        c = tpl.counts.get(CANARY, 0)
        s = tpl.counts.get(STABLE, 0)
        status, p = _status(c, s, nc, ns, crash=tpl.crash_signature, severity=tpl.severity, alpha=alpha)
        examples = tpl.examples.get(CANARY, []) or tpl.examples.get(STABLE, [])
        stats.append(
            TemplateStat(
                id=tpl.id,
                template=_clip(redactor.scrub(tpl.text), TEMPLATE_MAX_CHARS),
                severity=tpl.severity,
                canary_count=c,
                stable_count=s,
                canary_rate=round(1000.0 * c / nc, 4) if nc else 0.0,
                stable_rate=round(1000.0 * s / ns, 4) if ns else 0.0,
                status=status,
                p_value=p,
                crash_signature=tpl.crash_signature,
                examples=[_clip(e, EXAMPLE_MAX_CHARS) for e in examples[:max_examples]],
            )
        )
    stats.sort(key=_rank_key)
    ranked = [t.model_copy(update={"id": f"T{i}"}) for i, t in enumerate(stats, start=1)]
    return LogDiff(canary_events=nc, stable_events=ns, templates=ranked)
