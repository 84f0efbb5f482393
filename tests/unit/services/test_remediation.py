"""Following a ticket on GitHub: one issue per failure however often and after whatever restart, the
agent asked once, repeats commented once, and nothing sent when the policy says not to."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from selfheal.adapters.github import PullRequest
from selfheal.domain.argo import AnalysisRun
from selfheal.services import remediation, triggers
from selfheal.services.policies import PolicyRef
from tests.unit.services.test_triggers import aborted_by_argo, failed_run
from tests.unit.services.world import CANARY, NS, ROLLOUT, World, policy

TICKET = f"{ROLLOUT}-{CANARY}"
GITHUB: dict[str, Any] = {
    "github": {
        "repository": "acme/shop",
        "tokenSecretRef": {"name": "github", "key": "token"},
        "agent": {"type": "copilot"},
    }
}


def with_github(**decision: Any) -> PolicyRef:
    return policy(remediation=GITHUB, decision=decision)


async def failing_canary(world: World, *runs: str) -> None:
    """Argo aborted the canary; each named AnalysisRun failed and was analyzed."""
    aborted_by_argo(world)
    world.kube.secrets[(NS, "github")] = {"token": "ghp_example"}
    body = world.kube.rollouts[(NS, ROLLOUT)]
    for i, name in enumerate(runs or ("web-new5c4-2",)):
        run = AnalysisRun.from_obj(failed_run(name, uid=f"run-uid-{i}"))
        await triggers.on_analysis_run(world.runtime, run, body, [with_github()])


def issue_status(world: World) -> dict[str, Any]:
    return world.kube.tickets[(NS, TICKET)]["status"].get("issue") or {}


def condition(world: World, kind: str) -> dict[str, Any]:
    conditions = world.kube.tickets[(NS, TICKET)]["status"].get("conditions") or []
    return next(c for c in conditions if c["type"] == kind)


async def test_a_ticket_opens_one_issue_marked_with_its_fingerprint_and_hands_it_to_the_agent(world: World) -> None:
    await failing_canary(world)
    assert await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github()) is None

    (issue,) = world.github.issues.values()
    fingerprint = world.kube.tickets[(NS, TICKET)]["spec"]["fingerprint"]
    assert issue.fingerprint == fingerprint and TICKET in (issue.body or "")
    assert "Copilot" in issue.assignee_logins
    assert issue_status(world)["number"] == issue.number
    assert condition(world, "IssueOpened")["status"] == "True"
    assert world.connected == [("https://api.github.com", "ghp_example", "acme/shop")]


async def test_reconciling_again_or_after_a_restart_opens_no_second_issue(world: World) -> None:
    await failing_canary(world)
    await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github())
    await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github())
    restarted = world.restart()
    await remediation.reconcile_ticket(restarted, NS, TICKET, with_github())

    assert world.github.calls["create_issue"] == 1 and len(world.github.issues) == 1
    assert world.github.calls["assign_copilot"] == 1


async def test_an_issue_created_just_before_a_crash_is_adopted_not_created_again(world: World) -> None:
    """The number never reached the ticket: the hidden marker finds the issue this ticket created."""
    await failing_canary(world)
    await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github())
    world.kube.tickets[(NS, TICKET)]["status"].pop("issue")

    await remediation.reconcile_ticket(world.restart(), NS, TICKET, with_github())
    assert world.github.calls["create_issue"] == 1
    assert issue_status(world)["number"] == 1
    # recognised as this ticket's own issue, not merely a similar one found by its fingerprint
    assert condition(world, "IssueOpened")["reason"] == "IssueCreated"


async def test_a_repeat_of_the_failure_is_commented_once(world: World) -> None:
    await failing_canary(world)
    await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github())
    assert world.github.issue_comments == {}

    body = world.kube.rollouts[(NS, ROLLOUT)]
    retry = AnalysisRun.from_obj(failed_run("web-new5c4-2.1", uid="run-uid-retry"))
    await triggers.on_analysis_run(world.runtime, retry, body, [with_github()])
    world.clock.advance(timedelta(hours=2).total_seconds())
    for runtime in (world.runtime, world.runtime, world.restart()):
        await remediation.reconcile_ticket(runtime, NS, TICKET, with_github())

    assert len(world.github.issue_comments[1]) == 1
    assert issue_status(world)["commentedOccurrences"] == 2


async def test_a_dry_run_policy_sends_nothing_to_github(world: World) -> None:
    await failing_canary(world)
    await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github(dryRun=True))
    assert world.connected == [] and world.github.issues == {}
    opened = condition(world, "IssueOpened")
    assert opened["status"] == "False" and opened["reason"] == "GitHubDisabled"


async def test_a_missing_token_secret_is_said_on_the_ticket_and_tried_again_later(world: World) -> None:
    await failing_canary(world)
    del world.kube.secrets[(NS, "github")]
    retry = await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github())

    assert retry == world.runtime.config.github_refused_retry_seconds
    assert world.connected == [] and world.github.issues == {}
    opened = condition(world, "IssueOpened")
    assert opened["reason"] == "SecretNotFound" and "github" in opened["message"]


async def test_a_ticket_of_a_deleted_policy_waits_and_says_so(world: World) -> None:
    await failing_canary(world)
    assert await remediation.reconcile_ticket(world.runtime, NS, TICKET, None) is None
    assert world.github.issues == {}
    assert condition(world, "IssueOpened")["reason"] == "PolicyNotFound"


async def test_each_github_step_is_one_line_of_the_operator_log(world: World, caplog: pytest.LogCaptureFixture) -> None:
    await failing_canary(world)
    with caplog.at_level(logging.INFO, logger="selfheal"):
        await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github())
        number = issue_status(world)["number"]
        world.github.link_pull(number, PullRequest(number=7, body=f"Fixes #{number}", html_url="https://x/7"))
        world.clock.advance(120)
        await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github())
        merged = PullRequest(
            number=7,
            body=f"Fixes #{number}",
            state="closed",
            merged=True,
            merged_at=world.clock(),
            html_url="https://x/7",
        )
        merged = merged.model_copy(update={"merge_commit_sha": "abc123"})
        world.github.pulls[number] = [merged]
        world.clock.advance(120)
        await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github())
        await remediation.reconcile_ticket(world.runtime, NS, TICKET, with_github())  # nothing new: no line

    steps = [getattr(r, "step", None) for r in caplog.records if getattr(r, "ticket", None) == TICKET]
    steps = [s for s in steps if s]
    assert steps == ["issue-created", "agent-asked", "pull-request-seen", "pull-request-merged"], steps
    line = next(r for r in caplog.records if getattr(r, "step", None) == "issue-created")
    assert line.getMessage() == f"ticket {NS}/{TICKET}: issue created: issue #{number} in acme/shop"
    assert line.namespace == NS and line.issue == number  # structured keys for the json log format
