"""What happens on the issue once it exists: fix pull requests, the issue's state, occurrence, regression and
escalation comments, and the verified report that closes a shared issue when every Rollout it lists verified.

Every comment carries a hidden marker and is posted only if its marker is not on the issue yet: one posted
before a restart kept it from being recorded, or by another ticket of the same failure, is not posted twice.
"""

from __future__ import annotations

from datetime import datetime

from selfheal.adapters.github import Issue
from selfheal.domain import lifecycle, shared_issue
from selfheal.domain.issue import render_occurrence_comment, render_regressed_comment, render_stalled_comment
from selfheal.domain.issue import render_verified_comment as render_verified
from selfheal.domain.policy import GitHubSpec
from selfheal.domain.ticket import (
    ConditionType,
    IssueState,
    PullRequestStatus,
    Reason,
    VerificationState,
    get_condition,
    is_condition_true,
    set_condition,
)
from selfheal.domain.words import agent_stalled_event
from selfheal.services.policies import PolicyRef
from selfheal.services.ports import GitHubPort
from selfheal.services.remediation.issue import context, hand_over, keep_listed, lock, log_step
from selfheal.services.remediation.status import TicketPass


async def comment_once(client: GitHubPort, number: int, marker: str, body: str) -> bool:
    """Post ``body`` with its hidden ``marker`` unless a comment with that marker is on the issue already."""
    if shared_issue.posted((c.body for c in await client.comments(number)), marker):
        return False
    await client.comment(number, f"{body}\n\n{marker}")
    return True


async def comment_occurrences(
    t: TicketPass, client: GitHubPort, gh: GitHubSpec, policy: PolicyRef | None, now: datetime
) -> None:
    """The same failure seen again: one comment per new count, at most one per commentIntervalMinutes on
    the issue (whichever ticket reports)."""
    issue = t.issue
    assert issue.number is not None
    if t.status.occurrences <= issue.commented_occurrences:
        return
    posted = [lifecycle.PostedComment(c.body or "", c.created_at) for c in await client.comments(issue.number)]
    post, commented = lifecycle.occurrence_comment_plan(
        t.ref,
        t.status.occurrences,
        issue.commented_occurrences,
        issue.last_comment_at,
        posted,
        gh.comment_interval_minutes,
        now,
    )
    issue.commented_occurrences = commented
    if post:
        body = render_occurrence_comment(await context(t, gh, policy), now)
        await client.comment(issue.number, f"{body}\n\n{lifecycle.occurrence_marker(t.ref, t.status.occurrences)}")
        issue.commented_occurrences = t.status.occurrences
        issue.last_comment_at = now
    await t.commit(now)


async def track_pulls(t: TicketPass, client: GitHubPort, now: datetime) -> None:
    """Pull requests that close the issue: recorded, and FixProposed / FixMerged from them."""
    number = t.issue.number
    assert number is not None
    known = {p.number: p for p in t.status.pull_requests}
    for pull in await client.linked_pull_requests(number):
        before = known.get(pull.number)
        if before is None:
            log_step(
                t, "pull-request-seen", f"#{pull.number} for issue #{number}", issue=number, pull_request=pull.number
            )
        if pull.merged and (before is None or not before.merge_sha):
            log_step(
                t, "pull-request-merged", f"#{pull.number} for issue #{number}", issue=number, pull_request=pull.number
            )
        known[pull.number] = PullRequestStatus(
            number=pull.number,
            url=pull.html_url,
            author=pull.user.login if pull.user else "",
            state=lifecycle.pull_state(pull.state, pull.draft, pull.merged),
            head_sha=pull.head.sha,
            merge_sha=(pull.merge_commit_sha or "") if pull.merged else "",
            merged_at=pull.merged_at,
        )
    pulls = [known[n] for n in sorted(known)][-50:]
    cutoff = lifecycle.regression_cutoff(t.status.verification)
    t.status.pull_requests = pulls
    t.status.pull_request = lifecycle.tracked_pull(pulls, cutoff)
    t.status.conditions = lifecycle.fix_conditions(t.status.conditions, pulls, cutoff, now)


async def follow_issue_state(t: TicketPass, client: GitHubPort, now: datetime) -> Issue | None:
    """The issue's state on GitHub; closed by a human without a merged fix means the ticket is Closed.
    Returns the issue as read (a conditional request: free when nothing changed)."""
    number = t.issue.number
    assert number is not None
    current, _ = await client.get_issue(number)
    if current is None:
        return None
    t.issue.state = IssueState(current.state) if current.state in ("open", "closed") else None
    t.issue.url = current.html_url or t.issue.url
    fixed = is_condition_true(t.status.conditions, ConditionType.FIX_MERGED) or (
        t.status.verification is not None and t.status.verification.state == VerificationState.PASSED
    )
    opened = get_condition(t.status.conditions, ConditionType.ISSUE_OPENED)
    if current.state == "closed" and not fixed:
        t.status.conditions = set_condition(
            t.status.conditions,
            ConditionType.ISSUE_OPENED,
            False,
            Reason.ISSUE_CLOSED,
            f"issue #{number} was closed ({current.state_reason or 'no reason'}) without a merged fix",
            now,
        )
    elif opened is not None and opened.reason == Reason.ISSUE_CLOSED:
        how = "was reopened" if current.state == "open" else "was closed by the merged fix"
        t.status.conditions = set_condition(
            t.status.conditions, ConditionType.ISSUE_OPENED, True, Reason.ISSUE_FOUND, f"issue #{number} {how}", now
        )
    return current


async def escalate_if_stalled(t: TicketPass, client: GitHubPort, gh: GitHubSpec, now: datetime) -> None:
    """No pull request after the policy's patience: a human is called, once per issue (and regression)."""
    if not lifecycle.is_stalled(t.status.conditions, gh.patience_hours, now):
        return
    number = t.issue.number
    assert number is not None
    message = f"no pull request for issue #{number} after {gh.patience_hours} hour(s)"
    t.status.conditions = set_condition(
        t.status.conditions, ConditionType.FIX_PROPOSED, False, Reason.AGENT_STALLED, message, now
    )
    if not t.issue.escalated:
        if gh.escalation.label:
            await client.add_labels(number, [gh.escalation.label])
        if gh.escalation.mention:
            after = f" after {t.issue.reopened_for}" if t.issue.reopened_for else ""
            marker = shared_issue.comment_marker("stalled", f"issue-{number}{after}")
            await comment_once(
                client, number, marker, render_stalled_comment(gh.escalation.mention, waited_hours=gh.patience_hours)
            )
        t.issue.escalated = True
    await t.commit(now)
    await t.event(agent_stalled_event(number, gh.patience_hours), now)


async def follow_regression(
    t: TicketPass, client: GitHubPort, gh: GitHubSpec, policy: PolicyRef | None, now: datetime
) -> None:
    """After a regression: the issue reopened, told which revision failed, and the agent asked again.

    The comment is posted once (its marker); the agent is asked again at most once: the regression is
    recorded as followed before it is asked."""
    v = t.status.verification
    number = t.issue.number
    if v is None or v.state != VerificationState.FAILED or t.issue.reopened_for == v.pod_template_hash:
        return
    assert number is not None
    await client.update_issue(number, state="open")
    log_step(t, "issue-reopened", f"#{number}: revision {v.revision} failed the same way", issue=number)
    marker = shared_issue.comment_marker("regressed", f"{t.ref} {v.pod_template_hash}")
    text = render_regressed_comment(await context(t, gh, policy), v.revision, v.pod_template_hash, now)
    await comment_once(client, number, marker, text)
    t.issue.state = IssueState.OPEN
    t.issue.reopened_for = v.pod_template_hash
    t.issue.escalated = False
    # the regression comment reports this occurrence
    t.issue.commented_occurrences = max(t.issue.commented_occurrences, t.status.occurrences)
    await t.commit(now)
    await hand_over(t, client, gh, now, again=True)
    await t.commit(now)


async def report(t: TicketPass, client: GitHubPort, gh: GitHubSpec, now: datetime) -> None:
    """The verified revision goes on the issue's list; when every Rollout the issue lists verified its fix,
    one comment says so and the issue is closed (verification.closeIssue)."""
    v = t.status.verification
    number = t.issue.number
    if v is None or v.state != VerificationState.PASSED or v.reported or not number:
        return
    rows = await keep_listed(t, client, gh, None)
    if shared_issue.all_verified(rows):
        async with lock(t, gh):
            current, _ = await client.get_issue(number)
            key = f"issue-{number} " + ",".join(sorted(f"{r.rollout}@{r.verified_revision}" for r in rows))
            marker = shared_issue.comment_marker("verified", key)
            await comment_once(client, number, marker, render_verified(rows, closing=gh.verification.close_issue))
            if gh.verification.close_issue and current is not None and current.state == "open":
                await client.update_issue(number, state="closed", state_reason="completed")
                t.issue.state = IssueState.CLOSED
    v.reported = True
    await t.commit(now)
    log_step(t, "verified", f"revision {v.revision} ({v.pod_template_hash}) on issue #{number}", issue=number)
