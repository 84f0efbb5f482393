"""Follow a RemediationTicket: GitHub issue, coding agent, fix pull requests, verification on the next rollout."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from selfheal.adapters.github import (
    BadCredentials,
    Forbidden,
    GitHubError,
    NotFound,
    ValidationFailed,
)
from selfheal.domain import lifecycle
from selfheal.domain.argo import ARGO_GROUP, ARGO_VERSION, REVISION_ANNOTATION, effective_phase
from selfheal.domain.issue import (
    IssueContext,
    render_issue,
    render_occurrence_comment,
    render_regressed_comment,
    render_stalled_comment,
    render_verified_comment,
)
from selfheal.domain.policy import AgentType, GitHubSpec
from selfheal.domain.redaction import Redactor
from selfheal.domain.ticket import (
    ConditionStatus,
    ConditionType,
    IssueState,
    IssueStatus,
    PullRequestStatus,
    Reason,
    RemediationTicket,
    TicketPhase,
    VerificationState,
    VerificationStatus,
    get_condition,
    is_condition_true,
    set_condition,
    to_wire,
)
from selfheal.domain.timestamps import parse_time
from selfheal.errors import ConfigError, RateLimitedError, SelfHealError, TransientError
from selfheal.services.github import github_client
from selfheal.services.policies import PolicyRef
from selfheal.services.ports import GitHubPort
from selfheal.services.runtime import Runtime

log = logging.getLogger(__name__)

# Test-only fault-injection hook: when set to "issue-created", the process exits right after GitHub
# answered the issue creation and before the issue number is written to the ticket.
FAULT_INJECTION_ENV = "SELFHEAL_TEST_CRASH_AFTER"
# How long to wait before trying again after GitHub refused for good (401, 404, 422, missing Secret):
# slowly, so that a fixed token or label heals the ticket without hammering GitHub meanwhile.
REFUSED_RETRY_ENV = "SELFHEAL_GITHUB_REFUSED_RETRY_SECONDS"

ROLLOUT_API_VERSION = f"{ARGO_GROUP}/{ARGO_VERSION}"
JULES_LABEL = "jules"
# Status fields this service writes; occurrences, firstSeen, lastSeen and lastAction belong to the pipeline.
_OWNED = {"observed_generation", "phase", "conditions", "issue", "pull_request", "pull_requests", "verification"}
_WARNING_PHASES = {TicketPhase.REGRESSED, TicketPhase.FAILED}


def _fault_point(name: str) -> None:
    if os.environ.get(FAULT_INJECTION_ENV) == name:
        log.error("fault injection: exiting after %s", name)
        os._exit(1)


def _merge_patch(value: Any) -> Any:
    """A status section as a JSON merge patch: absent and empty values become null (removed); lists are
    replaced whole and carry no null or empty values."""
    if isinstance(value, dict):
        return {k: None if v is None or v == "" else _merge_patch(v) for k, v in value.items()}
    if isinstance(value, list):
        return to_wire(value)
    return value


def _owned(status: Any, extra: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    return _merge_patch(status.model_dump(mode="json", by_alias=True, include=_OWNED | set(extra)))


def _lock_key(namespace: str, name: str) -> str:
    return f"ticket:{namespace}/{name}"


class _Ticket:
    """One ticket being reconciled: the object read, the status being built, and what was last written."""

    def __init__(self, runtime: Runtime, namespace: str, obj: dict[str, Any]) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.namespace = namespace
        self.obj = obj
        self.ticket = RemediationTicket.model_validate(obj)
        self.name = self.ticket.metadata.name
        self.created = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
        self.status = self.ticket.status.model_copy(deep=True)
        self.written = _owned(self.ticket.status)
        self.written_phase = self.ticket.status.phase

    @property
    def issue(self) -> IssueStatus:
        if self.status.issue is None:
            self.status.issue = IssueStatus()
        return self.status.issue

    def with_status(self) -> RemediationTicket:
        return self.ticket.model_copy(update={"status": self.status})

    def rollout_ref(self) -> dict[str, Any]:
        owner = next((o for o in self.ticket.metadata.owner_references if o.kind == "Rollout"), None)
        return {
            "apiVersion": ROLLOUT_API_VERSION,
            "kind": "Rollout",
            "metadata": {
                "name": self.ticket.spec.rollout,
                "namespace": self.namespace,
                "uid": owner.uid if owner else "",
            },
        }

    async def event(self, reason: str, message: str, now: datetime, type: str = "Normal") -> None:
        """An Event on the ticket's Rollout (where users look), naming the ticket."""
        ref = self.rollout_ref()
        try:
            if not ref["metadata"]["uid"]:
                rollout = await self.kube.get_rollout(self.namespace, self.ticket.spec.rollout)
                if rollout is None:
                    return
                ref["metadata"]["uid"] = rollout.uid
            await self.kube.create_event(
                ref, reason=reason, message=f"{self.name}: {message}"[:1024], type=type, now=now
            )
        except SelfHealError as e:  # an Event explains; losing one must not stop the work
            log.warning("could not post Event %s about ticket %s/%s: %s", reason, self.namespace, self.name, e)

    async def commit(self, now: datetime, extra: set[str] | frozenset[str] = frozenset()) -> None:
        """Writes the owned status fields when they changed; an Event on the Rollout when the phase changed."""
        self.status.phase = lifecycle.derive_phase(self.status.conditions)
        self.status.observed_generation = self.ticket.metadata.generation or None
        body = _owned(self.status, extra)
        if body != self.written or extra:
            await self.kube.patch_ticket_status(self.namespace, self.name, {"status": body})
            self.written = _owned(self.status)
        phase = self.status.phase
        if phase != self.written_phase:
            previous, self.written_phase = self.written_phase, phase
            if previous is not None or phase != TicketPhase.OPEN:
                self.runtime.metrics.ticket_phase_changes.inc(namespace=self.namespace, phase=phase.value)
                await self.event(
                    f"Ticket{phase.value}",
                    self._describe(phase),
                    now,
                    "Warning" if phase in _WARNING_PHASES else "Normal",
                )

    def _describe(self, phase: TicketPhase) -> str:
        issue = self.status.issue
        parts = [f"phase {phase.value}"]
        if issue is not None and issue.number:
            parts.append(f"issue #{issue.number}")
        if self.status.pull_request:
            parts.append(f"pull request #{self.status.pull_request}")
        if self.status.verification is not None and self.status.verification.pod_template_hash:
            parts.append(
                f"revision {self.status.verification.revision or '?'} ({self.status.verification.pod_template_hash})"
            )
        return ", ".join(parts)


# --- entry points -------------------------------------------------------------------------------


async def reconcile_ticket(
    runtime: Runtime, namespace: str, name: str, policy: PolicyRef | None, now: datetime | None = None
) -> float | None:
    """One pass over a ticket. Returns a delay when GitHub refused for good (try again that much later).

    Raises TransientError (RateLimitedError included) with the delay GitHub or the apiserver asked for.
    """
    async with runtime.lock(_lock_key(namespace, name)):
        now = now or runtime.clock()
        obj = await runtime.kube.get_ticket(namespace, name)
        if obj is None:
            return None
        t = _Ticket(runtime, namespace, obj)
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
                failure = _record_failure(t, e, now)
        if gh is not None and client is not None:
            failure = await _guarded(t, _sync_github(t, client, gh, policy, now), now)
        if policy is not None:
            await _verify(t, gh, now)
        if gh is not None and client is not None and failure is None:
            failure = await _guarded(t, _report(t, client, gh, policy, now), now)
        await t.commit(now)
        if isinstance(failure, TransientError):
            raise failure
        return runtime.config.github_refused_retry_seconds if failure is not None else None


async def record_failure(
    runtime: Runtime, namespace: str, rollout: str, pod_hash: str, revision: str, fingerprint: str, now: datetime
) -> str | None:
    """For the pipeline: a failure of ``pod_hash`` that is a ticket's merged fix failing the same way.

    When a ticket of ``rollout`` waits for or verifies this revision and has the same fingerprint, the
    ticket becomes Regressed, its occurrences grow, and its name is returned (no new ticket is needed).
    The same regression reported again returns the name without counting it twice. Otherwise None.
    """
    rs_created: datetime | None = None
    rs_read = False
    for obj in sorted(
        await runtime.kube.list_tickets(namespace, rollout), key=lambda o: (o.get("metadata") or {}).get("name", "")
    ):
        name = (obj.get("metadata") or {}).get("name", "")
        async with runtime.lock(_lock_key(namespace, name)):
            fresh = await runtime.kube.get_ticket(namespace, name)
            if fresh is None:
                continue
            t = _Ticket(runtime, namespace, fresh)
            st = t.status
            v = st.verification
            if (
                v is not None
                and v.state == VerificationState.FAILED
                and v.pod_template_hash == pod_hash
                and t.ticket.spec.fingerprint == fingerprint
            ):
                return name  # this regression is already recorded on the ticket
            phase = st.phase or lifecycle.derive_phase(st.conditions)
            since = _verification_since(t, github=bool(st.issue and st.issue.number))
            if not rs_read and (st.verification is None or st.verification.state != VerificationState.VERIFYING):
                rs = await runtime.kube.get_replicaset(namespace, f"{rollout}-{pod_hash}")
                rs_created = parse_time(((rs or {}).get("metadata") or {}).get("creationTimestamp"))
                rs_read = True
            if not lifecycle.is_regression(
                phase,
                t.ticket.spec.fingerprint,
                t.ticket.spec.pod_template_hash,
                st.verification,
                pod_hash,
                fingerprint,
                rs_created,
                since,
            ):
                continue
            previous = st.verification
            st.verification = VerificationStatus(
                revision=revision,
                pod_template_hash=pod_hash,
                state=VerificationState.FAILED,
                started_at=previous.started_at if previous and previous.pod_template_hash == pod_hash else now,
                verified_at=now,
                message=f"revision {revision or '?'} failed again with the same fingerprint",
            )
            st.conditions = lifecycle.regressed_conditions(st.conditions, revision, pod_hash, now)
            st.occurrences += 1
            st.last_seen = now
            await t.commit(now, extra={"occurrences", "last_seen"})
            return name
    return None


# --- GitHub ---------------------------------------------------------------------------------------


def _github_spec(t: _Ticket, policy: PolicyRef | None, now: datetime) -> GitHubSpec | None:
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


def _record_failure(t: _Ticket, error: Exception, now: datetime) -> Exception:
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


async def _guarded(t: _Ticket, work: Awaitable[None], now: datetime) -> Exception | None:
    try:
        await work
    except (TransientError, GitHubError, ConfigError) as e:
        return _record_failure(t, e, now)
    return None


async def _context(t: _Ticket, gh: GitHubSpec, policy: PolicyRef | None) -> IssueContext:
    """What an issue or comment says, redacted once more: CPU work, so off the event loop."""
    redaction = policy.spec.analysis.redaction if policy is not None else None
    redactor = Redactor(
        [(p.name, p.regex) for p in redaction.patterns] if redaction else [],
        builtins=redaction.builtins if redaction else True,
    )
    return await asyncio.to_thread(
        lifecycle.issue_context,
        t.with_status(),
        redactor.redact,
        repository=gh.repository,
        base_branch=gh.agent.base_branch,
    )


async def _sync_github(t: _Ticket, client: GitHubPort, gh: GitHubSpec, policy: PolicyRef | None, now: datetime) -> None:
    if not t.issue.number:
        await _open_issue(t, client, gh, policy, now)
    if not t.issue.agent:
        await _hand_over(t, client, gh, now)
        await t.commit(now)
    await _follow_regression(t, client, gh, policy, now)
    await _comment_occurrences(t, client, gh, policy, now)
    await _track_pulls(t, client, now)
    await _follow_issue_state(t, client, now)
    await _escalate_if_stalled(t, client, gh, now)
    t.issue.reason = ""


async def _open_issue(t: _Ticket, client: GitHubPort, gh: GitHubSpec, policy: PolicyRef | None, now: datetime) -> None:
    """Adopt the issue carrying this fingerprint's marker, or create it; record its number at once."""
    fingerprint = t.ticket.spec.fingerprint
    found = await client.find_issue_by_fingerprint(fingerprint, labels=list(gh.labels))
    mine = lifecycle.ticket_marker(t.name)
    if found is not None and mine in (found.body or ""):
        # created by this ticket before a crash kept the number from being recorded
        reason, verb, commented = Reason.ISSUE_CREATED, "created", max(t.status.occurrences, 1)
    elif found is not None and lifecycle.reusable_issue(found.state, found.closed_at, gh.dedup_window_hours, now):
        if found.state != "open":
            found = await client.update_issue(found.number, state="open")
        reason, verb, commented = Reason.ISSUE_FOUND, "found", 0
    else:
        rendered = render_issue(await _context(t, gh, policy))
        found = await client.create_issue(rendered.title, f"{rendered.body}\n{mine}", labels=list(gh.labels))
        _fault_point("issue-created")
        reason, verb, commented = Reason.ISSUE_CREATED, "created", max(t.status.occurrences, 1)
    t.status.issue = IssueStatus(
        number=found.number, url=found.html_url, state=IssueState.OPEN, commented_occurrences=commented
    )
    t.status.conditions = set_condition(
        t.status.conditions,
        ConditionType.ISSUE_OPENED,
        True,
        reason,
        f"issue #{found.number} {verb} in {gh.repository}",
        now,
    )
    await t.commit(now)


async def _hand_over(t: _Ticket, client: GitHubPort, gh: GitHubSpec, now: datetime, *, again: bool = False) -> None:
    """Give the issue to the one coding agent the policy names, and check that the hand-over took."""
    agent, number = gh.agent, t.issue.number
    assert number is not None
    who = agent.type.value
    started = False
    if agent.type == AgentType.COPILOT:
        who = "Copilot coding agent"
        started = await client.assign_copilot(
            number,
            base_branch=agent.base_branch,
            custom_instructions=agent.custom_instructions or None,
            target_repo=gh.repository,
        )
    elif agent.type in (AgentType.JULES, AgentType.LABEL):
        label = JULES_LABEL if agent.type == AgentType.JULES else agent.label
        who = f"label {label}"
        if again:
            current, _ = await client.get_issue(number)
            if current is not None and label.lower() in (n.lower() for n in current.label_names):
                await client.update_issue(number, labels=[n for n in current.label_names if n.lower() != label.lower()])
        labels = await client.add_labels(number, [label])
        started = label.lower() in (n.lower() for n in labels)
    elif agent.type == AgentType.ASSIGNEE:
        who = f"@{agent.assignee}"
        started = await client.assign(number, agent.assignee)
    t.issue.agent = agent.type.value
    t.issue.agent_assigned = started
    if is_condition_true(t.status.conditions, ConditionType.FIX_PROPOSED) and not again:
        return
    if agent.type == AgentType.NONE:
        t.status.conditions = set_condition(
            t.status.conditions,
            ConditionType.FIX_PROPOSED,
            False,
            Reason.NO_AGENT,
            "no coding agent configured; waiting for a pull request",
            now,
        )
    elif started:
        reason = Reason.AGENT_ASKED_AGAIN if again else Reason.AGENT_ASSIGNED
        t.status.conditions = set_condition(
            t.status.conditions,
            ConditionType.FIX_PROPOSED,
            False,
            reason,
            f"issue #{number} handed to {who}; waiting for a pull request",
            now,
        )
    else:
        message = (
            f"the coding agent did not start: {who} does not show on issue #{number} after the assignment "
            "(the token must be a user token and the agent enabled for the repository)"
        )
        t.status.conditions = set_condition(
            t.status.conditions, ConditionType.FIX_PROPOSED, False, Reason.AGENT_NOT_STARTED, message, now
        )
        await t.event(Reason.AGENT_NOT_STARTED.value, message, now, "Warning")


async def _comment_occurrences(
    t: _Ticket, client: GitHubPort, gh: GitHubSpec, policy: PolicyRef | None, now: datetime
) -> None:
    """The same failure seen again: one comment per new count, at most one per commentIntervalMinutes."""
    issue = t.issue
    assert issue.number is not None
    if t.status.occurrences <= issue.commented_occurrences:
        return
    posted = [lifecycle.PostedComment(c.body or "", c.created_at) for c in await client.comments(issue.number)]
    post, commented = lifecycle.occurrence_comment_plan(
        t.name,
        t.status.occurrences,
        issue.commented_occurrences,
        issue.last_comment_at,
        posted,
        gh.comment_interval_minutes,
        now,
    )
    issue.commented_occurrences = commented
    if post:
        body = render_occurrence_comment(await _context(t, gh, policy), now)
        await client.comment(issue.number, f"{body}\n\n{lifecycle.occurrence_marker(t.name, t.status.occurrences)}")
        issue.commented_occurrences = t.status.occurrences
        issue.last_comment_at = now
    await t.commit(now)


async def _track_pulls(t: _Ticket, client: GitHubPort, now: datetime) -> None:
    """Pull requests that close the issue: recorded, and FixProposed / FixMerged from them."""
    number = t.issue.number
    assert number is not None
    known = {p.number: p for p in t.status.pull_requests}
    for pull in await client.linked_pull_requests(number):
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


async def _follow_issue_state(t: _Ticket, client: GitHubPort, now: datetime) -> None:
    """The issue's state on GitHub; closed by a human without a merged fix means the ticket is Closed."""
    number = t.issue.number
    assert number is not None
    current, _ = await client.get_issue(number)
    if current is None:
        return
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


async def _escalate_if_stalled(t: _Ticket, client: GitHubPort, gh: GitHubSpec, now: datetime) -> None:
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
            await client.comment(number, render_stalled_comment(gh.escalation.mention, waited_hours=gh.patience_hours))
        t.issue.escalated = True
    await t.commit(now)
    await t.event(Reason.AGENT_STALLED.value, message, now, "Warning")


async def _follow_regression(
    t: _Ticket, client: GitHubPort, gh: GitHubSpec, policy: PolicyRef | None, now: datetime
) -> None:
    """After a regression: the issue reopened, told which revision failed, and the agent asked again (once)."""
    v = t.status.verification
    number = t.issue.number
    if v is None or v.state != VerificationState.FAILED or t.issue.reopened_for == v.pod_template_hash:
        return
    assert number is not None
    await client.update_issue(number, state="open")
    await client.comment(
        number, render_regressed_comment(await _context(t, gh, policy), v.revision, v.pod_template_hash, now)
    )
    await _hand_over(t, client, gh, now, again=True)
    t.issue.state = IssueState.OPEN
    t.issue.reopened_for = v.pod_template_hash
    t.issue.escalated = False
    # the regression comment reports this occurrence
    t.issue.commented_occurrences = max(t.issue.commented_occurrences, t.status.occurrences)
    await t.commit(now)


async def _report(t: _Ticket, client: GitHubPort, gh: GitHubSpec, policy: PolicyRef | None, now: datetime) -> None:
    """The verified revision named on the issue, which is then closed (verification.closeIssue)."""
    v = t.status.verification
    number = t.issue.number
    if v is None or v.state != VerificationState.PASSED or v.reported or not number:
        return
    text = render_verified_comment(await _context(t, gh, policy), v.revision, v.pod_template_hash)
    if not gh.verification.close_issue:
        text = text.replace(" Closing this issue.", "")
    await client.comment(number, text)
    v.reported = True  # recorded before closing: a failure to close must not post the comment again
    await t.commit(now)
    if gh.verification.close_issue:
        await client.update_issue(number, state="closed", state_reason="completed")
        t.issue.state = IssueState.CLOSED


# --- verification ---------------------------------------------------------------------------------


def _verification_since(t: _Ticket, *, github: bool) -> datetime | None:
    """From when a new revision counts as the fix: the merge of the counting fix (with GitHub), else the
    ticket's creation (or the last regression)."""
    cutoff = lifecycle.regression_cutoff(t.status.verification)
    if github:
        fix = lifecycle.merged_fix(t.status.pull_requests, cutoff)
        return fix.merged_at if fix else None
    return cutoff or t.created or t.status.first_seen


async def _verify(t: _Ticket, gh: GitHubSpec | None, now: datetime) -> None:
    """Find the first revision rolled out after the fix and follow it until it is stable and healthy."""
    st = t.status
    current = st.verification
    if current is not None and current.state == VerificationState.PASSED:
        return
    github = gh is not None
    since = _verification_since(t, github=github)
    if since is None:
        return
    sha = ""
    if github:
        fix = lifecycle.merged_fix(st.pull_requests, lifecycle.regression_cutoff(current))
        sha = fix.merge_sha if fix else ""
    require_sha = bool(gh is not None and github and gh.verification.require_merge_sha)
    ro = await t.kube.get_rollout(t.namespace, t.ticket.spec.rollout)
    if ro is None:
        return
    view = lifecycle.RolloutView(
        current_hash=ro.status.current_pod_hash,
        stable_hash=ro.status.stable_rs,
        phase=effective_phase(ro)[0],
        aborted=ro.status.abort,
    )
    candidate = None
    if current is None or current.state != VerificationState.VERIFYING:
        for pod_hash in dict.fromkeys(h for h in (view.current_hash, view.stable_hash) if h):
            rs = await t.kube.get_replicaset(t.namespace, ro.replicaset_name(pod_hash))
            if rs is None:
                continue
            meta = rs.get("metadata") or {}
            template = (rs.get("spec") or {}).get("template") or {}
            rev = lifecycle.RevisionView(
                pod_hash=pod_hash,
                revision=(meta.get("annotations") or {}).get(REVISION_ANNOTATION, ""),
                created=parse_time(meta.get("creationTimestamp")),
                images=tuple(c.get("image", "") for c in ((template.get("spec") or {}).get("containers") or [])),
                annotations=dict((template.get("metadata") or {}).get("annotations") or {}),
            )
            if lifecycle.accepts_revision(rev, t.ticket.spec.pod_template_hash, since, sha, require_sha):
                candidate = rev
                break
    st.verification = lifecycle.advance_verification(current, candidate, view, now)
    st.conditions = lifecycle.verified_condition(st.conditions, st.verification, now)
