"""Field comparison: HTTP statuses, error levels and latency or size distributions of canary against stable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from selfheal.domain.logs import NumberSeries, Template
from selfheal.domain.stats import mann_whitney_greater, quantile, share_test

FieldStatus = Literal["new", "increased", "slower", "larger", "canary-only"]

CANARY = "canary"
STABLE = "stable"
# A value or a shift needs this many observations on the canary before it is evidence.
MIN_COUNT = 3
MIN_SAMPLES = 20
# A share that rose significantly must also have risen materially: by this factor at least.
MIN_SHARE_RATIO = 1.5
# A 5xx share that rose by at least this many percentage points is decisive (hard evidence).
HARD_SHARE_DELTA = 1.0
# Distribution shifts: a strict significance level (many fields are tested) and an effect-size
# floor: the probability that a canary value exceeds a stable one, 0.5 meaning no shift.
NUMBER_ALPHA = 1e-3
MIN_SUPERIORITY = 0.6
MIN_QUANTILE_RATIO = 1.2


class FieldStat(BaseModel):
    """One field compared between canary and stable: a categorical value's share, or a distribution.

    Shares are percentages of the events that carry the field on that side; latencies are in
    seconds and sizes in bytes. ``error`` marks a 5xx status, an error level or a latency that got
    slower; ``summary`` says it in a sentence with the values that decided it.
    """

    id: str
    field: str
    kind: Literal["category", "number"]
    template_id: str = ""
    value: str = ""
    status: FieldStatus
    error: bool = False
    canary_count: int = 0
    stable_count: int = 0
    canary_total: int = 0
    stable_total: int = 0
    canary_share: float | None = None
    stable_share: float | None = None
    canary_p50: float | None = None
    canary_p95: float | None = None
    stable_p50: float | None = None
    stable_p95: float | None = None
    unit: str = ""
    p_value: float | None = None
    effect: float | None = None
    summary: str = ""

    @property
    def share_delta(self) -> float:
        """Percentage points the canary's share is above the stable's."""
        return (self.canary_share or 0.0) - (self.stable_share or 0.0)

    @property
    def decisive_share(self) -> bool:
        """A 5xx share that rose by whole percentage points: a regression users see."""
        return (
            self.kind == "category"
            and self.error
            and self.field == "HTTP status"
            and self.share_delta >= HARD_SHARE_DELTA
        )

    @property
    def p95_ratio(self) -> float | None:
        if self.canary_p95 is None or not self.stable_p95:
            return None
        return self.canary_p95 / self.stable_p95


# --- formatting for humans ----------------------------------------------------------------------


def percent(value: float) -> str:
    """``11.6 %``, ``0.4 %``, ``<0.1 %``, ``100 %``."""
    if value <= 0:
        return "0 %"
    if value < 0.1:
        return "<0.1 %"
    if value >= 99.95:
        return "100 %"
    return f"{value:.1f} %"


def seconds(value: float) -> str:
    """``0.95 s``, ``2.0 s``, ``12 ms``, ``0.4 ms``, ``350 µs``."""
    if value >= 10:
        return f"{value:.0f} s"
    if value >= 0.1:
        return f"{value:.2f} s" if value < 1 else f"{value:.1f} s"
    if value >= 0.01:
        return f"{value * 1000:.0f} ms"
    if value >= 0.001:
        return f"{value * 1000:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def size(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def _fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    return seconds(value) if unit == "s" else size(value) if unit == "B" else f"{value:.3g}"


# --- categorical fields ---------------------------------------------------------------------------


def _category(
    name: str, value: str, what: str, c: int, nc: int, s: int, ns: int, *, error: bool, alpha: float
) -> FieldStat | None:
    if c < MIN_COUNT or nc == 0:
        return None
    cs = 100.0 * c / nc
    if ns == 0:
        return None
    ss = 100.0 * s / ns
    p = share_test(c, nc, s, ns)
    if p >= alpha or (s > 0 and cs < MIN_SHARE_RATIO * ss):
        return None
    label = f"HTTP {value}" if name == "HTTP status" else f"{value}-level events"
    summary = f"{label} in {percent(cs)} of canary {what} vs {percent(ss)} of stable ({c} of {nc} vs {s} of {ns})"
    return FieldStat(
        id="",
        field=name,
        kind="category",
        value=value,
        status="new" if s == 0 else "increased",
        error=error,
        canary_count=c,
        stable_count=s,
        canary_total=nc,
        stable_total=ns,
        canary_share=round(cs, 3),
        stable_share=round(ss, 3),
        p_value=p,
        summary=summary,
    )


def _status_fields(templates: Sequence[Template], alpha: float) -> list[FieldStat]:
    by_status: dict[str, list[int]] = {}
    for t in templates:
        for status, sides in t.statuses.items():
            counts = by_status.setdefault(status, [0, 0])
            counts[0] += sides.get(CANARY, 0)
            counts[1] += sides.get(STABLE, 0)
    nc = sum(c for c, _ in by_status.values())
    ns = sum(s for _, s in by_status.values())
    out = []
    for status, (c, s) in sorted(by_status.items()):
        if status[0] not in "45":
            continue
        stat = _category("HTTP status", status, "requests", c, nc, s, ns, error=status[0] == "5", alpha=alpha)
        if stat is not None:
            out.append(stat)
    return out


def _level_fields(templates: Sequence[Template], alpha: float) -> list[FieldStat]:
    """The share of error-level events among events that are not requests (those have statuses)."""
    totals = [0, 0]
    errors = [0, 0]
    for t in templates:
        for i, side in enumerate((CANARY, STABLE)):
            n = t.counts.get(side, 0) - sum(sides.get(side, 0) for sides in t.statuses.values())
            totals[i] += n
            if t.severity == "error":
                errors[i] += n
    # One more test on top of the templates': held to a stricter level.
    stat = _category(
        "level", "error", "events", errors[0], totals[0], errors[1], totals[1], error=True, alpha=alpha / 10
    )
    return [stat] if stat is not None else []


# --- numeric fields -------------------------------------------------------------------------------


def _number(
    field_name: str, template_id: str, kind: str, canary: list[float], stable: list[float], where: str
) -> FieldStat | None:
    unit = "s" if kind == "latency" else "B"
    if len(canary) < MIN_SAMPLES and len(canary) < MIN_COUNT:
        return None
    canary = sorted(canary)
    c50, c95 = quantile(canary, 0.5), quantile(canary, 0.95)
    if not stable:
        if len(canary) < MIN_COUNT or kind != "latency":
            return None
        return FieldStat(
            id="",
            field=field_name,
            kind="number",
            template_id=template_id,
            status="canary-only",
            canary_count=len(canary),
            canary_p50=c50,
            canary_p95=c95,
            unit=unit,
            summary=(
                f"{field_name} {where}logged only by the canary: p50 {_fmt(c50, unit)}, p95 {_fmt(c95, unit)} "
                f"({len(canary)} values; the stable logs no {kind})"
            ),
        )
    if len(canary) < MIN_SAMPLES or len(stable) < MIN_SAMPLES:
        return None
    stable = sorted(stable)
    s50, s95 = quantile(stable, 0.5), quantile(stable, 0.95)
    p, effect = mann_whitney_greater(canary, stable)
    grew = (s95 > 0 and c95 >= MIN_QUANTILE_RATIO * s95) or (s50 > 0 and c50 >= MIN_QUANTILE_RATIO * s50)
    grew = grew or (s95 == 0 and c95 > 0)
    if p >= NUMBER_ALPHA or effect < MIN_SUPERIORITY or not grew:
        return None
    return FieldStat(
        id="",
        field=field_name,
        kind="number",
        template_id=template_id,
        status="slower" if kind == "latency" else "larger",
        error=kind == "latency",
        canary_count=len(canary),
        stable_count=len(stable),
        canary_p50=c50,
        canary_p95=c95,
        stable_p50=s50,
        stable_p95=s95,
        unit=unit,
        p_value=p,
        effect=round(effect, 3),
        summary=(
            f"{field_name} {where}p95 {_fmt(c95, unit)} vs {_fmt(s95, unit)} "
            f"(p50 {_fmt(c50, unit)} vs {_fmt(s50, unit)}; canary above stable in {effect * 100:.0f} % of pairs)"
        ),
    )


def _values(series: NumberSeries, side: str) -> list[float]:
    samples = series.sides.get(side)
    return list(samples.values) if samples is not None else []


def _number_fields(templates: Sequence[Template]) -> list[FieldStat]:
    out: list[FieldStat] = []
    per_request: list[FieldStat] = []
    pooled: dict[str, list[float]] = {CANARY: [], STABLE: []}
    requests = {CANARY: 0, STABLE: 0}
    for t in templates:
        for series in t.numbers.values():
            canary, stable = _values(series, CANARY), _values(series, STABLE)
            if series.kind == "latency" and t.statuses:
                pooled[CANARY] += canary
                pooled[STABLE] += stable
            stat = _number(series.name, t.id, series.kind, canary, stable, f"of {t.id} ")
            if stat is None:
                continue
            if t.statuses and series.kind == "latency":
                per_request.append(stat)
            else:
                out.append(stat)
        if t.statuses:
            for side in (CANARY, STABLE):
                requests[side] += sum(sides.get(side, 0) for sides in t.statuses.values())
    overall = None
    if pooled[CANARY] and (pooled[STABLE] or requests[STABLE]):
        # All requests together; a latency only the canary's requests carry is reported this way.
        overall = _number("request latency", "", "latency", pooled[CANARY], pooled[STABLE], "")
    if overall is not None:
        # Per-route shifts would repeat what all requests together say.
        out.append(overall)
    else:
        out += [stat for stat in per_request if stat.status != "canary-only"]
    return out


def compare_fields(templates: Sequence[Template], *, alpha: float = 0.01) -> list[FieldStat]:
    """Every field whose canary values are new or significantly worse than the stable's.

    HTTP statuses (4xx and 5xx) and the error level are compared as shares of the events that
    carry them (a one-sided binomial test on the rates, at least ``MIN_COUNT`` canary events, a
    rise by ``MIN_SHARE_RATIO`` at least); latencies and sizes per template and, for requests,
    pooled over the whole log, by quantiles and a one-sided Mann-Whitney test with an effect-size
    floor. A latency only the canary logs is reported as such. Ids ``F1``... follow the order:
    errors first, then by p-value.
    """
    found = _status_fields(templates, alpha) + _level_fields(templates, alpha) + _number_fields(templates)
    found.sort(key=lambda f: (not f.error, f.kind != "category", f.p_value if f.p_value is not None else 1.0, f.field))
    return [f.model_copy(update={"id": f"F{i}"}) for i, f in enumerate(found, start=1)]
