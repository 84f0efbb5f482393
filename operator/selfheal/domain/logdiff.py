"""Canary-vs-stable log diff: templates and fields counted per side, normalised by volume, tested for change."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, Field

from selfheal.domain.fielddiff import FieldStat, compare_fields
from selfheal.domain.logs import SEVERITY_ORDER, Template, TemplateMiner, parse_events, strip_ansi, unreadable_share
from selfheal.domain.logs.events import EVENT_EDGES
from selfheal.domain.redaction import Redactor
from selfheal.domain.stats import binom_cdf, binom_sf, compare_counts

__all__ = ["LogDiff", "TemplateStat", "binom_cdf", "binom_sf", "compare_counts", "diff_logs"]

Status = Literal["new", "increased", "decreased", "unchanged", "gone"]

CANARY = "canary"
STABLE = "stable"
EXAMPLE_MAX_CHARS = 500
TEMPLATE_MAX_CHARS = 2000
# A significant rise must also be a material one: the canary rate at least this many times the
# stable rate. With 100k events per side, tiny relative differences would otherwise pass the test.
MIN_RATE_RATIO = 1.5
# A template the stable never logged is listed once the canary logged it this often (any severity),
# provided the stable logged enough to have shown it at least once at the canary's rate.
MIN_NEW_COUNT = 3
# A side whose text is more than this share binary noise is not read as a log.
UNREADABLE_SHARE = 0.2
# A new template whose words are this similar to a template the canary no longer logs is that
# template reformatted (a field added, renamed or moved).
REFORMAT_SIMILARITY = 0.75
_REFORMAT_CANDIDATES = 200


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
    # New or increased only in form: a part with few values took others ("500 - red" new where the
    # stable logs "500 - blue"), or the line was reformatted (a field added); counted together with
    # its family or its former shape, the rate did not rise.
    explained: bool = False


class LogDiff(BaseModel):
    """Templates and fields of both sides; the ones that rose in the canary come first.

    ``canary_unreadable`` / ``stable_unreadable`` are the share of each side's text that was binary
    noise; a side above ``UNREADABLE_SHARE`` is not templated at all (its events count 0).
    """

    canary_events: int
    stable_events: int
    templates: list[TemplateStat] = Field(default_factory=list)
    fields: list[FieldStat] = Field(default_factory=list)
    canary_unreadable: float = 0.0
    stable_unreadable: float = 0.0
    # The template of the canary's first event: a start-up line, if the software logs one.
    canary_first: str = ""

    def significant(self) -> list[TemplateStat]:
        """Templates new or significantly more frequent in the canary, most serious first."""
        return [t for t in self.templates if t.status in ("new", "increased")]

    def field(self, field_id: str) -> FieldStat | None:
        return next((f for f in self.fields if f.id == field_id), None)

    def get(self, template_id: str) -> TemplateStat | None:
        return next((t for t in self.templates if t.id == template_id), None)


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
        if s == 0 and c >= MIN_NEW_COUNT and c * ns / nc >= 1.0:
            # An event type the stable never logged, seen a few times: listed, however rare.
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


def _rose(c: int, s: int, nc: int, ns: int, alpha: float) -> bool:
    direction, p = compare_counts(c, s, nc, ns)
    return direction == "up" and p < alpha and (s == 0 or c / nc >= MIN_RATE_RATIO * s / ns)


_WORD = re.compile(r"[A-Za-z][A-Za-z_.-]{2,}")


def _words(template: str) -> set[str]:
    return set(_WORD.findall(template.split("\n", 1)[0][:1000]))


def _former_shape(t: TemplateStat, gone: list[TemplateStat]) -> TemplateStat | None:
    """The stable template ``t`` most likely replaced (same severity, nearly the same words), if any."""
    words = _words(t.template)
    best, best_score = None, REFORMAT_SIMILARITY
    for g in gone:
        if g.severity != t.severity:
            continue
        other = _words(g.template)
        score = len(words & other) / max(1, len(words | other))
        if score >= best_score:
            best, best_score = g, score
    return best


def _mark_explained(stats: list[TemplateStat], templates: list[Template], nc: int, ns: int, alpha: float) -> None:
    if not nc or not ns:
        return
    families: dict[str, list[int]] = {}
    for i, tpl in enumerate(templates):
        if tpl.family is not None:
            families.setdefault(tpl.family, []).append(i)
    for members in families.values():
        c = sum(stats[i].canary_count for i in members)
        s = sum(stats[i].stable_count for i in members)
        if len(members) < 2 or _rose(c, s, nc, ns, alpha):
            continue
        for i in members:
            if stats[i].status in ("new", "increased") and not stats[i].crash_signature:
                stats[i] = stats[i].model_copy(update={"explained": True})
    gone = [t for t in stats if t.canary_count == 0 and t.stable_count > 0][:_REFORMAT_CANDIDATES]
    for i, t in enumerate(stats):
        if t.status != "new" or t.crash_signature or t.explained or t.severity == "info":
            continue
        former = _former_shape(t, gone)
        if former is not None and not _rose(t.canary_count, former.stable_count, nc, ns, alpha):
            stats[i] = t.model_copy(update={"explained": True})


def _events(text: str, redactor: Redactor) -> tuple[list[str], float]:
    """The events of one side's colour-free text, redacted, and its share of binary noise (no events
    when unreadable). Redaction's scan also finds the lines where a multi-line event may begin or go on."""
    if not text:
        return [], 0.0
    text = strip_ansi(text)
    noise = unreadable_share(text)
    if noise > UNREADABLE_SHARE:
        return [], noise
    redacted, edges = redactor.redact_marking(text, EVENT_EDGES)
    return parse_events(redacted, near=edges), noise


def diff_logs(
    canary: str,
    stable: str,
    *,
    redactor: Redactor | None = None,
    max_examples: int = 3,
    alpha: float = 0.01,
) -> LogDiff:
    """Template both logs, count each template per side, test each for a change in rate, and compare
    the fields (HTTP statuses, error level, latencies, sizes).

    Terminal colours are stripped and the text is redacted before anything else, so neither
    templates nor examples can carry a secret; a side that is mostly binary noise is not read.
    Templates are ranked: new or significantly increased first (crash signatures, then errors,
    then warnings, then info; within those, new before increased, then by p-value and effect
    size), then the rest by severity and volume. Ids ``T1``... follow that order.
    """
    redactor = redactor or Redactor()
    canary_events, canary_noise = _events(canary, redactor)
    stable_events, stable_noise = _events(stable, redactor)
    miner = TemplateMiner(max_examples=max_examples)
    miner.add_sides([(CANARY, canary_events), (STABLE, stable_events)])
    nc, ns = len(canary_events), len(stable_events)
    templates = miner.templates

    stats: list[TemplateStat] = []
    for tpl in templates:
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
    _mark_explained(stats, templates, nc, ns, alpha)
    order = sorted(range(len(stats)), key=lambda i: _rank_key(stats[i]))
    renamed = {stats[i].id: f"T{rank}" for rank, i in enumerate(order, start=1)}
    ranked = [stats[i].model_copy(update={"id": renamed[stats[i].id]}) for i in order]
    for tpl in templates:
        tpl.id = renamed[tpl.id]
    return LogDiff(
        canary_events=nc,
        stable_events=ns,
        templates=ranked,
        fields=compare_fields(templates, alpha=alpha),
        canary_unreadable=round(canary_noise, 4),
        stable_unreadable=round(stable_noise, 4),
        canary_first=next((t.id for t in templates if CANARY in t.first_of), ""),
    )
