"""The statistical verdict: a rule-based judgement of the evidence and the log diff, always computed."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from selfheal.domain.evidence import Evidence, PodEvidence, Side
from selfheal.domain.fielddiff import FieldStat, percent
from selfheal.domain.logdiff import UNREADABLE_SHARE, LogDiff, TemplateStat
from selfheal.domain.policy import LatencySpec
from selfheal.domain.verdict import Analyzer, Verdict, VerdictKind
from selfheal.domain.words import plain_numbers, readable_line

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

_HARD_ORDER = {"T": 0, "F": 1, "r": 2}
_LINE_MAX = 140
_SUMMARY_MAX = 600
_REFS_MAX = 32


@dataclass
class _Findings:
    hard: list[tuple[str, str]] = field(default_factory=list)  # (ref, phrase)
    soft: list[tuple[str, str]] = field(default_factory=list)
    # New errors seen too rarely to be significant: never healthy, not yet unhealthy.
    weak: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)  # refs of informational findings
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
            values = f" (last values {plain_numbers(', '.join(m.values[-3:]))})" if m.values else ""
            f.add_hard(f"metric:{m.name}", f"metric {m.name} failed{values}")
        else:
            f.notes.append(f"metric {m.name} ended {m.phase}")


def _shown(t: TemplateStat) -> str:
    """What a redacted example says, without timestamp or level (easier to read than the masked template)."""
    return _first_line(plain_numbers(readable_line(t.examples[0])) if t.examples else t.template)


def _counts(t: TemplateStat) -> str:
    return f"{t.canary_count} in canary vs {t.stable_count} in stable"


def _change(t: TemplateStat) -> str:
    return "more frequent" if t.status == "increased" else t.status


_EXCEPTION = re.compile(r"\b(?:[A-Za-z_$][\w$]*\.)*[A-Z][\w$]*(?:Error|Exception|Throwable|Fault)\b")


def _what_crashed(t: TemplateStat) -> str:
    """The exception a crash template names ("java.lang.NullPointerException"), or its first line."""
    m = _EXCEPTION.search(t.template[:2000])
    return f"{m.group(0)}: {_shown(t)}" if m and m.group(0) not in _shown(t) else _shown(t)


def _log_findings(diff: LogDiff, f: _Findings, alpha: float) -> list[TemplateStat]:
    warnings: list[TemplateStat] = []
    for t in diff.significant():
        if t.crash_signature:
            f.add_hard(t.id, f"{_change(t)} crash, {_counts(t)} (log pattern {t.id}): {_what_crashed(t)}")
        elif t.severity == "error":
            phrase = f"{_change(t)} error, {_counts(t)} (log pattern {t.id}): {_shown(t)}"
            if t.explained:
                f.notes.append(
                    f"log pattern {t.id} is an error the stable logs too in another form (another value or format), "
                    "at the same rate"
                )
            elif t.p_value is None or t.p_value < alpha:
                f.add_soft(t.id, phrase)
                if t.p_value is not None:
                    f.best_p = t.p_value if f.best_p is None else min(f.best_p, t.p_value)
            else:
                f.weak.append((t.id, phrase))
        elif t.severity == "warning":
            warnings.append(t)
        else:
            f.listed.append(t.id)
    return warnings


def _field_findings(diff: LogDiff, latency: LatencySpec, f: _Findings) -> None:
    for s in diff.fields:
        if s.kind == "category":
            if s.decisive_share:
                f.add_hard(s.id, s.summary)
            elif s.error:
                f.add_soft(s.id, s.summary)
                if s.p_value is not None:
                    f.best_p = s.p_value if f.best_p is None else min(f.best_p, s.p_value)
            else:
                f.notes.append(s.summary)
        elif s.status == "slower":
            ratio = s.p95_ratio
            delta = (s.canary_p95 or 0.0) - (s.stable_p95 or 0.0)
            if (ratio is None or ratio >= latency.p95_ratio) and delta >= latency.min_delta_seconds:
                f.add_hard(s.id, f"latency regression: {s.summary}")
            else:
                f.notes.append(f"slower within the policy's latency bounds: {s.summary}")
        elif s.status == "canary-only":
            if (s.canary_p95 or 0.0) >= latency.canary_only_p95_seconds:
                f.add_soft(s.id, s.summary)
            else:
                f.listed.append(s.id)
        else:
            f.listed.append(s.id)


def _restart_findings(evidence: Evidence, diff: LogDiff, f: _Findings) -> None:
    """A crash loop seen in the logs alone: the canary's first line comes back again and again in
    its logs, where the stable logs it at most once a log, and new errors come with it."""
    first = diff.get(diff.canary_first) if diff.canary_first else None
    if first is None:
        return
    canary_logs = max(1, sum(1 for p in evidence.side(Side.CANARY) for log in p.logs if log.text))
    stable_logs = max(1, sum(1 for p in evidence.side(Side.STABLE) for log in p.logs if log.text))
    new_errors = [t for t in diff.significant() if t.severity == "error" and t.id != first.id]
    if first.canary_count >= 2 * canary_logs and first.stable_count <= stable_logs and new_errors:
        f.add_hard(
            "restarts:logs",
            f"the canary started {first.canary_count} times in {canary_logs} log(s) (its first line "
            f"'{_shown(first)}' came back each time, with log pattern {new_errors[0].id}: {_shown(new_errors[0])})",
        )


def _read_findings(evidence: Evidence, diff: LogDiff) -> list[str]:
    """What could not be read: failed log reads by pod and container, and sides that are binary noise."""
    out: list[str] = []
    failed = evidence.failed_reads()
    if failed:
        names = ", ".join(log.label for log in failed[:6]) + (f" and {len(failed) - 6} more" if len(failed) > 6 else "")
        out.append(f"the logs of {names} could not be read ({_first_line(failed[0].error)})")
    for side, share in ((Side.CANARY, diff.canary_unreadable), (Side.STABLE, diff.stable_unreadable)):
        if share > UNREADABLE_SHARE:
            out.append(f"the {side.value} logs are not readable text ({percent(100 * share)} binary noise)")
    return out


def _sentence(prefix: str, phrases: list[str]) -> str:
    body = "; ".join(phrases)
    text = f"{prefix}: {body}." if body else f"{prefix}."
    return text if len(text) <= _SUMMARY_MAX else text[: _SUMMARY_MAX - 1] + "…"


def _volume_confidence(canary_events: int) -> float:
    """Grows from 50 towards 95 as the canary logs more events."""
    return 50.0 + 45.0 * (1.0 - math.exp(-canary_events / 400.0))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _root_cause(diff: LogDiff, f: _Findings, refs: list[str]) -> str:
    crash = next((t for t in diff.significant() if t.crash_signature and t.id in refs), None)
    if crash is not None:
        return f"The canary crashes: {_what_crashed(crash)}"
    first = refs[0]
    stat: FieldStat | None = diff.field(first)
    if stat is not None:
        return _capital(stat.summary)
    error = diff.get(first)
    if error is not None and error.severity == "error":
        return f"The canary logs a new error: {_shown(error)}"
    phrases = dict(f.hard + f.soft)
    return _capital(phrases.get(first, ""))


def statistical_verdict(
    evidence: Evidence,
    diff: LogDiff,
    *,
    latency: LatencySpec | None = None,
    min_canary_events: int = 20,
    alpha: float = 0.01,
) -> Verdict:
    """Judge a canary from hard facts, the log diff and its fields alone, without a language model.

    Unhealthy with hard evidence, whatever the volume, on a new or increased crash signature (a
    panic, a fatal level, an uncaught exception or one printed with its stack, a process exiting
    with a failure), a 5xx share that rose by whole percentage points, a latency regression beyond
    the policy's bounds, canary restarts, OOMKilled, CrashLoopBackOff, image pull or start errors
    not seen on the stable side, and failed metrics. Otherwise inconclusive when a log could not
    be read or is binary noise, without canary pods, canary logs or enough canary events. Then
    unhealthy on significant new or increased errors (templates, the error level, smaller 5xx
    rises, a slow latency only the canary logs); inconclusive on new errors too rare to be
    significant; healthy only when none of that was seen. Info-level differences (a different
    colour, another id, a new info message) never count against the canary; they are listed.
    """
    latency = latency or LatencySpec()
    f = _Findings()
    _pod_findings(evidence, f)
    _metric_findings(evidence, f)
    warnings = _log_findings(diff, f, alpha)
    _field_findings(diff, latency, f)
    _restart_findings(evidence, diff, f)
    canary_pods = evidence.side(Side.CANARY)
    refs_soft = [r for r, _ in f.soft]
    unread = _read_findings(evidence, diff)

    if f.hard:
        kinds = {r.split(":", 1)[0] if ":" in r else r[:1] for r, _ in f.hard}
        confidence = 95 if kinds & {"T", "F", "metric", "imagepull", "start"} else 92
        if len(kinds) > 1:
            confidence = 99
        # What the logs show first (the crash, the values), then pods and metrics: the summary is cut
        # short in an Event, and the first words should say what broke.
        hard = sorted(f.hard, key=lambda item: _HARD_ORDER.get(item[0][:1], 3))
        refs = [r for r, _ in hard]
        phrases = [p for _, p in hard] + [p for _, p in f.soft] + unread
        return Verdict(
            verdict=VerdictKind.UNHEALTHY,
            confidence=confidence,
            summary=_sentence("Canary is unhealthy", phrases[:6]),
            analyzer=Analyzer.STATISTICAL,
            root_cause=_root_cause(diff, f, refs)[:2000],
            evidence_refs=(refs + refs_soft)[:_REFS_MAX],
            hard_evidence=True,
        )

    reason = "; ".join(unread)
    if not reason:
        if not canary_pods:
            reason = "no canary pods were found"
        elif diff.canary_events == 0:
            reason = "the canary pods produced no logs"
        elif diff.canary_events < min_canary_events:
            reason = f"the canary logged only {diff.canary_events} events (fewer than {min_canary_events})"
    if reason and not (f.soft and unread):
        signals = [p for _, p in f.soft + f.weak]
        extra = f"; signals so far: {'; '.join(signals)}" if signals else ""
        return Verdict(
            verdict=VerdictKind.INCONCLUSIVE,
            confidence=20,
            summary=_sentence(f"Cannot judge the canary: {reason}{extra}", []),
            analyzer=Analyzer.STATISTICAL,
            evidence_refs=(refs_soft + [r for r, _ in f.weak])[:_REFS_MAX],
        )

    if f.soft:
        if diff.stable_events == 0:
            confidence = 55
        elif f.best_p is not None:
            confidence = int(min(95.0, 65.0 + 3.0 * -math.log10(max(f.best_p, 1e-300))))
        else:
            confidence = 70
        confidence = min(95, confidence + 3 * (len(f.soft) - 1))
        return Verdict(
            verdict=VerdictKind.UNHEALTHY,
            confidence=confidence,
            summary=_sentence("Canary is unhealthy", ([p for _, p in f.soft] + unread)[:6]),
            analyzer=Analyzer.STATISTICAL,
            root_cause=_root_cause(diff, f, refs_soft)[:2000],
            evidence_refs=refs_soft[:_REFS_MAX],
        )

    if f.weak:
        return Verdict(
            verdict=VerdictKind.INCONCLUSIVE,
            confidence=40,
            summary=_sentence(
                "Canary is not shown healthy: it logs errors the stable never logged, too rarely to be significant",
                [p for _, p in f.weak][:4],
            ),
            analyzer=Analyzer.STATISTICAL,
            evidence_refs=[r for r, _ in f.weak][:_REFS_MAX],
        )

    score = _volume_confidence(diff.canary_events)
    caveats: list[str] = []
    if diff.stable_events == 0:
        score = min(score, 60.0)
        caveats.append("there is no stable baseline to compare with")
    if warnings:
        score -= 10
        caveats.append(f"{len(warnings)} warning log pattern(s) rose ({', '.join(t.id for t in warnings[:5])})")
    if f.notes:
        score -= 10
        caveats.extend(f.notes[:3])
    if f.listed:
        caveats.append(f"new informational log patterns or fields ({', '.join(f.listed[:8])})")
    errors_kept = sum(1 for t in diff.templates if t.severity == "error" and t.canary_count > 0)
    base = (
        f"Canary looks healthy: {diff.canary_events} canary events vs {diff.stable_events} stable, "
        f"no new or significantly increased errors, crashes, restarts, 5xx, latency regressions or failed metrics"
    )
    if errors_kept:
        base += f" ({errors_kept} error log pattern(s) without a significant rise)"
    if caveats:
        base += ", although " + "; ".join(caveats)
    return Verdict(
        verdict=VerdictKind.HEALTHY,
        confidence=int(max(50.0, min(95.0, score))),
        summary=_sentence(base, []),
        analyzer=Analyzer.STATISTICAL,
        evidence_refs=[t.id for t in warnings[:5]],
    )
