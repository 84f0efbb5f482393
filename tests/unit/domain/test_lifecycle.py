"""The ticket state machine: phase from conditions, issue context, comment pacing, PRs and verification rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from selfheal.domain import lifecycle
from selfheal.domain.lifecycle import PostedComment, RevisionView, RolloutView
from selfheal.domain.redaction import Redactor
from selfheal.domain.ticket import (
    ConditionStatus,
    ConditionType,
    ObjectMeta,
    PodRecord,
    PullRequestState,
    PullRequestStatus,
    Reason,
    RemediationTicket,
    TemplateRecord,
    TicketEvidence,
    TicketPhase,
    TicketSpec,
    TicketStatus,
    TicketVerdict,
    VerificationState,
    VerificationStatus,
    get_condition,
    set_condition,
)

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
MERGE_SHA = "3f2c9ab41d5e6f7081929394a5b6c7d8e9f0a1b2"
T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def conds(*entries: tuple[str, ConditionStatus, str]) -> list:
    result: list = []
    for type_, status, reason in entries:
        result = set_condition(result, type_, status, reason, "", NOW)
    return result


# --- phase -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "phase"),
    [
        ([], TicketPhase.OPEN),
        ([(ConditionType.ISSUE_OPENED, F, Reason.GITHUB_DISABLED)], TicketPhase.OPEN),
        ([(ConditionType.ISSUE_OPENED, F, Reason.RATE_LIMITED)], TicketPhase.OPEN),
        ([(ConditionType.ISSUE_OPENED, F, Reason.BAD_CREDENTIALS)], TicketPhase.FAILED),
        ([(ConditionType.ISSUE_OPENED, F, Reason.INVALID_LABEL)], TicketPhase.FAILED),
        ([(ConditionType.ISSUE_OPENED, T, Reason.ISSUE_CREATED)], TicketPhase.ISSUE_OPENED),
        (
            [
                (ConditionType.ISSUE_OPENED, T, Reason.ISSUE_CREATED),
                (ConditionType.FIX_PROPOSED, F, Reason.AGENT_STALLED),
            ],
            TicketPhase.ISSUE_OPENED,
        ),
        ([(ConditionType.ISSUE_OPENED, F, Reason.ISSUE_CLOSED)], TicketPhase.CLOSED),
        (
            [
                (ConditionType.ISSUE_OPENED, T, Reason.ISSUE_CREATED),
                (ConditionType.FIX_PROPOSED, T, Reason.PULL_REQUEST_OPENED),
            ],
            TicketPhase.FIX_PROPOSED,
        ),
        (
            [
                (ConditionType.FIX_PROPOSED, T, ""),
                (ConditionType.FIX_MERGED, T, ""),
                (ConditionType.VERIFIED, U, Reason.AWAITING_ROLLOUT),
            ],
            TicketPhase.FIX_MERGED,
        ),
        (
            [(ConditionType.FIX_MERGED, T, ""), (ConditionType.VERIFIED, U, Reason.REVISION_VERIFYING)],
            TicketPhase.VERIFYING,
        ),
        (
            [(ConditionType.FIX_MERGED, T, ""), (ConditionType.VERIFIED, T, Reason.REVISION_VERIFIED)],
            TicketPhase.RESOLVED,
        ),
        (
            [
                (ConditionType.FIX_MERGED, F, Reason.FIX_REGRESSED),
                (ConditionType.VERIFIED, F, Reason.REVISION_REGRESSED),
            ],
            TicketPhase.REGRESSED,
        ),
        # after a regression, a new fix moves the ticket forward again
        (
            [(ConditionType.FIX_PROPOSED, T, ""), (ConditionType.VERIFIED, F, Reason.REVISION_REGRESSED)],
            TicketPhase.FIX_PROPOSED,
        ),
        # without GitHub, verification alone
        (
            [
                (ConditionType.ISSUE_OPENED, F, Reason.GITHUB_DISABLED),
                (ConditionType.VERIFIED, U, Reason.REVISION_VERIFYING),
            ],
            TicketPhase.VERIFYING,
        ),
    ],
)
def test_phase_is_derived_from_conditions(conditions: list, phase: TicketPhase) -> None:
    assert lifecycle.derive_phase(conds(*conditions)) == phase


# --- the issue ---------------------------------------------------------------------------------------


def ticket() -> RemediationTicket:
    return RemediationTicket(
        metadata=ObjectMeta(name="web-abc123", namespace="shop"),
        spec=TicketSpec(
            rollout="web",
            policy="p",
            pod_template_hash="abc123",
            revision="3",
            fingerprint="0badc0ffee",
            images=["ghcr.io/acme/web:1.2"],
            verdict=TicketVerdict(
                verdict="unhealthy",
                confidence=90,
                analyzer="combined",
                summary="panics; password=hunter2 in the log",
                root_cause="ACME-1234 leaked",
            ),
            evidence=TicketEvidence(
                templates=[
                    TemplateRecord(
                        id="T1",
                        template="panic: token=<*>",
                        severity="error",
                        status="new",
                        canary_count=5,
                        examples=["Authorization: Bearer abcdefghijklmnopqrstuvwx"],
                    )
                ],
                pods=[PodRecord(name="web-abc123-x", side="canary", restarts=2, reasons=["CrashLoopBackOff"])],
            ),
        ),
        status=TicketStatus(occurrences=3, first_seen=NOW - timedelta(hours=1), last_seen=NOW),
    )


def test_issue_context_is_redacted_again_with_policy_patterns() -> None:
    redactor = Redactor([("acme-ticket", r"ACME-\d+")])
    ctx = lifecycle.issue_context(ticket(), redactor.redact, repository="acme/web", base_branch="develop")
    assert "hunter2" not in ctx.summary and "[REDACTED:" in ctx.summary
    assert ctx.root_cause == "[REDACTED:acme-ticket] leaked"
    assert "abcdefghijklmnopqrstuvwx" not in ctx.templates[0].examples[0]
    assert (ctx.namespace, ctx.rollout, ctx.revision, ctx.pod_template_hash) == ("shop", "web", "3", "abc123")
    assert ctx.occurrences == 3 and ctx.fingerprint == "0badc0ffee" and ctx.base_branch == "develop"
    assert ctx.pod_states[0].reasons == ["CrashLoopBackOff"] and ctx.templates[0].canary_count == 5


def test_reusable_issue_open_or_recently_closed() -> None:
    assert lifecycle.reusable_issue("open", None, 1, NOW)
    assert lifecycle.reusable_issue("closed", NOW - timedelta(hours=2), 3, NOW)
    assert not lifecycle.reusable_issue("closed", NOW - timedelta(hours=4), 3, NOW)
    assert not lifecycle.reusable_issue("closed", None, 3, NOW)


def test_occurrence_comments_are_paced_per_issue_and_never_repeated() -> None:
    plan = lifecycle.occurrence_comment_plan
    assert plan("web-a", 2, 1, None, [], 60, NOW) == (True, 1)
    assert plan("web-a", 1, 1, None, [], 60, NOW) == (False, 1)
    # our own comment 10 minutes ago: wait
    assert plan("web-a", 3, 2, NOW - timedelta(minutes=10), [], 60, NOW) == (False, 2)
    assert plan("web-a", 3, 2, NOW - timedelta(minutes=61), [], 60, NOW) == (True, 2)
    # another ticket's occurrence comment on the same issue counts for the pace
    other = PostedComment(f"seen\n{lifecycle.occurrence_marker('web-b', 4)}", NOW - timedelta(minutes=5))
    assert plan("web-a", 2, 0, None, [other], 60, NOW) == (False, 0)
    # a comment posted before a crash kept the status from recording it
    mine = PostedComment(f"seen\n{lifecycle.occurrence_marker('web-a', 3)}", NOW - timedelta(hours=2))
    assert plan("web-a", 3, 1, None, [mine], 60, NOW) == (False, 3)
    assert plan("web-a", 4, 1, None, [mine], 60, NOW) == (True, 3)


# --- pull requests -----------------------------------------------------------------------------------


def pr(number: int, state: PullRequestState, merged_at: datetime | None = None) -> PullRequestStatus:
    return PullRequestStatus(
        number=number, state=state, author="Copilot", merged_at=merged_at, merge_sha=MERGE_SHA if merged_at else ""
    )


def test_pull_state() -> None:
    assert lifecycle.pull_state("open", True, False) == PullRequestState.DRAFT
    assert lifecycle.pull_state("open", False, False) == PullRequestState.OPEN
    assert lifecycle.pull_state("closed", False, False) == PullRequestState.CLOSED
    assert lifecycle.pull_state("closed", False, True) == PullRequestState.MERGED


def test_fix_conditions_follow_the_pull_requests() -> None:
    start = conds((ConditionType.FIX_PROPOSED, F, Reason.AGENT_ASSIGNED))
    assert lifecycle.fix_conditions(start, [], None, NOW) == start
    proposed = lifecycle.fix_conditions(start, [pr(5, PullRequestState.DRAFT)], None, NOW)
    assert lifecycle.derive_phase(proposed) == TicketPhase.FIX_PROPOSED
    assert "draft pull request #5" in get_condition(proposed, ConditionType.FIX_PROPOSED).message
    merged = lifecycle.fix_conditions(proposed, [pr(5, PullRequestState.MERGED, NOW)], None, NOW)
    assert lifecycle.derive_phase(merged) == TicketPhase.FIX_MERGED
    assert MERGE_SHA[:12] in get_condition(merged, ConditionType.FIX_MERGED).message
    closed = lifecycle.fix_conditions(proposed, [pr(5, PullRequestState.CLOSED)], None, NOW)
    assert get_condition(closed, ConditionType.FIX_PROPOSED).reason == Reason.PULL_REQUEST_CLOSED


def test_after_a_regression_only_a_later_merge_counts() -> None:
    cutoff = NOW - timedelta(minutes=5)
    old = pr(5, PullRequestState.MERGED, NOW - timedelta(hours=1))
    regressed = lifecycle.regressed_conditions(conds((ConditionType.FIX_MERGED, T, "")), "4", "def456", NOW)
    assert lifecycle.derive_phase(regressed) == TicketPhase.REGRESSED
    assert lifecycle.derive_phase(lifecycle.fix_conditions(regressed, [old], cutoff, NOW)) == TicketPhase.REGRESSED
    new = pr(7, PullRequestState.MERGED, NOW)
    assert (
        lifecycle.derive_phase(lifecycle.fix_conditions(regressed, [old, new], cutoff, NOW)) == TicketPhase.FIX_MERGED
    )
    assert lifecycle.tracked_pull([old, new], cutoff) == 7
    assert lifecycle.tracked_pull([old, pr(8, PullRequestState.DRAFT)], cutoff) == 8


def test_stalled_after_patience_once() -> None:
    asked = set_condition([], ConditionType.FIX_PROPOSED, False, Reason.AGENT_ASSIGNED, "", NOW - timedelta(hours=25))
    assert lifecycle.is_stalled(asked, 24, NOW)
    assert not lifecycle.is_stalled(asked, 24, NOW - timedelta(hours=2))
    stalled = set_condition(asked, ConditionType.FIX_PROPOSED, False, Reason.AGENT_STALLED, "", NOW)
    assert not lifecycle.is_stalled(stalled, 24, NOW + timedelta(hours=100))
    assert not lifecycle.is_stalled(conds((ConditionType.FIX_PROPOSED, T, "")), 1, NOW + timedelta(days=9))


# --- verification ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("images", "annotations", "expected"),
    [
        (["ghcr.io/acme/web:3f2c9ab"], {}, True),
        (["ghcr.io/acme/web:sha-3f2c9ab41d5e"], {}, True),
        (["ghcr.io/acme/web:v1.2.3"], {"git.acme.dev/commit": MERGE_SHA}, True),
        (["ghcr.io/acme/web:3f2c9a"], {}, False),  # six digits are too few
        (["ghcr.io/acme/web:1234567"], {}, False),
        (["registry:5000/3f2c9ab/web:latest"], {}, False),  # in the path, not the tag
    ],
)
def test_merge_sha_in_image_tag_or_annotation(images: list[str], annotations: dict, expected: bool) -> None:
    assert lifecycle.carries_sha(MERGE_SHA, images, annotations) is expected


def test_accepted_revision_is_new_after_the_merge_and_carries_the_sha_when_required() -> None:
    merged = NOW - timedelta(minutes=10)
    rev = RevisionView(pod_hash="def456", revision="4", created=NOW, images=("acme/web:3f2c9ab",))
    assert lifecycle.accepts_revision(rev, "abc123", merged, MERGE_SHA, True)
    assert not lifecycle.accepts_revision(rev, "def456", merged, MERGE_SHA, True)  # the failing one
    early = RevisionView(pod_hash="def456", created=merged - timedelta(seconds=1))
    assert not lifecycle.accepts_revision(early, "abc123", merged, MERGE_SHA, False)
    plain = RevisionView(pod_hash="def456", created=NOW, images=("acme/web:latest",))
    assert lifecycle.accepts_revision(plain, "abc123", merged, MERGE_SHA, False)
    assert not lifecycle.accepts_revision(plain, "abc123", merged, MERGE_SHA, True)


def test_verification_pending_verifying_passed() -> None:
    rev = RevisionView(pod_hash="def456", revision="4", created=NOW)
    pending = lifecycle.advance_verification(None, None, RolloutView("abc123", "old999", "Degraded"), NOW)
    assert pending.state == VerificationState.PENDING
    rolling = RolloutView(current_hash="def456", stable_hash="old999", phase="Paused")
    verifying = lifecycle.advance_verification(pending, rev, rolling, NOW)
    assert (verifying.state, verifying.pod_template_hash, verifying.revision) == (
        VerificationState.VERIFYING,
        "def456",
        "4",
    )
    assert lifecycle.advance_verification(verifying, None, rolling, NOW) == verifying
    unhealthy = RolloutView(current_hash="def456", stable_hash="def456", phase="Degraded")
    assert lifecycle.advance_verification(verifying, None, unhealthy, NOW).state == VerificationState.VERIFYING
    done = lifecycle.advance_verification(verifying, None, RolloutView("def456", "def456", "Healthy"), NOW)
    assert done.state == VerificationState.PASSED and done.verified_at == NOW
    cond = get_condition(lifecycle.verified_condition([], done, NOW), ConditionType.VERIFIED)
    assert (cond.status, cond.reason) == (ConditionStatus.TRUE, Reason.REVISION_VERIFIED)


def test_a_regressed_verification_waits_for_a_new_revision() -> None:
    failed = VerificationStatus(pod_template_hash="def456", state=VerificationState.FAILED, verified_at=NOW)
    ro = RolloutView("def456", "old999", "Degraded")
    assert lifecycle.advance_verification(failed, None, ro, NOW) == failed
    assert lifecycle.regression_cutoff(failed) == NOW
    rev = RevisionView(pod_hash="fff000", created=NOW + timedelta(minutes=1))
    assert lifecycle.advance_verification(failed, rev, ro, NOW).state == VerificationState.VERIFYING


def test_regression_is_the_verification_revision_with_the_same_fingerprint() -> None:
    merged = NOW - timedelta(minutes=10)
    verifying = VerificationStatus(pod_template_hash="def456", state=VerificationState.VERIFYING)
    check = lifecycle.is_regression
    assert check(TicketPhase.VERIFYING, "aa11", "abc123", verifying, "def456", "aa11", None, merged)
    assert not check(TicketPhase.VERIFYING, "aa11", "abc123", verifying, "def456", "bb22", None, merged)
    assert not check(TicketPhase.VERIFYING, "aa11", "abc123", verifying, "fff000", "aa11", NOW, merged)
    # merged, no revision picked yet: the first revision created after the merge
    assert check(TicketPhase.FIX_MERGED, "aa11", "abc123", None, "def456", "aa11", NOW, merged)
    assert not check(TicketPhase.FIX_MERGED, "aa11", "abc123", None, "def456", "aa11", merged, merged)
    assert not check(TicketPhase.FIX_PROPOSED, "aa11", "abc123", None, "def456", "aa11", NOW, merged)
    assert not check(TicketPhase.RESOLVED, "aa11", "abc123", verifying, "def456", "aa11", NOW, merged)
