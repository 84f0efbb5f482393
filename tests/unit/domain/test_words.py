"""Every Event, title and log line selfheal writes reads as a sentence a person would write.

Each kind of Event is rendered from real judgements (the labelled corpus, in every format it holds)
and checked against the rules a reviewer applies: no miner's masks, no raw floats, no internal id
left unexplained, the opening says what happened, and the message fits an Event.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from selfheal.domain.decision import decide
from selfheal.domain.evidence import FailedMetric
from selfheal.domain.issue import IssueContext, IssueTemplate, render_title
from selfheal.domain.policy import AnalysisSpec, DecisionSpec
from selfheal.domain.verdict import VerdictKind
from selfheal.domain.words import (
    EVENT_MAX,
    action_failed_event,
    agent_not_started_event,
    agent_stalled_event,
    budget_event,
    decision_log,
    headline,
    last_action,
    notification_failed_event,
    number,
    phase_event,
    plain_numbers,
    readable_line,
    readiness_event,
    ticket_opened_event,
    verdict_event,
)
from selfheal.services.judge import prepare
from selfheal.services.offline import evidence_from_logs

CASES = sorted(p for p in (Path(__file__).resolve().parents[2] / "corpus" / "cases").iterdir() if p.is_dir())
TRIGGERS = ("analysisFailed", "analysisInconclusive", "indefinitePause", "logWatch")
TAKEN = ("abort", "pause", "promote", "none", "dry-run:abort", "skipped: already done")

MASK = re.compile(r"<(?:IP|PORT|NUM|TS|DUR|HEX|UUID|URL|EMAIL|ID|LONG|\*)>")
RAW_FLOAT = re.compile(r"\d+\.\d{4,}")
INTERNAL_ID = re.compile(r"\b[TF]\d{1,4}\b")
TIMESTAMP = re.compile(r"\d{4}[-/]\d{2}[-/]\d{2}|\b\d{2}:\d{2}:\d{2}\b")
OPENINGS = ("Canary of ", "Could not ", "Opened ", "Ticket ", "Policy ", "The coding agent ", "No pull request ")


def problems(message: str) -> list[str]:
    """What a reviewer would object to in one Event message."""
    found = []
    if MASK.search(message):
        found.append("keeps a miner's mask")
    if RAW_FLOAT.search(message):
        found.append("prints a raw float")
    for m in INTERNAL_ID.finditer(message):
        before = message[max(0, m.start() - 40) : m.start()]
        if "pattern" not in before and "field" not in before:
            found.append(f"names {m.group(0)} without saying what it is")
    if not message.startswith(OPENINGS):
        found.append("does not open with what happened")
    if len(message) > EVENT_MAX:
        found.append("too long for an Event")
    if "->" in message or "trigger " in message:
        found.append("reads like a log of internals")
    return found


def judged(case: Path, threshold: int = 80):
    evidence = evidence_from_logs(case.name, (case / "canary.log").read_text(), (case / "stable.log").read_text())
    _, diff, statistical, _ = prepare(evidence, AnalysisSpec())
    decision = decide(
        statistical, None, DecisionSpec.model_validate({"confidenceThreshold": threshold}), llm_configured=False
    )
    return diff, decision


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_every_verdict_event_of_the_corpus_reads_as_a_sentence(case: Path) -> None:
    diff, decision = judged(case)
    v = decision.verdict
    for trigger in TRIGGERS:
        for taken in TAKEN:
            event = verdict_event(
                verdict=v.verdict,
                confidence=v.confidence,
                analyzer=v.analyzer.value,
                summary=v.summary,
                revision="7",
                trigger=trigger,
                taken=taken,
                decision_reason=decision.reason,
            )
            assert problems(event.message) == [], event.message
            assert event.reason == {"unhealthy": "CanaryUnhealthy", "healthy": "CanaryHealthy"}.get(
                v.verdict.value, "CanaryInconclusive"
            )
    top = next((t for t in diff.significant() if t.severity == "error"), None)
    if top is not None:
        line = headline(top.template, top.examples)
        assert line and not MASK.search(line) and not TIMESTAMP.search(line) and len(line) <= 90, line
        opened = ticket_opened_event("web-6d4f9", "7", "ab" * 32, line)
        assert problems(opened.message) == [], opened.message


def test_an_inconclusive_event_never_opens_as_healthy() -> None:
    case = next(c for c in CASES if c.name.endswith("--same-traffic"))
    _, decision = judged(case, threshold=100)
    assert decision.verdict.verdict == VerdictKind.INCONCLUSIVE
    assert decision.verdict.summary.startswith("Canary looks healthy")
    event = verdict_event(
        verdict=decision.verdict.verdict,
        confidence=decision.verdict.confidence,
        analyzer="statistical",
        summary=decision.verdict.summary,
        revision="3",
        trigger="indefinitePause",
        taken="none",
        decision_reason=decision.reason,
    )
    assert event.reason == "CanaryInconclusive"
    assert event.message.startswith("Could not tell whether the canary of revision 3 is healthy")
    assert "below the 100% threshold" in event.message
    assert problems(event.message) == []


def test_failed_metric_values_are_rounded_for_people() -> None:
    case = next(c for c in CASES if c.name.endswith("--same-traffic"))
    evidence = evidence_from_logs(case.name, (case / "canary.log").read_text(), (case / "stable.log").read_text())
    evidence = evidence.model_copy(
        update={
            "failed_metrics": [
                FailedMetric(
                    analysis_run="web-7-1",
                    name="error-rate",
                    phase="Failed",
                    values=["0.15591397849462366", "0.2100000000000001"],
                )
            ]
        }
    )
    _, _, statistical, _ = prepare(evidence, AnalysisSpec())
    decision = decide(statistical, None, DecisionSpec(), llm_configured=False)
    event = verdict_event(
        verdict=decision.verdict.verdict,
        confidence=decision.verdict.confidence,
        analyzer="statistical",
        summary=decision.verdict.summary,
        revision="7",
        trigger="analysisFailed",
        taken="abort",
        decision_reason=decision.reason,
    )
    assert "etric error-rate failed (last values 0.156, 0.21)" in event.message
    assert event.message.startswith("Canary of revision 7 is unhealthy") and event.type == "Warning"
    assert problems(event.message) == []


def test_the_other_events_read_as_sentences() -> None:
    events = [
        budget_event("checkout", 20, "logWatch", "4"),
        action_failed_event("abort", "4", "rollouts.argoproj.io is forbidden: cannot patch rollouts/status"),
        readiness_event("checkout", False, "SecretNotFound", "GitHub token: Secret gh-token not found"),
        readiness_event("checkout", True, "Valid", "policy is valid and its Secrets are present"),
        agent_not_started_event("Copilot coding agent", 12),
        agent_stalled_event(12, 24),
        notification_failed_event(
            "IssueOpened", "webhook: https://hooks.example.com refused the notification (HTTP 410)"
        ),
    ]
    for phase in ("Open", "IssueOpened", "FixProposed", "FixMerged", "Verifying", "Resolved", "Regressed", "Closed"):
        events.append(phase_event("web-6d4f9", "web", phase, previous="Open", issue=12, pull_request=13, revision="5"))
    for event in events:
        assert problems(event.message) == [], event.message
        assert event.reason[0].isupper() and " " not in event.reason
    regressed = phase_event("web-6d4f9", "web", "Regressed", issue=12)
    assert regressed.type == "Warning" and "failed the same way" in regressed.message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "2025/10/09 14:00:01 http: panic serving 10.0.0.7:53012: runtime error: index out of range [0]",
            "http: panic serving 10.0.0.7:53012: runtime error: index out of range [0]",
        ),
        (
            '{"ts":"2025-10-09T14:00:01Z","level":"error","msg":"db timeout","error":"i/o timeout"}',
            "db timeout: i/o timeout",
        ),
        (
            'time="2025-10-09T14:00:01Z" level=error msg="payment failed" err="card declined"',
            "payment failed: card declined",
        ),
        ("E1009 14:00:01.000123       1 reflector.go:138] failed to list pods", "failed to list pods"),
        (
            "2025-10-09 14:00:01.123 ERROR 1 --- [nio-8080-exec-1] c.e.b.BillingController  : charge failed",
            "charge failed",
        ),
        (
            "Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\nKeyError: 'user'",
            "KeyError: 'user'",
        ),
        ("panic: assignment to entry in nil map", "panic: assignment to entry in nil map"),
        ("[2025-10-09 14:00:01,123] ERROR [worker-3] Job 812 failed", "Job 812 failed"),
    ],
)
def test_a_log_line_reads_without_its_timestamp_and_level(line: str, expected: str) -> None:
    assert readable_line(line) == expected


def test_a_template_without_examples_gets_words_for_its_masks() -> None:
    line = headline("<TS> http: panic serving <IP>:<PORT>: runtime error: index out of range [<NUM>] <*>", [])
    assert line == "http: panic serving an address: runtime error: index out of range [N] …"


def test_issue_titles_keep_no_masks_and_start_with_the_error() -> None:
    template = "<TS> http: panic serving <IP>:<PORT>: runtime error: index out of range [<NUM>] with length <NUM>"
    example = "2025/10/09 14:00:01 http: panic serving [REDACTED:ip]:53012: runtime error: index out of range [3] with length 3"
    ctx = IssueContext(
        namespace="shop",
        rollout="canary-demo",
        fingerprint="ab" * 32,
        templates=[IssueTemplate(id="T1", template=template, examples=[example])],
    )
    title = render_title(ctx)
    assert title.startswith("[selfheal] canary-demo: http: panic serving")
    assert not MASK.search(title) and not TIMESTAMP.search(title) and len(title) <= 100


def test_numbers_are_written_as_people_write_them() -> None:
    assert number(0.15591397849462366) == "0.156"
    assert number(2.0) == "2"
    assert number(1234.5678) == "1235"
    assert plain_numbers("ratio 0.15591397849462366 over 12.5 s") == "ratio 0.156 over 12.5 s"


def test_a_decision_log_line_names_what_was_decided() -> None:
    message, fields = decision_log(
        namespace="shop",
        rollout="web",
        revision="7",
        trigger="analysisFailed",
        verdict="unhealthy",
        confidence=95,
        analyzer="statistical",
        action="abort",
        reason="Unhealthy (statistical, 95% confidence) -> abort by onUnhealthy=abort.",
    )
    for word in ("shop/web", "revision 7", "analysisFailed", "unhealthy", "95", "abort"):
        assert word in message
    assert fields["rollout"] == "web" and fields["action"] == "abort" and fields["confidence"] == 95


def test_the_last_action_column_says_what_happened_to_the_rollout() -> None:
    assert last_action("abort") == "abort"
    assert last_action("dry-run:pause") == "dry-run:pause"
    assert last_action("skipped: already aborted") == "already aborted"
    assert last_action("skipped: already done") == ""
    assert last_action("skipped: the Rollout changed since it was judged: a new revision") == "skipped"


def test_an_analyzer_quoting_masks_and_raw_floats_is_reworded() -> None:
    event = verdict_event(
        verdict=VerdictKind.UNHEALTHY,
        confidence=88,
        analyzer="llm",
        summary="The canary panics serving <IP>:<PORT> with index [<NUM>]; error ratio 0.15591397849462366.",
        revision="4",
        trigger="analysisInconclusive",
        taken="pause",
        decision_reason="Unhealthy (llm, 88% confidence) -> pause by onUnhealthy=pause.",
    )
    assert problems(event.message) == [], event.message
    assert "serving an address with index [N]; error ratio 0.156" in event.message
