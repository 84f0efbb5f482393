"""The RemediationTicket state machine: phase from conditions, issue context, PR and verification rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from selfheal.domain.issue import IssueContext, IssueMetric, IssuePodState, IssueTemplate
from selfheal.domain.ticket import (
    Condition,
    ConditionStatus,
    ConditionType,
    PullRequestState,
    PullRequestStatus,
    Reason,
    RemediationTicket,
    TicketPhase,
    VerificationState,
    VerificationStatus,
    get_condition,
    set_condition,
)

# IssueOpened reasons that a retry cannot fix until someone changes the token, repository or labels.
REFUSED_REASONS = frozenset(
    {
        Reason.BAD_CREDENTIALS,
        Reason.REPOSITORY_NOT_FOUND,
        Reason.INVALID_LABEL,
        Reason.SECRET_NOT_FOUND,
        Reason.SECRET_KEY_MISSING,
    }
)
# Phases after which nothing is done any more.
FINAL_PHASES = frozenset({TicketPhase.RESOLVED})
# Phases in which a failure of the next revision with the same fingerprint is a regression.
VERIFYING_PHASES = frozenset({TicketPhase.FIX_MERGED, TicketPhase.VERIFYING})
MIN_SHA_PREFIX = 7

_HEX_RUN = re.compile(r"[0-9a-fA-F]{7,40}")
_OCCURRENCE_MARKER = re.compile(r"<!-- selfheal:occurrence ticket=([a-z0-9./-]+) n=(\d+) -->")


# --- phase ------------------------------------------------------------------------------------------


def _is(conditions: Sequence[Condition], type: str, status: ConditionStatus, *reasons: str) -> bool:
    cond = get_condition(conditions, type)
    return cond is not None and cond.status == status and (not reasons or cond.reason in reasons)


def derive_phase(conditions: Sequence[Condition]) -> TicketPhase:
    """The phase shown to users, a pure function of the conditions (most advanced first)."""
    true, false, unknown = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
    if _is(conditions, ConditionType.VERIFIED, true):
        return TicketPhase.RESOLVED
    if _is(conditions, ConditionType.VERIFIED, unknown, Reason.REVISION_VERIFYING):
        return TicketPhase.VERIFYING
    if _is(conditions, ConditionType.FIX_MERGED, true):
        return TicketPhase.FIX_MERGED
    if _is(conditions, ConditionType.FIX_PROPOSED, true):
        return TicketPhase.FIX_PROPOSED
    if _is(conditions, ConditionType.VERIFIED, false, Reason.REVISION_REGRESSED):
        return TicketPhase.REGRESSED
    if _is(conditions, ConditionType.ISSUE_OPENED, false, Reason.ISSUE_CLOSED):
        return TicketPhase.CLOSED
    if _is(conditions, ConditionType.ISSUE_OPENED, false, *REFUSED_REASONS):
        return TicketPhase.FAILED
    if _is(conditions, ConditionType.ISSUE_OPENED, true):
        return TicketPhase.ISSUE_OPENED
    return TicketPhase.OPEN


# --- the issue --------------------------------------------------------------------------------------


def issue_context(
    ticket: RemediationTicket, redact: Callable[[str], str], *, repository: str = "", base_branch: str = "main"
) -> IssueContext:
    """What the issue says, from the ticket; every free text passes through ``redact`` once more."""
    spec, status = ticket.spec, ticket.status
    ev = spec.evidence
    return IssueContext(
        namespace=ticket.metadata.namespace,
        rollout=spec.rollout,
        revision=spec.revision,
        pod_template_hash=spec.pod_template_hash,
        images=[redact(image) for image in spec.images],
        step=spec.step,
        verdict=spec.verdict.verdict.value,
        confidence=spec.verdict.confidence,
        analyzer=spec.verdict.analyzer.value,
        summary=redact(spec.verdict.summary),
        root_cause=redact(spec.verdict.root_cause),
        suggested_fix=redact(spec.verdict.suggested_fix),
        templates=[
            IssueTemplate(
                id=t.id,
                template=redact(t.template),
                severity=t.severity.value,
                status=t.status.value,
                canary_count=t.canary_count,
                stable_count=t.stable_count,
                examples=[redact(x) for x in t.examples],
            )
            for t in ev.templates
        ],
        failed_metrics=[
            IssueMetric(
                analysis_run=m.analysis_run,
                name=m.name,
                phase=m.phase,
                message=redact(m.message),
                values=[redact(v) for v in m.values],
            )
            for m in ev.failed_metrics
        ],
        pod_states=[
            IssuePodState(name=p.name, side=p.side.value, restarts=p.restarts, reasons=list(p.reasons)) for p in ev.pods
        ],
        fingerprint=spec.fingerprint,
        signature=spec.signature,
        failure=[redact(line) for line in spec.failure],
        ticket=f"{ticket.metadata.namespace}/{ticket.metadata.name}",
        occurrences=status.occurrences,
        first_seen=status.first_seen,
        last_seen=status.last_seen,
        repository=repository,
        base_branch=base_branch,
    )


def reusable_issue(state: str, closed_at: datetime | None, dedup_window_hours: int, now: datetime) -> bool:
    """Whether an existing issue with the fingerprint is this failure's issue: open, or closed within the window."""
    if state == "open":
        return True
    return closed_at is not None and now - closed_at <= timedelta(hours=dedup_window_hours)


def occurrence_marker(ticket: str, occurrences: int) -> str:
    """Hidden marker of an occurrence comment: which ticket reported which count."""
    return f"<!-- selfheal:occurrence ticket={ticket} n={occurrences} -->"


@dataclass(frozen=True)
class PostedComment:
    body: str
    created_at: datetime | None


def occurrence_comment_plan(
    ticket: str,
    occurrences: int,
    commented: int,
    last_comment_at: datetime | None,
    comments: Iterable[PostedComment],
    interval_minutes: int,
    now: datetime,
) -> tuple[bool, int]:
    """``(post, commented)``: whether to post an occurrence comment now, and the count already reported.

    Occurrence comments on one issue (from any ticket) are at least ``interval_minutes`` apart; a count
    this ticket already posted (a crash between comment and status write) is recorded, not posted again.
    """
    latest = last_comment_at
    for comment in comments:
        match = _OCCURRENCE_MARKER.search(comment.body or "")
        if match is None:
            continue
        if match.group(1) == ticket:
            commented = max(commented, int(match.group(2)))
        if comment.created_at is not None and (latest is None or comment.created_at > latest):
            latest = comment.created_at
    if occurrences <= commented:
        return False, commented
    if latest is not None and now - latest < timedelta(minutes=interval_minutes):
        return False, commented
    return True, commented


# --- pull requests ----------------------------------------------------------------------------------


def pull_state(state: str, draft: bool, merged: bool) -> PullRequestState:
    if merged:
        return PullRequestState.MERGED
    if state == "closed":
        return PullRequestState.CLOSED
    return PullRequestState.DRAFT if draft else PullRequestState.OPEN


def regression_cutoff(verification: VerificationStatus | None) -> datetime | None:
    """After a regression, only fixes merged later count."""
    if verification is not None and verification.state == VerificationState.FAILED:
        return verification.verified_at
    return None


def merged_fix(pulls: Sequence[PullRequestStatus], cutoff: datetime | None) -> PullRequestStatus | None:
    """The latest merged pull request that counts (merged after ``cutoff``)."""
    merged = [
        p
        for p in pulls
        if p.state == PullRequestState.MERGED and p.merged_at is not None and (cutoff is None or p.merged_at > cutoff)
    ]
    return max(merged, key=lambda p: p.merged_at) if merged else None  # type: ignore[arg-type,return-value]


def open_fix(pulls: Sequence[PullRequestStatus]) -> PullRequestStatus | None:
    proposed = [p for p in pulls if p.state in (PullRequestState.OPEN, PullRequestState.DRAFT)]
    return max(proposed, key=lambda p: p.number) if proposed else None


def tracked_pull(pulls: Sequence[PullRequestStatus], cutoff: datetime | None) -> int | None:
    """The pull request shown in the printer column: the counting merged one, else the newest open one."""
    chosen = merged_fix(pulls, cutoff) or open_fix(pulls)
    if chosen is None and pulls:
        chosen = max(pulls, key=lambda p: p.number)
    return chosen.number if chosen else None


def fix_conditions(
    conditions: Sequence[Condition], pulls: Sequence[PullRequestStatus], cutoff: datetime | None, now: datetime
) -> list[Condition]:
    """FixProposed and FixMerged from the pull requests; untouched while there is none (the agent's turn)."""
    conds = list(conditions)
    merged = merged_fix(pulls, cutoff)
    proposed = open_fix(pulls)
    if merged is not None:
        conds = set_condition(
            conds,
            ConditionType.FIX_PROPOSED,
            True,
            Reason.PULL_REQUEST_OPENED,
            f"pull request #{merged.number} by {merged.author or 'unknown'}",
            now,
        )
        sha = f" as {merged.merge_sha[:12]}" if merged.merge_sha else ""
        return set_condition(
            conds,
            ConditionType.FIX_MERGED,
            True,
            Reason.PULL_REQUEST_MERGED,
            f"pull request #{merged.number} merged{sha}",
            now,
        )
    if proposed is not None:
        kind = "draft pull request" if proposed.state == PullRequestState.DRAFT else "pull request"
        conds = set_condition(
            conds,
            ConditionType.FIX_PROPOSED,
            True,
            Reason.PULL_REQUEST_OPENED,
            f"{kind} #{proposed.number} by {proposed.author or 'unknown'}",
            now,
        )
        if get_condition(conds, ConditionType.FIX_MERGED) is None or cutoff is None:
            conds = set_condition(
                conds,
                ConditionType.FIX_MERGED,
                False,
                Reason.PULL_REQUEST_OPENED,
                f"pull request #{proposed.number} not merged yet",
                now,
            )
        return conds
    closed = [p for p in pulls if p.state == PullRequestState.CLOSED]
    if closed and _is(conds, ConditionType.FIX_PROPOSED, ConditionStatus.TRUE):
        last = max(closed, key=lambda p: p.number)
        conds = set_condition(
            conds,
            ConditionType.FIX_PROPOSED,
            False,
            Reason.PULL_REQUEST_CLOSED,
            f"pull request #{last.number} was closed without merging",
            now,
        )
    return conds


def is_stalled(conditions: Sequence[Condition], patience_hours: int, now: datetime) -> bool:
    """No fix proposed for ``patience_hours`` since the agent was (last) asked."""
    cond = get_condition(conditions, ConditionType.FIX_PROPOSED)
    if cond is None:
        return False
    if cond.status == ConditionStatus.TRUE or cond.reason == Reason.AGENT_STALLED:
        return False
    return now - cond.last_transition_time >= timedelta(hours=patience_hours)


# --- verification -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevisionView:
    """One ReplicaSet ``<rollout>-<hash>`` of the Rollout, as far as verification cares."""

    pod_hash: str
    revision: str = ""
    created: datetime | None = None
    images: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RolloutView:
    current_hash: str = ""
    stable_hash: str = ""
    phase: str = ""
    aborted: bool = False


def carries_sha(sha: str, images: Iterable[str], annotations: Mapping[str, str]) -> bool:
    """The merge commit (full, or a prefix of 7+ hex digits) appears in an image tag or an annotation value."""
    sha = sha.lower()
    if len(sha) < MIN_SHA_PREFIX:
        return False
    texts = [image.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2] for image in images]
    texts += list(annotations.values())
    for text in texts:
        for run in _HEX_RUN.findall(text or ""):
            if sha.startswith(run.lower()):
                return True
    return False


def accepts_revision(rev: RevisionView, failing_hash: str, since: datetime, merge_sha: str, require_sha: bool) -> bool:
    """Whether ``rev`` should contain the fix: a new hash, created after ``since``, with the SHA if required."""
    if not rev.pod_hash or rev.pod_hash == failing_hash or rev.created is None or rev.created <= since:
        return False
    return not require_sha or carries_sha(merge_sha, rev.images, rev.annotations)


def advance_verification(
    current: VerificationStatus | None, candidate: RevisionView | None, ro: RolloutView, now: datetime
) -> VerificationStatus:
    """Pending until an accepted revision shows up; Verifying while it rolls out; Passed once stable and healthy.

    A Failed verification (a regression) stays Failed until a new accepted revision shows up."""
    if current is None or current.state != VerificationState.VERIFYING:
        if (
            current is not None
            and current.state in (VerificationState.PASSED, VerificationState.FAILED)
            and candidate is None
        ):
            return current
        if candidate is None:
            return VerificationStatus(state=VerificationState.PENDING, message="waiting for the next revision")
        current = VerificationStatus(
            revision=candidate.revision,
            pod_template_hash=candidate.pod_hash,
            state=VerificationState.VERIFYING,
            started_at=now,
            message=f"revision {candidate.revision or '?'} is rolling out",
        )
    if (
        current.state == VerificationState.VERIFYING
        and ro.stable_hash == current.pod_template_hash
        and ro.phase == "Healthy"
    ):
        return current.model_copy(
            update={
                "state": VerificationState.PASSED,
                "verified_at": now,
                "message": f"revision {current.revision or '?'} is stable and healthy",
            }
        )
    return current


def verified_condition(
    conditions: Sequence[Condition], verification: VerificationStatus, now: datetime
) -> list[Condition]:
    what = f"revision {verification.revision or '?'} ({verification.pod_template_hash or '?'})"
    if verification.state == VerificationState.PASSED:
        return set_condition(
            conditions, ConditionType.VERIFIED, True, Reason.REVISION_VERIFIED, f"{what} is stable and healthy", now
        )
    if verification.state == VerificationState.VERIFYING:
        return set_condition(
            conditions,
            ConditionType.VERIFIED,
            ConditionStatus.UNKNOWN,
            Reason.REVISION_VERIFYING,
            f"{what} is rolling out",
            now,
        )
    if verification.state == VerificationState.FAILED:
        return set_condition(
            conditions,
            ConditionType.VERIFIED,
            False,
            Reason.REVISION_REGRESSED,
            f"{what} failed again with the same fingerprint",
            now,
        )
    return set_condition(
        conditions,
        ConditionType.VERIFIED,
        ConditionStatus.UNKNOWN,
        Reason.AWAITING_ROLLOUT,
        "waiting for the first revision rolled out after the fix",
        now,
    )


def regressed_conditions(
    conditions: Sequence[Condition], revision: str, pod_hash: str, now: datetime
) -> list[Condition]:
    """The fix did not hold: not merged any more (a new fix is needed), the agent asked again."""
    what = f"revision {revision or '?'} ({pod_hash})"
    conds = set_condition(
        conditions,
        ConditionType.VERIFIED,
        False,
        Reason.REVISION_REGRESSED,
        f"{what} failed again with the same fingerprint",
        now,
    )
    conds = set_condition(
        conds,
        ConditionType.FIX_MERGED,
        False,
        Reason.FIX_REGRESSED,
        f"the merged fix did not hold: {what} regressed",
        now,
    )
    return set_condition(
        conds,
        ConditionType.FIX_PROPOSED,
        False,
        Reason.AGENT_ASKED_AGAIN,
        "waiting for a new fix after the regression",
        now,
    )


def is_regression(
    phase: TicketPhase | None,
    ticket_signature: str,
    failing_hash: str,
    verification: VerificationStatus | None,
    pod_hash: str,
    signature: str,
    rs_created: datetime | None,
    since: datetime | None,
) -> bool:
    """Whether a failure of ``pod_hash`` named ``signature`` is this ticket's fix failing the same way."""
    if phase not in VERIFYING_PHASES or signature != ticket_signature or pod_hash == failing_hash:
        return False
    if verification is not None and verification.state == VerificationState.VERIFYING:
        return verification.pod_template_hash == pod_hash
    return since is not None and rs_created is not None and rs_created > since
