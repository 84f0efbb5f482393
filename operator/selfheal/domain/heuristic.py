"""The statistical verdict: a rule-based judgement of the evidence and the log diff, always computed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from selfheal.domain.evidence import Evidence, PodEvidence, Side
from selfheal.domain.logdiff import LogDiff, TemplateStat
from selfheal.domain.verdict import Analyzer, Verdict, VerdictKind

IMAGE_ERRORS = frozenset(
    {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable"}
)
START_ERRORS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError", "StartError"})
CRASH_LOOP = "CrashLoopBackOff"
OOM_KILLED = "OOMKilled"
# Warning events about a pod that are facts about its containers failing, and their ref prefix.
HARD_EVENT_REASONS = {
    "BackOff": "crashloop",
    "OOMKilling": "oomkilled",
    "ErrImagePull": "imagepull",
    "ImagePullBackOff": "imagepull",
    "InspectFailed": "imagepull",
}
SOFT_EVENT_REASONS = frozenset({"Unhealthy", "ProbeWarning"})

_LINE_MAX = 140
_SUMMARY_MAX = 600
_REFS_MAX = 32


@dataclass
class _Findings:
    hard: list[tuple[str, str]] = field(default_factory=list)  # (ref, phrase)
    soft: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    best_p: float | None = None

    def add_hard(self, ref: str, phrase: str) -> None:
        if all(ref != r for r, _ in self.hard):
            self.hard.append((ref, phrase))

    def add_soft(self, ref: str, phrase: str) -> None:
        if all(ref != r for r, _ in self.soft):
            self.soft.append((ref, phrase))


def _first_line(text: str) -> str:
    line = text.split("\n", 1)[0].strip()
    return line if len(line) <= _LINE_MAX else line[: _LINE_MAX - 1] + "…"


def _reasons(pods: list[PodEvidence]) -> set[str]:
    out: set[str] = set()
    for pod in pods:
        for c in pod.containers:
            if c.waiting_reason:
                out.add(c.waiting_reason)
            if c.last_terminated_reason:
                out.add(c.last_terminated_reason)
    return out


def _pod_findings(evidence: Evidence, f: _Findings) -> None:
    canary = evidence.side(Side.CANARY)
    stable = evidence.side(Side.STABLE)
    stable_reasons = _reasons(stable)
    # Canary pods were born with the canary: every restart and crash they show happened to this
    # revision. Stable pods' counts span their whole life, so they cannot excuse these.
    for pod in canary:
        if pod.restarts > 0:
            f.add_hard(f"restarts:{pod.name}", f"pod {pod.name} restarted {pod.restarts} time(s)")
        for c in pod.containers:
            if c.last_terminated_reason == OOM_KILLED:
                f.add_hard(f"oomkilled:{pod.name}", f"container {c.name} of {pod.name} was OOMKilled")
            if c.waiting_reason == CRASH_LOOP:
                f.add_hard(f"crashloop:{pod.name}", f"container {c.name} of {pod.name} is in CrashLoopBackOff")
            if c.waiting_reason in IMAGE_ERRORS and c.waiting_reason not in stable_reasons:
                f.add_hard(
                    f"imagepull:{pod.name}",
                    f"container {c.name} of {pod.name} cannot pull its image ({c.waiting_reason})",
                )
            if c.waiting_reason in START_ERRORS and c.waiting_reason not in stable_reasons:
                f.add_hard(f"start:{pod.name}", f"container {c.name} of {pod.name} cannot start ({c.waiting_reason})")

    canary_names = {p.name for p in canary}
    stable_names = {p.name for p in stable}
    stable_event_reasons = {e.reason for e in evidence.events if e.object_name in stable_names and e.type == "Warning"}
    for ev in evidence.events:
        if ev.type != "Warning" or ev.object_name not in canary_names or ev.reason in stable_event_reasons:
            continue
        if ev.reason in HARD_EVENT_REASONS:
            kind = HARD_EVENT_REASONS[ev.reason]
            f.add_hard(f"{kind}:{ev.object_name}", f"pod {ev.object_name} reported {ev.reason} ({ev.count}x)")
        elif ev.reason in SOFT_EVENT_REASONS:
            f.add_soft(
                f"event:{ev.object_name}:{ev.reason}", f"pod {ev.object_name} reported {ev.reason} ({ev.count}x)"
            )


def _metric_findings(evidence: Evidence, f: _Findings) -> None:
    for m in evidence.failed_metrics:
        if m.phase.lower() == "failed":
            values = f" (values {', '.join(m.values[-3:])})" if m.values else ""
            f.add_hard(f"metric:{m.name}", f"metric {m.name} failed{values}")
        else:
            f.notes.append(f"metric {m.name} ended {m.phase}")


def _shown(t: TemplateStat) -> str:
    """The first line of a redacted example (easier to read than the masked template)."""
    return _first_line(t.examples[0] if t.examples else t.template)


def _counts(t: TemplateStat) -> str:
    return f"{t.canary_count} in canary vs {t.stable_count} in stable"


def _log_findings(diff: LogDiff, f: _Findings) -> list[TemplateStat]:
    warnings: list[TemplateStat] = []
    for t in diff.significant():
        if t.crash_signature:
            f.add_hard(t.id, f"{t.status} crash signature {t.id} ({_counts(t)}): {_shown(t)}")
        elif t.severity == "error":
            f.add_soft(t.id, f"{t.status} error template {t.id} ({_counts(t)}): {_shown(t)}")
            if t.p_value is not None:
                f.best_p = t.p_value if f.best_p is None else min(f.best_p, t.p_value)
        elif t.severity == "warning":
            warnings.append(t)
    return warnings


def _sentence(prefix: str, phrases: list[str]) -> str:
    body = "; ".join(phrases)
    text = f"{prefix}: {body}." if body else f"{prefix}."
    return text if len(text) <= _SUMMARY_MAX else text[: _SUMMARY_MAX - 1] + "…"


def _volume_confidence(canary_events: int) -> float:
    """Grows from 50 towards 95 as the canary logs more events."""
    return 50.0 + 45.0 * (1.0 - math.exp(-canary_events / 400.0))


def statistical_verdict(evidence: Evidence, diff: LogDiff, *, min_canary_events: int = 20) -> Verdict:
    """Judge a canary from hard facts and the log diff alone, without a language model.

    Unhealthy (hard evidence) on new or increased crash signatures, canary restarts, OOMKilled,
    CrashLoopBackOff, image pull or start errors not seen on the stable side, and failed metrics.
    Otherwise inconclusive without canary pods, canary logs or enough canary events; unhealthy on
    new or significantly increased error templates; healthy otherwise. Info-level differences
    (a different colour, another id) never count.
    """
    f = _Findings()
    _pod_findings(evidence, f)
    _metric_findings(evidence, f)
    warnings = _log_findings(diff, f)
    canary_pods = evidence.side(Side.CANARY)
    refs_soft = [r for r, _ in f.soft]

    if f.hard:
        kinds = {r.split(":", 1)[0] if ":" in r else "template" for r, _ in f.hard}
        confidence = 95 if kinds & {"template", "metric", "imagepull", "start"} else 92
        if len(kinds) > 1:
            confidence = 99
        phrases = [p for _, p in f.hard] + [p for _, p in f.soft]
        crash = next((t for t in diff.significant() if t.crash_signature), None)
        root = f"The canary crashes: {_shown(crash)}" if crash else f.hard[0][1][:1].upper() + f.hard[0][1][1:]
        return Verdict(
            verdict=VerdictKind.UNHEALTHY,
            confidence=confidence,
            summary=_sentence("Canary is unhealthy", phrases[:6]),
            analyzer=Analyzer.STATISTICAL,
            root_cause=root[:2000],
            evidence_refs=([r for r, _ in f.hard] + refs_soft)[:_REFS_MAX],
            hard_evidence=True,
        )

    reason = ""
    if not canary_pods:
        reason = "no canary pods were found"
    elif diff.canary_events == 0:
        reason = "the canary pods produced no logs"
    elif diff.canary_events < min_canary_events:
        reason = f"the canary logged only {diff.canary_events} events (fewer than {min_canary_events})"
    if reason:
        extra = f"; signals so far: {'; '.join(p for _, p in f.soft)}" if f.soft else ""
        return Verdict(
            verdict=VerdictKind.INCONCLUSIVE,
            confidence=20,
            summary=_sentence(f"Cannot judge the canary: {reason}{extra}", []),
            analyzer=Analyzer.STATISTICAL,
            evidence_refs=refs_soft[:_REFS_MAX],
        )

    if f.soft:
        if diff.stable_events == 0:
            confidence = 55
        elif f.best_p is not None:
            confidence = int(min(95.0, 65.0 + 3.0 * -math.log10(max(f.best_p, 1e-300))))
        else:
            confidence = 70
        confidence = min(95, confidence + 3 * (len(f.soft) - 1))
        first_error = next((t for t in diff.significant() if t.id in refs_soft), None)
        root = (
            f"The canary logs a new error: {_shown(first_error)}"
            if first_error
            else f.soft[0][1][:1].upper() + f.soft[0][1][1:]
        )
        return Verdict(
            verdict=VerdictKind.UNHEALTHY,
            confidence=confidence,
            summary=_sentence("Canary is unhealthy", [p for _, p in f.soft][:6]),
            analyzer=Analyzer.STATISTICAL,
            root_cause=root[:2000],
            evidence_refs=refs_soft[:_REFS_MAX],
        )

    score = _volume_confidence(diff.canary_events)
    caveats: list[str] = []
    if diff.stable_events == 0:
        score = min(score, 60.0)
        caveats.append("there is no stable baseline to compare with")
    if warnings:
        score -= 10
        caveats.append(f"{len(warnings)} warning template(s) rose ({', '.join(t.id for t in warnings[:5])})")
    if f.notes:
        score -= 10
        caveats.extend(f.notes[:3])
    errors_kept = sum(1 for t in diff.templates if t.severity == "error" and t.canary_count > 0)
    base = (
        f"Canary looks healthy: {diff.canary_events} canary events vs {diff.stable_events} stable, "
        f"no new or significantly increased errors, crashes, restarts or failed metrics"
    )
    if errors_kept:
        base += f" ({errors_kept} error template(s) without a significant rise)"
    if caveats:
        base += ", although " + "; ".join(caveats)
    return Verdict(
        verdict=VerdictKind.HEALTHY,
        confidence=int(max(50.0, min(95.0, score))),
        summary=_sentence(base, []),
        analyzer=Analyzer.STATISTICAL,
        evidence_refs=[t.id for t in warnings[:5]],
    )
