"""A stand-in coding agent working in the GitHub stand-in: it takes the issues assigned to it and answers each
with a pull request that references the issue, first as a draft, then ready for review, as Copilot does."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

AGENT_LOGINS = frozenset({"copilot", "copilot-swe-agent", "copilot-swe-agent[bot]"})


@dataclass
class Proposal:
    """One pull request the agent opened: for which issue, and since when (monotonic seconds)."""

    issue: int
    pull: int
    opened: float
    ready: bool = False


@dataclass
class StandInCodingAgent:
    """Call :meth:`work` now and then: each issue newly assigned to the agent gets a draft pull request whose
    body closes it (``Fixes #N``); a draft is marked ready ``ready_after`` seconds later. Returns what it did."""

    gh: Any  # a GitHubStandIn
    repo: str
    ready_after: float = 1.0
    proposals: dict[int, Proposal] = field(default_factory=dict)

    def work(self) -> list[str]:
        done = []
        for issue in self.gh.issues(self.repo):
            number = issue["number"]
            if number in self.proposals or issue.get("state") != "open" or "pull_request" in issue:
                continue
            if not any(a["login"].lower() in AGENT_LOGINS for a in issue.get("assignees") or []):
                continue
            pull = self.gh.open_pull(self.repo, _title(issue["title"]), _body(number, issue["title"]), draft=True)
            self.proposals[number] = Proposal(issue=number, pull=pull, opened=time.monotonic())
            done.append(f"opened draft pull request #{pull} for issue #{number}")
        for p in self.proposals.values():
            if not p.ready and time.monotonic() - p.opened >= self.ready_after:
                self.gh.mark_ready(p.pull, self.repo)
                p.ready = True
                done.append(f"marked pull request #{p.pull} ready for review")
        return done


def _title(issue_title: str) -> str:
    return f"Fix: {issue_title}"[:200]


def _body(number: int, issue_title: str) -> str:
    return (
        f"Fixes #{number}\n\n"
        f"The failing revision ({issue_title}) is fixed: the handler no longer indexes an empty list and "
        "answers errors instead of panicking. A regression test covers the failing request."
    )
