"""The failure's GitHub issue: found by its signature or created once (under the failure's lock), shared by
every Rollout the failure affects (each listed with its ticket), and handed to the coding agent once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime

from selfheal.adapters.github import COPILOT_LOGINS, Issue
from selfheal.domain import lifecycle, shared_issue
from selfheal.domain.issue import IssueContext, affected_row, render_issue
from selfheal.domain.policy import AgentType, GitHubSpec
from selfheal.domain.redaction import Redactor
from selfheal.domain.shared_issue import Affected
from selfheal.domain.ticket import (
    ConditionType,
    IssueState,
    IssueStatus,
    Reason,
    is_condition_true,
    set_condition,
)
from selfheal.domain.words import agent_not_started_event, github_log
from selfheal.services.locks import issue_key
from selfheal.services.policies import PolicyRef
from selfheal.services.ports import GitHubPort
from selfheal.services.remediation.status import TicketPass

JULES_LABEL = "jules"

log = logging.getLogger(__name__)


async def context(t: TicketPass, gh: GitHubSpec, policy: PolicyRef | None) -> IssueContext:
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


def lock(t: TicketPass, gh: GitHubSpec) -> asyncio.Lock:
    """The failure's lock: whoever finds, creates or edits its issue holds it, so two tickets of one failure
    (two Rollouts, the same moment) make one issue and never lose each other's line."""
    return t.runtime.lock(issue_key(gh.api_url, gh.repository, t.signature))


async def open_issue(
    t: TicketPass, client: GitHubPort, gh: GitHubSpec, policy: PolicyRef | None, now: datetime
) -> None:
    """Join the failure's issue or create it; record its number at once.

    The issue is found by its signature marker in the repository's issue listing (immediate, unlike the
    search index): an issue this ticket created before a restart kept the number from being recorded, or
    the issue of the same failure in another Rollout or revision, open or closed within the dedup window.
    """
    async with lock(t, gh):
        found = await client.find_issue(t.signature, fingerprint=t.ticket.spec.fingerprint, labels=list(gh.labels))
        occurrences = max(t.status.occurrences, 1)
        if found is not None and shared_issue.created_by(found.body) == t.ref:
            reason, verb = Reason.ISSUE_CREATED, "created"
        elif found is not None and lifecycle.reusable_issue(found.state, found.closed_at, gh.dedup_window_hours, now):
            if found.state != "open":
                found = await client.update_issue(found.number, state="open")
            reason, verb = Reason.ISSUE_FOUND, "found"
        else:
            rendered = render_issue(await context(t, gh, policy))
            found = await client.create_issue(rendered.title, rendered.body, labels=list(gh.labels))
            reason, verb = Reason.ISSUE_CREATED, "created"
        # Joining an issue is a line in its list, not a comment: this ticket's first occurrence counts as told.
        t.status.issue = IssueStatus(
            number=found.number, url=found.html_url, state=IssueState.OPEN, commented_occurrences=occurrences
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
        log_step(t, f"issue-{verb}", f"issue #{found.number} in {gh.repository}", issue=found.number)
        await _list(t, client, found, await context(t, gh, policy))


def my_row(t: TicketPass, ctx: IssueContext | None = None, verified: str = "") -> Affected:
    """This ticket's line on the issue, with the phase it is in now."""
    phase = lifecycle.derive_phase(t.status.conditions).value
    if ctx is not None:
        row = affected_row(ctx, phase)
    else:
        spec = t.ticket.spec
        row = Affected(
            ticket=t.ref,
            rollout=f"{t.namespace}/{spec.rollout}",
            revision=spec.revision,
            pod_hash=spec.pod_template_hash,
            phase=phase,
        )
    return replace(row, verified_revision=verified) if verified else row


async def keep_listed(t: TicketPass, client: GitHubPort, gh: GitHubSpec, current: Issue | None) -> list[Affected]:
    """This ticket's line on the shared issue says where it stands now; the issue's list as it is then.
    ``current`` is the issue as this pass read it: nothing is sent while the line is right."""
    row = my_row(t, verified=_verified_revision(t))
    if current is not None and row in shared_issue.affected(current.body):
        return shared_issue.affected(current.body)
    async with lock(t, gh):
        number = t.issue.number
        assert number is not None
        fresh, _ = await client.get_issue(number)
        if fresh is None:
            return []
        return await _list(t, client, fresh, None, row)


async def _list(
    t: TicketPass, client: GitHubPort, issue: Issue, ctx: IssueContext | None, row: Affected | None = None
) -> list[Affected]:
    """Edit the issue's body so that it lists ``row`` (this ticket by default); the list as it is then."""
    row = row or my_row(t, ctx)
    body = issue.body or ""
    edited = shared_issue.with_affected(body, row)
    if edited != body:
        issue = await client.update_issue(issue.number, body=edited)
    return shared_issue.affected(issue.body if issue.body is not None else edited)


def _verified_revision(t: TicketPass) -> str:
    v = t.status.verification
    if v is None or v.state is None or v.state.value != "Passed":
        return ""
    return v.revision or v.pod_template_hash


def agent_shows(issue: Issue | None, gh: GitHubSpec) -> bool:
    """Whether the issue already shows the policy's coding agent (assigned, or its label on it)."""
    if issue is None:
        return False
    agent = gh.agent
    if agent.type == AgentType.COPILOT:
        return any(login.lower() in COPILOT_LOGINS for login in issue.assignee_logins)
    if agent.type in (AgentType.JULES, AgentType.LABEL):
        label = JULES_LABEL if agent.type == AgentType.JULES else agent.label
        return label.lower() in (n.lower() for n in issue.label_names)
    if agent.type == AgentType.ASSIGNEE:
        return agent.assignee.lower() in (n.lower() for n in issue.assignee_logins)
    return False


async def hand_over(t: TicketPass, client: GitHubPort, gh: GitHubSpec, now: datetime, *, again: bool = False) -> None:
    """Give the issue to the one coding agent the policy names, once, and check that the hand-over took.

    An issue that already shows the agent (handed over for another Rollout of the failure, or before a
    restart kept it from being recorded) is not handed over again; ``again`` (after a regression) asks anew.
    """
    agent, number = gh.agent, t.issue.number
    assert number is not None
    who = {AgentType.COPILOT: "Copilot coding agent", AgentType.ASSIGNEE: f"@{agent.assignee}"}.get(
        agent.type, f"label {JULES_LABEL if agent.type == AgentType.JULES else agent.label}"
    )
    current = None
    if agent.type != AgentType.NONE:
        current, _ = await client.get_issue(number)
    started = agent.type != AgentType.NONE and not again and agent_shows(current, gh)
    if agent.type != AgentType.NONE and not started:
        started = await _ask(client, gh, number, current, again=again)
    t.issue.agent = agent.type.value
    if (started and not t.issue.agent_assigned) or again:
        log_step(t, "agent-asked-again" if again else "agent-asked", f"{who} on issue #{number}", issue=number)
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
        await t.event(agent_not_started_event(who, number), now)


async def _ask(client: GitHubPort, gh: GitHubSpec, number: int, current: Issue | None, *, again: bool) -> bool:
    """One request to the agent (a label agent asked again loses its label first); whether it shows."""
    agent = gh.agent
    if agent.type == AgentType.COPILOT:
        return await client.assign_copilot(
            number,
            base_branch=agent.base_branch,
            custom_instructions=agent.custom_instructions or None,
            target_repo=gh.repository,
        )
    if agent.type in (AgentType.JULES, AgentType.LABEL):
        label = JULES_LABEL if agent.type == AgentType.JULES else agent.label
        if again and current is not None and label.lower() in (n.lower() for n in current.label_names):
            await client.update_issue(number, labels=[n for n in current.label_names if n.lower() != label.lower()])
        labels = await client.add_labels(number, [label])
        return label.lower() in (n.lower() for n in labels)
    return await client.assign(number, agent.assignee)


def log_step(t: TicketPass, step: str, detail: str, **facts: object) -> None:
    """One info line per GitHub step of a ticket."""
    message, fields = github_log(step, namespace=t.namespace, ticket=t.name, detail=detail, **facts)
    log.info("%s", message, extra=fields)
