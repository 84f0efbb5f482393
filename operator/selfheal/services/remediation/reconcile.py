"""One reconcile pass over a RemediationTicket: the GitHub settings its policy names, the steps in order, and
what GitHub refused, named on the ticket."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime

from selfheal.adapters.github import BadCredentials, Forbidden, GitHubError, NotFound, ValidationFailed
from selfheal.domain.policy import GitHubSpec
from selfheal.domain.ticket import ConditionStatus, ConditionType, Reason, TicketPhase, set_condition
from selfheal.errors import ConfigError, RateLimitedError, TransientError
from selfheal.services.github import github_client
from selfheal.services.locks import ticket_key
from selfheal.services.policies import PolicyRef
from selfheal.services.ports import GitHubPort
from selfheal.services.remediation import follow
from selfheal.services.remediation.issue import hand_over, keep_listed, open_issue
from selfheal.services.remediation.status import ChangedMeanwhile, TicketPass
from selfheal.services.remediation.verification import verify
from selfheal.services.runtime import Runtime

log = logging.getLogger(__name__)


async def reconcile_ticket(
    runtime: Runtime, namespace: str, name: str, policy: PolicyRef | None, now: datetime | None = None
) -> float | None:
    """One pass over a ticket. Returns a delay when GitHub refused for good (try again that much later).

    Raises TransientError (RateLimitedError included) with the delay GitHub or the apiserver asked for.
    Holds the ticket's one lock, which the pipeline holds too when it counts an occurrence.
    """
    async with runtime.lock(ticket_key(namespace, name)):
        now = now or runtime.clock()
        obj = await runtime.kube.get_ticket(namespace, name)
        if obj is None:
            return None
        t = TicketPass(runtime, namespace, obj)
        issue = t.status.issue
        verification = t.status.verification
        if t.status.phase == TicketPhase.RESOLVED and (
            issue is None or not issue.number or (verification is not None and verification.reported)
        ):
            return None
        gh = _github_spec(t, policy, now)
        failure: Exception | None = None
        client: GitHubPort | None = None
        if gh is not None:
            try:
                client = await github_client(runtime, namespace, gh)
            except ConfigError as e:
                failure = _refused(t, e, now)
        if gh is not None and client is not None:
            failure = await _guarded(t, _sync_github(t, client, gh, policy, now), now)
        if policy is not None:
            await verify(t, gh, now)
        if gh is not None and client is not None and failure is None:
            failure = await _guarded(t, follow.report(t, client, gh, now), now)
        await t.commit(now)
        if isinstance(failure, TransientError):
            raise failure
        return runtime.config.github_refused_retry_seconds if failure is not None else None


async def _sync_github(
    t: TicketPass, client: GitHubPort, gh: GitHubSpec, policy: PolicyRef | None, now: datetime
) -> None:
    if not t.issue.number:
        await open_issue(t, client, gh, policy, now)
    if not t.issue.agent:
        await hand_over(t, client, gh, now)
        await t.commit(now)
    await follow.follow_regression(t, client, gh, policy, now)
    await follow.comment_occurrences(t, client, gh, policy, now)
    await follow.track_pulls(t, client, now)
    current = await follow.follow_issue_state(t, client, now)
    await follow.escalate_if_stalled(t, client, gh, now)
    await keep_listed(t, client, gh, current)
    t.issue.reason = ""


def _github_spec(t: TicketPass, policy: PolicyRef | None, now: datetime) -> GitHubSpec | None:
    """The GitHub settings to act on, or None; says on the ticket why there is none."""
    if policy is None:
        if not t.issue.number:
            t.status.conditions = set_condition(
                t.status.conditions,
                ConditionType.ISSUE_OPENED,
                ConditionStatus.UNKNOWN,
                Reason.POLICY_NOT_FOUND,
                f"policy {t.ticket.spec.policy} not found in namespace {t.namespace}",
                now,
            )
        return None
    gh = policy.spec.remediation.github
    if gh is None or policy.spec.decision.dry_run:
        why = "dry run: nothing is sent to GitHub" if gh is not None else "no GitHub repository configured"
        t.issue.disabled = True
        t.issue.reason = Reason.GITHUB_DISABLED.value
        if not t.issue.number:
            t.status.conditions = set_condition(
                t.status.conditions,
                ConditionType.ISSUE_OPENED,
                False,
                Reason.GITHUB_DISABLED,
                f"policy {policy.name}: {why}",
                now,
            )
        return None
    if t.issue.disabled:
        t.issue.disabled = False
        t.issue.reason = ""
    return gh


def _classify(error: Exception) -> tuple[Reason, str]:
    if isinstance(error, RateLimitedError):
        return Reason.RATE_LIMITED, f"GitHub rate limit; retrying in {error.delay:.0f}s: {error}"
    if isinstance(error, TransientError):
        return Reason.GITHUB_UNAVAILABLE, f"GitHub unavailable; retrying in {error.delay:.0f}s: {error}"
    if isinstance(error, BadCredentials | Forbidden):
        return Reason.BAD_CREDENTIALS, f"GitHub refused the token: {error}"
    if isinstance(error, NotFound):
        return Reason.REPOSITORY_NOT_FOUND, f"repository not found or not visible to the token: {error}"
    if isinstance(error, ValidationFailed):
        return Reason.INVALID_LABEL, f"GitHub refused the issue: {error}"
    if isinstance(error, ConfigError):
        missing = "not found" in str(error).lower()
        return (Reason.SECRET_NOT_FOUND if missing else Reason.SECRET_KEY_MISSING), str(error)
    return Reason.GITHUB_UNAVAILABLE, f"GitHub refused: {error}"


def _refused(t: TicketPass, error: Exception, now: datetime) -> Exception:
    reason, message = _classify(error)
    log.warning("ticket %s/%s: %s", t.namespace, t.name, message)
    if not isinstance(error, ConfigError):  # a missing Secret is no GitHub request
        t.runtime.metrics.github_requests_failed.inc(reason=reason.value)
    if not t.issue.number:
        t.status.conditions = set_condition(
            t.status.conditions, ConditionType.ISSUE_OPENED, False, reason, message, now
        )
    t.issue.reason = reason.value
    return error


async def _guarded(t: TicketPass, work: Awaitable[None], now: datetime) -> Exception | None:
    try:
        await work
    except ChangedMeanwhile:
        raise  # not GitHub's doing: nothing to name on the ticket
    except (TransientError, GitHubError, ConfigError) as e:
        return _refused(t, e, now)
    return None
