"""A GitHub REST v3 stand-in: a real HTTP server on 127.0.0.1 with in-memory repos, issues, pulls and faults."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlencode

from aiohttp import web

from selfheal.testing.loopback import LoopbackServer

COPILOT_LOGIN, COPILOT_ID, COPILOT_TYPE = "Copilot", 198982749, "Bot"
COPILOT_USER: dict[str, Any] = {"login": COPILOT_LOGIN, "id": COPILOT_ID, "type": COPILOT_TYPE}
# Logins a client may send to hand an issue to the Copilot coding agent.
COPILOT_ALIASES = frozenset({"copilot-swe-agent[bot]", "copilot-swe-agent", "copilot"})
DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
JSON_TYPE = "application/json; charset=utf-8"
_FAULT_MESSAGES = {
    403: "Resource not accessible by personal access token",
    404: "Not Found",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_MENTION = re.compile(
    r"(?:(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)#|https?://[^\s/]+/(?P<url>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)/(?:issues|pull)/|"
    r"(?<![\w/])#)(?P<number>\d+)(?!\d)"
)
_CLOSING_WORDS = re.compile(
    r"(?<![\w-])(?:close|closes|closed|fix|fixes|fixed|resolve|resolves|resolved):?[ \t]+$", re.IGNORECASE
)


class LoggedRequest(NamedTuple):
    method: str
    path: str
    status: int
    # when the answer was sent (time.monotonic())
    at: float = 0.0


class _Reply(Exception):
    """Raised inside a route to answer with an error status and GitHub's error body."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None, docs: str = DOCS) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "documentation_url": docs, "status": str(status)}
        if errors is not None:
            self.body["errors"] = errors


@dataclass
class _Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass
class _Comment:
    id: int
    user: dict[str, Any]
    body: str
    created_at: str
    updated_at: str


@dataclass
class _Issue:
    id: int
    number: int
    title: str
    body: str | None
    user: dict[str, Any]
    created_at: str
    updated_at: str
    state: str = "open"
    state_reason: str | None = None
    closed_at: str | None = None
    closed_by: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[dict[str, Any]] = field(default_factory=list)
    comments: list[_Comment] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # pull request part
    is_pull: bool = False
    pull_id: int = 0
    draft: bool = False
    merged: bool = False
    merged_at: str | None = None
    merged_by: dict[str, Any] | None = None
    merge_commit_sha: str | None = None
    head_ref: str = ""
    head_sha: str = ""
    base_ref: str = "main"
    base_sha: str = ""


@dataclass
class _Repo:
    id: int
    owner: str
    name: str
    default_branch: str = "main"
    created_at: str = ""
    labels: dict[str, _Label] = field(default_factory=dict)
    issues: dict[int, _Issue] = field(default_factory=dict)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha() -> str:
    return secrets.token_hex(20)


class GitHubStandIn(LoopbackServer):
    """GitHub's REST API for the parts selfheal uses, served on ``127.0.0.1`` from a background thread.

    ``with GitHubStandIn(token="t", repos=["acme/shop"]) as gh:`` then point a client at ``gh.api_url``.
    Helpers act as a coding agent (:meth:`open_pull`, :meth:`mark_ready`, :meth:`merge_pull`); fault
    injectors (:meth:`fail_next`, :meth:`rate_limit_next`, :meth:`exhaust_primary`, :meth:`slow`,
    :meth:`drop_next`, :meth:`bad_token`) reproduce GitHub's failure modes; :attr:`requests` logs
    every request as ``(method, path, status)``.
    """

    __test__ = False
    thread_name = "github-standin"
    client_max_size = 8 * 1024 * 1024

    def __init__(
        self,
        token: str = "t",
        repos: list[str] | tuple[str, ...] = ("acme/shop",),
        *,
        login: str = "selfheal-bot",
        rate_limit: int = 5000,
        html_url: str = "https://github.com",
    ) -> None:
        super().__init__()
        self.token = token
        self.html_url = html_url.rstrip("/")
        self._ids = 1_000_000
        self._user_ids = 5000
        self._users: dict[str, dict[str, Any]] = {}
        self.viewer = self._user(login)
        self.collaborators: set[str] = {login.lower()}
        self._repos: dict[str, _Repo] = {}
        for full_name in repos:
            self.add_repo(full_name)
        # behaviour switches
        self.strict_labels = False
        self.copilot_enabled = True
        self.agent_assignments: list[tuple[str, int, dict[str, Any]]] = []
        # rate limit
        self.limit = rate_limit
        self.used = 0
        self.reset_at = int(time.time()) + 3600
        # faults
        self._fail: list[int] = []
        self._secondary: list[tuple[int, int]] = []
        self._redirect: list[tuple[int, str]] = []
        # Where Link headers point (None: this server); another host's URL reproduces a hostile proxy.
        self.page_link_base: str | None = None
        self._drop = 0
        self._token_valid = True
        # Called once each after a matching request was answered and before the reply leaves.
        self._after: list[tuple[str, re.Pattern[str], Callable[[], None]]] = []
        # log
        self.requests: list[LoggedRequest] = []
        self.last_request_headers: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/{tail:.*}", self._handle)

    # -- faults ----------------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """The next ``n`` requests answer ``status`` (500 by default; any code works) without doing anything."""
        with self._lock:
            self._fail += [status] * n

    def redirect_next(self, location: str, status: int = 307, n: int = 1) -> None:
        """The next ``n`` requests answer a redirect to ``location`` without doing anything."""
        with self._lock:
            self._redirect += [(status, location)] * n

    def rate_limit_next(self, retry_after: int = 7, status: int = 429, n: int = 1) -> None:
        """The next ``n`` requests hit a secondary rate limit: ``status`` with ``Retry-After``."""
        with self._lock:
            self._secondary += [(status, retry_after)] * n

    def exhaust_primary(self, reset_in: int = 30) -> None:
        """Spend the whole primary budget; it comes back ``reset_in`` seconds from now."""
        with self._lock:
            self.used = self.limit
            self.reset_at = int(time.time()) + reset_in

    def drop_next(self, n: int = 1) -> None:
        """Close the connection of the next ``n`` requests without answering."""
        with self._lock:
            self._drop += n

    def after_answer(self, method: str, path: str, then: Callable[[], None]) -> None:
        """Call ``then`` once, after the next ``method`` request whose path matches the regex ``path`` was
        carried out and before its reply leaves: killing the client there reproduces a crash between a
        write and recording its result."""
        with self._lock:
            self._after.append((method.upper(), re.compile(path), then))

    def bad_token(self, bad: bool = True) -> None:
        """Every request now answers 401 Bad credentials (as for a revoked token)."""
        self._token_valid = not bad

    # -- data helpers (act as GitHub users and coding agents) --------------------------------------

    def add_repo(self, full_name: str, default_branch: str = "main") -> None:
        owner, _, name = full_name.partition("/")
        with self._lock:
            self._repos[full_name.lower()] = _Repo(
                id=self._next_id(), owner=owner, name=name, default_branch=default_branch, created_at=self._now()
            )

    def add_issue(
        self,
        repo: str,
        title: str,
        body: str = "",
        labels: list[str] | None = None,
        *,
        author: str | None = None,
        state: str = "open",
    ) -> int:
        """Create an issue directly (no request, no rate limit); returns its number."""
        with self._lock:
            r = self._repo(repo)
            user = self._user(author) if author else self.viewer
            issue = self._new_issue(r, title, body, user)
            for name in labels or []:
                self._ensure_label(r, name)
                issue.labels.append(self._label_of(r, name).name)
            if state == "closed":
                self._set_state(r, issue, "closed", "completed", user)
            return issue.number

    def open_pull(
        self,
        repo: str,
        title: str,
        body: str = "",
        *,
        author: str = "Copilot",
        draft: bool = True,
        head_sha: str | None = None,
        head_ref: str | None = None,
        base: str | None = None,
        cross_reference: bool = True,
    ) -> int:
        """Open a pull request as ``author`` (Copilot by default, a draft as Copilot's start). Issues it
        mentions get a ``cross-referenced`` timeline event unless ``cross_reference`` is False."""
        with self._lock:
            r = self._repo(repo)
            user = _copilot_user() if author.lower() in COPILOT_ALIASES else self._user(author)
            pull = self._new_pull(
                r,
                title,
                body,
                user,
                draft=draft,
                head_ref=head_ref or f"fix/{r.next_number}",
                base=base or r.default_branch,
                head_sha=head_sha,
            )
            if cross_reference:
                self._cross_reference(r, pull, user)
            return pull.number

    def mark_ready(self, number: int, repo: str | None = None) -> None:
        with self._lock:
            pull = self._pull(self._repo(repo), number)
            pull.draft = False
            pull.updated_at = self._now()

    def merge_pull(self, number: int, repo: str | None = None, *, by: str | None = None) -> str:
        """Merge like GitHub: the PR closes, and issues its body closes with a keyword are closed."""
        with self._lock:
            r = self._repo(repo)
            return self._merge(r, self._pull(r, number), self._user(by) if by else self.viewer)

    def close_issue(self, number: int, repo: str | None = None, reason: str = "completed") -> None:
        with self._lock:
            r = self._repo(repo)
            self._set_state(r, self._issue(r, number), "closed", reason, self.viewer)

    def issues(self, repo: str | None = None) -> list[dict[str, Any]]:
        """Issues (not pulls) of ``repo`` as the API renders them, oldest first."""
        with self._lock:
            r = self._repo(repo)
            return [self._issue_json(r, i) for i in sorted(r.issues.values(), key=lambda i: i.number) if not i.is_pull]

    def issue(self, number: int, repo: str | None = None) -> dict[str, Any]:
        with self._lock:
            r = self._repo(repo)
            return self._issue_json(r, self._issue(r, number))

    def pulls(self, repo: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            r = self._repo(repo)
            return [self._pull_json(r, i) for i in sorted(r.issues.values(), key=lambda i: i.number) if i.is_pull]

    def comment_bodies(self, number: int, repo: str | None = None) -> list[str]:
        with self._lock:
            return [c.body for c in self._issue(self._repo(repo), number).comments]

    def timeline_events(self, number: int, repo: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            r = self._repo(repo)
            return [self._event_json(r, e) for e in self._issue(r, number).events]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many logged requests match ``method`` and ``path`` (prefix)."""
        return sum(
            1
            for entry in list(self.requests)
            if (method is None or entry.method == method) and (path is None or entry.path.startswith(path))
        )

    @property
    def remaining(self) -> int:
        with self._lock:
            self._roll_window()
            return self.limit - self.used

    # -- internals: ids, users, lookup ---------------------------------------------------------------

    def _now(self) -> str:
        return _iso(datetime.now(UTC))

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _user(self, login: str) -> dict[str, Any]:
        key = login.lower()
        if key in COPILOT_ALIASES:
            return _copilot_user()
        if key not in self._users:
            self._user_ids += 1
            self._users[key] = _simple_user(login, self._user_ids, "User")
        return self._users[key]

    def _repo(self, full_name: str | None) -> _Repo:
        if full_name is None:
            return next(iter(self._repos.values()))
        try:
            return self._repos[full_name.lower()]
        except KeyError:
            raise _Reply(404, "Not Found") from None

    def _issue(self, repo: _Repo, number: int) -> _Issue:
        issue = repo.issues.get(number)
        if issue is None:
            raise _Reply(404, "Not Found")
        return issue

    def _pull(self, repo: _Repo, number: int) -> _Issue:
        issue = self._issue(repo, number)
        if not issue.is_pull:
            raise _Reply(404, "Not Found")
        return issue

    def _ensure_label(self, repo: _Repo, name: str) -> None:
        if name.lower() in repo.labels:
            return
        if self.strict_labels:
            raise _Reply(
                422,
                "Validation Failed",
                [{"value": name, "resource": "Label", "code": "invalid", "field": "labels"}],
                docs=f"{DOCS}/issues/labels",
            )
        repo.labels[name.lower()] = _Label(id=self._next_id(), name=name)

    def _label_of(self, repo: _Repo, name: str) -> _Label:
        return repo.labels[name.lower()]

    # -- internals: state changes ----------------------------------------------------------------

    def _event(self, repo: _Repo, issue: _Issue, kind: str, actor: dict[str, Any], **extra: Any) -> None:
        event_id = self._next_id()
        issue.events.append(
            {
                "id": event_id,
                "node_id": f"E_{event_id}",
                "url": f"{self.api_url}/repos/{repo.full_name}/issues/events/{event_id}",
                "actor": actor,
                "event": kind,
                "commit_id": None,
                "commit_url": None,
                "created_at": self._now(),
                "performed_via_github_app": None,
                **extra,
            }
        )

    def _new_issue(self, repo: _Repo, title: str, body: str | None, user: dict[str, Any]) -> _Issue:
        now = self._now()
        issue = _Issue(
            id=self._next_id(),
            number=repo.next_number,
            title=title,
            body=body,
            user=user,
            created_at=now,
            updated_at=now,
        )
        repo.issues[issue.number] = issue
        repo.next_number += 1
        return issue

    def _new_pull(
        self,
        repo: _Repo,
        title: str,
        body: str | None,
        user: dict[str, Any],
        *,
        draft: bool,
        head_ref: str,
        base: str,
        head_sha: str | None = None,
    ) -> _Issue:
        pull = self._new_issue(repo, title, body, user)
        pull.is_pull = True
        pull.pull_id = self._next_id()
        pull.draft = draft
        pull.head_ref = head_ref
        pull.head_sha = head_sha or _sha()
        pull.base_ref = base
        pull.base_sha = _sha()
        return pull

    def _set_state(
        self,
        repo: _Repo,
        issue: _Issue,
        state: str,
        reason: str | None,
        actor: dict[str, Any],
        commit_id: str | None = None,
    ) -> None:
        if state == issue.state:
            if reason and state == "closed":
                issue.state_reason = reason
            return
        issue.state = state
        issue.updated_at = self._now()
        if state == "closed":
            issue.closed_at = issue.updated_at
            issue.closed_by = actor
            issue.state_reason = reason or "completed"
            self._event(repo, issue, "closed", actor, state_reason=issue.state_reason, commit_id=commit_id)
        else:
            issue.closed_at = None
            issue.closed_by = None
            issue.state_reason = "reopened"
            self._event(repo, issue, "reopened", actor, state_reason="reopened")

    def _add_label(self, repo: _Repo, issue: _Issue, name: str, actor: dict[str, Any]) -> None:
        self._ensure_label(repo, name)
        label = self._label_of(repo, name)
        if label.name not in issue.labels:
            issue.labels.append(label.name)
            self._event(repo, issue, "labeled", actor, label={"name": label.name, "color": label.color})

    def _assign(self, repo: _Repo, issue: _Issue, login: str, actor: dict[str, Any]) -> None:
        key = login.lower()
        if key in COPILOT_ALIASES:
            if not self.copilot_enabled:
                return  # accepted and silently ignored, as when the agent is not enabled for the token
            user = _copilot_user()
        elif key in self.collaborators:
            user = self._user(login)
        else:
            return  # GitHub silently ignores logins that cannot be assigned
        if all(a["login"] != user["login"] for a in issue.assignees):
            issue.assignees.append(user)
            issue.updated_at = self._now()
            self._event(repo, issue, "assigned", actor, assignee=user, assigner=actor)

    def _mentions(self, repo: _Repo, text: str | None) -> list[tuple[_Repo, int, bool]]:
        """(repository, number, with a closing keyword) for every issue reference in ``text``."""
        found: list[tuple[_Repo, int, bool]] = []
        for match in _MENTION.finditer(text or ""):
            named = match.group("repo") or match.group("url")
            target = self._repos.get(named.lower()) if named else repo
            if target is None:
                continue
            closing = bool(_CLOSING_WORDS.search(text[: match.start()]))  # type: ignore[index]
            found.append((target, int(match.group("number")), closing))
        return found

    def _cross_reference(self, repo: _Repo, pull: _Issue, actor: dict[str, Any]) -> None:
        for target, number, _ in self._mentions(repo, pull.body):
            issue = target.issues.get(number)
            if issue is None or issue is pull:
                continue
            if any(e.get("_source") == (repo.full_name.lower(), pull.number) for e in issue.events):
                continue
            now = self._now()
            issue.events.append(
                {
                    "event": "cross-referenced",
                    "actor": actor,
                    "created_at": now,
                    "updated_at": now,
                    "_source": (repo.full_name.lower(), pull.number),
                }
            )

    def _merge(self, repo: _Repo, pull: _Issue, actor: dict[str, Any]) -> str:
        if pull.state != "open" or pull.draft or pull.merged:
            raise _Reply(405, "Pull Request is not mergeable")
        pull.merged = True
        pull.merge_commit_sha = _sha()
        pull.merged_at = self._now()
        pull.merged_by = actor
        self._set_state(repo, pull, "closed", None, actor)
        pull.state_reason = None
        self._event(repo, pull, "merged", actor, commit_id=pull.merge_commit_sha)
        if pull.base_ref == repo.default_branch:
            for target, number, closing in self._mentions(repo, pull.body):
                issue = target.issues.get(number)
                if closing and issue is not None and not issue.is_pull:
                    self._set_state(target, issue, "closed", "completed", actor, commit_id=pull.merge_commit_sha)
        return pull.merge_commit_sha

    # -- internals: JSON shapes (per GitHub's OpenAPI description) --------------------------------

    def _repo_json(self, repo: _Repo) -> dict[str, Any]:
        api = f"{self.api_url}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "private": False,
            "owner": self._user(repo.owner),
            "html_url": f"{self.html_url}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": api,
            "issues_url": f"{api}/issues{{/number}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "default_branch": repo.default_branch,
            "visibility": "public",
            "has_issues": True,
            "archived": False,
            "disabled": False,
            "open_issues_count": sum(1 for i in repo.issues.values() if i.state == "open"),
            "created_at": repo.created_at,
            "updated_at": repo.created_at,
            "pushed_at": repo.created_at,
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        }

    def _label_json(self, repo: _Repo, name: str) -> dict[str, Any]:
        label = self._label_of(repo, name)
        return {
            "id": label.id,
            "node_id": f"LA_{label.id}",
            "url": f"{self.api_url}/repos/{repo.full_name}/labels/{label.name}",
            "name": label.name,
            "color": label.color,
            "default": False,
            "description": label.description,
        }

    def _issue_json(self, repo: _Repo, issue: _Issue) -> dict[str, Any]:
        api = f"{self.api_url}/repos/{repo.full_name}"
        kind = "pull" if issue.is_pull else "issues"
        data: dict[str, Any] = {
            "id": issue.id,
            "node_id": f"I_{issue.id}",
            "url": f"{api}/issues/{issue.number}",
            "repository_url": api,
            "labels_url": f"{api}/issues/{issue.number}/labels{{/name}}",
            "comments_url": f"{api}/issues/{issue.number}/comments",
            "events_url": f"{api}/issues/{issue.number}/events",
            "html_url": f"{self.html_url}/{repo.full_name}/{kind}/{issue.number}",
            "timeline_url": f"{api}/issues/{issue.number}/timeline",
            "number": issue.number,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "title": issue.title,
            "body": issue.body,
            "user": issue.user,
            "labels": [self._label_json(repo, name) for name in issue.labels],
            "assignee": issue.assignees[0] if issue.assignees else None,
            "assignees": list(issue.assignees),
            "milestone": None,
            "locked": False,
            "active_lock_reason": None,
            "comments": len(issue.comments),
            "closed_at": issue.closed_at,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_by": issue.closed_by,
            "author_association": self._association(issue.user),
            "performed_via_github_app": None,
        }
        if issue.is_pull:
            data["draft"] = issue.draft
            data["pull_request"] = {
                "url": f"{api}/pulls/{issue.number}",
                "html_url": f"{self.html_url}/{repo.full_name}/pull/{issue.number}",
                "diff_url": f"{self.html_url}/{repo.full_name}/pull/{issue.number}.diff",
                "patch_url": f"{self.html_url}/{repo.full_name}/pull/{issue.number}.patch",
                "merged_at": issue.merged_at,
            }
        return data

    def _association(self, user: dict[str, Any]) -> str:
        return "OWNER" if user["login"].lower() in self.collaborators else "NONE"

    def _branch_json(self, repo: _Repo, ref: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{repo.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self._user(repo.owner),
            "repo": self._repo_json(repo),
        }

    def _pull_json(self, repo: _Repo, pull: _Issue, *, simple: bool = False) -> dict[str, Any]:
        api = f"{self.api_url}/repos/{repo.full_name}"
        html = f"{self.html_url}/{repo.full_name}/pull/{pull.number}"
        data: dict[str, Any] = {
            "url": f"{api}/pulls/{pull.number}",
            "id": pull.pull_id,
            "node_id": f"PR_{pull.pull_id}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{pull.number}",
            "commits_url": f"{api}/pulls/{pull.number}/commits",
            "review_comments_url": f"{api}/pulls/{pull.number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{pull.number}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": pull.user,
            "body": pull.body,
            "labels": [self._label_json(repo, name) for name in pull.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "closed_at": pull.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": pull.assignees[0] if pull.assignees else None,
            "assignees": list(pull.assignees),
            "requested_reviewers": [],
            "requested_teams": [],
            "head": self._branch_json(repo, pull.head_ref, pull.head_sha),
            "base": self._branch_json(repo, pull.base_ref, pull.base_sha),
            "_links": {
                name: {"href": href}
                for name, href in (
                    ("self", f"{api}/pulls/{pull.number}"),
                    ("html", html),
                    ("issue", f"{api}/issues/{pull.number}"),
                    ("comments", f"{api}/issues/{pull.number}/comments"),
                    ("review_comments", f"{api}/pulls/{pull.number}/comments"),
                    ("review_comment", f"{api}/pulls/comments{{/number}}"),
                    ("commits", f"{api}/pulls/{pull.number}/commits"),
                    ("statuses", f"{api}/statuses/{pull.head_sha}"),
                )
            },
            "author_association": self._association(pull.user),
            "auto_merge": None,
            "draft": pull.draft,
        }
        if simple:
            return data
        data.update(
            {
                "merged": pull.merged,
                "mergeable": None if pull.merged else not pull.draft,
                "rebaseable": None if pull.merged else not pull.draft,
                "mergeable_state": "draft" if pull.draft else ("unknown" if pull.merged else "clean"),
                "merged_by": pull.merged_by,
                "comments": len(pull.comments),
                "review_comments": 0,
                "maintainer_can_modify": False,
                "commits": 1,
                "additions": 1,
                "deletions": 0,
                "changed_files": 1,
            }
        )
        return data

    def _comment_json(self, repo: _Repo, issue: _Issue, comment: _Comment) -> dict[str, Any]:
        api = f"{self.api_url}/repos/{repo.full_name}"
        kind = "pull" if issue.is_pull else "issues"
        return {
            "id": comment.id,
            "node_id": f"IC_{comment.id}",
            "url": f"{api}/issues/comments/{comment.id}",
            "html_url": f"{self.html_url}/{repo.full_name}/{kind}/{issue.number}#issuecomment-{comment.id}",
            "body": comment.body,
            "user": comment.user,
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "issue_url": f"{api}/issues/{issue.number}",
            "author_association": self._association(comment.user),
            "performed_via_github_app": None,
        }

    def _event_json(self, repo: _Repo, event: dict[str, Any]) -> dict[str, Any]:
        if event["event"] == "cross-referenced":
            source_repo = self._repos[event["_source"][0]]
            source = self._issue_json(source_repo, source_repo.issues[event["_source"][1]])
            source["repository"] = self._repo_json(source_repo)
            return {
                "event": "cross-referenced",
                "actor": event["actor"],
                "created_at": event["created_at"],
                "updated_at": event["updated_at"],
                "source": {"type": "issue", "issue": source},
            }
        if event["event"] == "commented":
            issue, comment = event["_comment"]
            return {**self._comment_json(repo, issue, comment), "event": "commented", "actor": comment.user}
        return {key: value for key, value in event.items() if not key.startswith("_")}

    # -- HTTP ------------------------------------------------------------------------------------

    def _roll_window(self) -> None:
        now = int(time.time())
        if now >= self.reset_at:
            self.used = 0
            self.reset_at = now + 3600

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.limit - self.used, 0)),
            "X-RateLimit-Used": str(self.used),
            "X-RateLimit-Reset": str(self.reset_at),
            "X-RateLimit-Resource": "core",
        }

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.path
        raw = await request.read()
        self.last_request_headers = dict(request.headers)
        with self._lock:
            drop = self._drop > 0
            if drop:
                self._drop -= 1
        if drop:
            self.requests.append(LoggedRequest(request.method, path, 0, time.monotonic()))
            if request.transport is not None:
                request.transport.abort()
            return web.Response()
        await self._pause()
        status, body, headers = self._answer(request, path, raw)
        self.requests.append(LoggedRequest(request.method, path, status, time.monotonic()))
        with self._lock:
            hook = next((h for h in self._after if h[0] == request.method and h[1].fullmatch(path)), None)
            if hook is not None:
                self._after.remove(hook)
        if hook is not None:
            await asyncio.to_thread(hook[2])
        if status == 304:
            return web.Response(status=304, headers=headers)
        text = json.dumps(body)
        return web.Response(status=status, text=text, headers={**headers, "Content-Type": JSON_TYPE})

    def _answer(self, request: web.Request, path: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            if self._redirect:
                status, location = self._redirect.pop(0)
                return status, {"message": "Moved", "url": location}, {"Location": location}
            if self._fail:
                status = self._fail.pop(0)
                return (
                    status,
                    {
                        "message": _FAULT_MESSAGES.get(status, "Server Error"),
                        "documentation_url": DOCS,
                        "status": str(status),
                    },
                    {},
                )
            auth = request.headers.get("Authorization", "")
            scheme, _, presented = auth.partition(" ")
            if not auth:
                return 401, {"message": "Requires authentication", "documentation_url": DOCS, "status": "401"}, {}
            if scheme.lower() not in ("bearer", "token") or presented != self.token or not self._token_valid:
                return 401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}, {}
            self._roll_window()
            if path == "/rate_limit" and request.method == "GET":
                return 200, self._rate_limit_json(), self._rate_headers()
            if self._secondary:
                status, retry_after = self._secondary.pop(0)
                self.used = min(self.used + 1, self.limit)
                return (
                    status,
                    {
                        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                        "try again.",
                        "documentation_url": f"{RATE_DOCS}#about-secondary-rate-limits",
                        "status": str(status),
                    },
                    {**self._rate_headers(), "Retry-After": str(retry_after)},
                )
            if self.used >= self.limit:
                return (
                    403,
                    {
                        "message": f"API rate limit exceeded for user ID {self.viewer['id']}.",
                        "documentation_url": f"{RATE_DOCS}#about-primary-rate-limits",
                        "status": "403",
                    },
                    self._rate_headers(),
                )
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                self.used += 1
                return (
                    400,
                    {"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"},
                    self._rate_headers(),
                )
            query = {key: request.rel_url.query.getall(key)[-1] for key in request.rel_url.query}
            headers: dict[str, str] = {}
            try:
                status, body, headers = self._route(request.method, path, query, payload)
            except _Reply as reply:
                status, body = reply.status, reply.body
            if request.method == "GET" and status == 200:
                etag = 'W/"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:40] + '"'
                headers["ETag"] = etag
                if _etag_matches(request.headers.get("If-None-Match", ""), etag):
                    return 304, None, {**headers, **self._rate_headers()}  # conditional hits are free
            self.used += 1
            return status, body, {**headers, **self._rate_headers()}

    def _rate_limit_json(self) -> dict[str, Any]:
        core = {
            "limit": self.limit,
            "used": self.used,
            "remaining": max(self.limit - self.used, 0),
            "reset": self.reset_at,
        }
        search = {"limit": 30, "used": 0, "remaining": 30, "reset": int(time.time()) + 60}
        return {"resources": {"core": core, "search": search}, "rate": core}

    def _route(self, method: str, path: str, query: dict[str, str], payload: Any) -> tuple[int, Any, dict[str, str]]:
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "repos":
            raise _Reply(404, "Not Found")
        repo = self._repo(f"{parts[1]}/{parts[2]}")
        rest = parts[3:]
        body = payload if isinstance(payload, dict) else {}
        match (method, rest):
            case ("GET", []):
                return 200, self._repo_json(repo), {}
            case ("GET", ["issues"]):
                return self._list_issues(repo, path, query)
            case ("POST", ["issues"]):
                return self._create_issue(repo, body)
            case ("GET", ["issues", number]) if number.isdigit():
                return 200, self._issue_json(repo, self._issue(repo, int(number))), {}
            case ("PATCH", ["issues", number]) if number.isdigit():
                return self._update_issue(repo, self._issue(repo, int(number)), body)
            case ("GET", ["issues", number, "comments"]) if number.isdigit():
                issue = self._issue(repo, int(number))
                items = [self._comment_json(repo, issue, c) for c in issue.comments]
                return self._page(path, query, items)
            case ("POST", ["issues", number, "comments"]) if number.isdigit():
                return self._create_comment(repo, self._issue(repo, int(number)), body)
            case ("GET", ["issues", number, "labels"]) if number.isdigit():
                issue = self._issue(repo, int(number))
                return self._page(path, query, [self._label_json(repo, n) for n in issue.labels])
            case ("POST", ["issues", number, "labels"]) if number.isdigit():
                issue = self._issue(repo, int(number))
                names = payload if isinstance(payload, list) else body.get("labels", [])
                if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                    raise _Reply(
                        422, "Validation Failed", [{"resource": "Label", "code": "invalid", "field": "labels"}]
                    )
                for name in names:
                    self._ensure_label(repo, name)
                for name in names:
                    self._add_label(repo, issue, name, self.viewer)
                return 200, [self._label_json(repo, n) for n in issue.labels], {}
            case ("POST", ["issues", number, "assignees"]) if number.isdigit():
                issue = self._issue(repo, int(number))
                if isinstance(body.get("agent_assignment"), dict):
                    self.agent_assignments.append((repo.full_name, issue.number, dict(body["agent_assignment"])))
                for login in body.get("assignees", []) or []:
                    self._assign(repo, issue, str(login), self.viewer)
                return 201, self._issue_json(repo, issue), {}
            case ("GET", ["issues", number, "timeline"]) if number.isdigit():
                issue = self._issue(repo, int(number))
                return self._page(path, query, [self._event_json(repo, e) for e in issue.events])
            case ("GET", ["pulls"]):
                return self._list_pulls(repo, path, query)
            case ("POST", ["pulls"]):
                return self._create_pull(repo, body)
            case ("GET", ["pulls", number]) if number.isdigit():
                return 200, self._pull_json(repo, self._pull(repo, int(number))), {}
            case ("PATCH", ["pulls", number]) if number.isdigit():
                return self._update_pull(repo, self._pull(repo, int(number)), body)
            case ("PUT", ["pulls", number, "merge"]) if number.isdigit():
                sha = self._merge(repo, self._pull(repo, int(number)), self.viewer)
                return 200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}, {}
        raise _Reply(404, "Not Found")

    def _page(self, path: str, query: dict[str, str], items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        try:
            per_page = min(max(int(query.get("per_page", "30")), 1), 100)
            page = max(int(query.get("page", "1")), 1)
        except ValueError:
            per_page, page = 30, 1
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []

        def link(number: int, rel: str) -> str:
            return f'<{self.page_link_base or self.api_url}{path}?{urlencode({**query, "page": number})}>; rel="{rel}"'

        if page > 1:
            links += [link(min(page - 1, last), "prev")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first")]
        return 200, chunk, ({"Link": ", ".join(links)} if links else {})

    def _list_issues(self, repo: _Repo, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        state = query.get("state", "open")
        wanted = [name.strip().lower() for name in query.get("labels", "").split(",") if name.strip()]
        issues = list(repo.issues.values())
        if state in ("open", "closed"):
            issues = [i for i in issues if i.state == state]
        if wanted:
            issues = [i for i in issues if set(wanted) <= {n.lower() for n in i.labels}]
        if "creator" in query:
            issues = [i for i in issues if i.user["login"].lower() == query["creator"].lower()]
        if "assignee" in query:
            who = query["assignee"].lower()
            if who == "none":
                issues = [i for i in issues if not i.assignees]
            elif who != "*":
                issues = [i for i in issues if any(a["login"].lower() == who for a in i.assignees)]
        sort = query.get("sort", "created")
        key = {"updated": lambda i: (i.updated_at, i.number), "comments": lambda i: (len(i.comments), i.number)}.get(
            sort, lambda i: (i.created_at, i.number)
        )
        issues.sort(key=key, reverse=query.get("direction", "desc") != "asc")
        return self._page(path, query, [self._issue_json(repo, i) for i in issues])

    def _check_labels(self, repo: _Repo, labels: Any) -> list[str]:
        if labels is None:
            return []
        if not isinstance(labels, list):
            raise _Reply(422, "Validation Failed", [{"resource": "Issue", "code": "invalid", "field": "labels"}])
        names = [label["name"] if isinstance(label, dict) else str(label) for label in labels]
        for name in names:
            self._ensure_label(repo, name)
        return names

    def _create_issue(self, repo: _Repo, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _Reply(422, "Validation Failed", [{"resource": "Issue", "code": "missing_field", "field": "title"}])
        names = self._check_labels(repo, body.get("labels"))
        issue = self._new_issue(repo, title, body.get("body"), self.viewer)
        for name in names:
            self._add_label(repo, issue, name, self.viewer)
        for login in body.get("assignees", []) or []:
            self._assign(repo, issue, str(login), self.viewer)
        data = self._issue_json(repo, issue)
        return 201, data, {"Location": data["url"]}

    def _update_issue(self, repo: _Repo, issue: _Issue, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if "state" in body and body["state"] not in ("open", "closed"):
            raise _Reply(422, "Validation Failed", [{"resource": "Issue", "code": "invalid", "field": "state"}])
        if "labels" in body:
            names = self._check_labels(repo, body["labels"])
            for name in [n for n in issue.labels if n.lower() not in {m.lower() for m in names}]:
                issue.labels.remove(name)
                self._event(repo, issue, "unlabeled", self.viewer, label={"name": name})
            for name in names:
                self._add_label(repo, issue, name, self.viewer)
        if "title" in body and isinstance(body["title"], str):
            issue.title = body["title"]
        if "body" in body:
            issue.body = body["body"]
        if "assignees" in body and isinstance(body["assignees"], list):
            issue.assignees = []
            for login in body["assignees"]:
                self._assign(repo, issue, str(login), self.viewer)
        if "state" in body:
            self._set_state(repo, issue, body["state"], body.get("state_reason"), self.viewer)
        elif body.get("state_reason") and issue.state == "closed":
            issue.state_reason = body["state_reason"]
        issue.updated_at = self._now()
        return 200, self._issue_json(repo, issue), {}

    def _create_comment(self, repo: _Repo, issue: _Issue, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        text = body.get("body")
        if not isinstance(text, str) or not text:
            raise _Reply(
                422, "Validation Failed", [{"resource": "IssueComment", "code": "missing_field", "field": "body"}]
            )
        now = self._now()
        comment = _Comment(id=self._next_id(), user=self.viewer, body=text, created_at=now, updated_at=now)
        issue.comments.append(comment)
        issue.updated_at = now
        issue.events.append({"event": "commented", "_comment": (issue, comment)})
        data = self._comment_json(repo, issue, comment)
        return 201, data, {"Location": data["url"]}

    def _list_pulls(self, repo: _Repo, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        state = query.get("state", "open")
        pulls = [i for i in repo.issues.values() if i.is_pull]
        if state in ("open", "closed"):
            pulls = [p for p in pulls if p.state == state]
        if "base" in query:
            pulls = [p for p in pulls if p.base_ref == query["base"]]
        if "head" in query:
            pulls = [p for p in pulls if f"{repo.owner}:{p.head_ref}" == query["head"]]
        sort = query.get("sort", "created")
        direction = query.get("direction", "desc" if sort == "created" else "asc")
        key = (lambda p: (p.updated_at, p.number)) if sort == "updated" else (lambda p: (p.created_at, p.number))
        pulls.sort(key=key, reverse=direction != "asc")
        return self._page(path, query, [self._pull_json(repo, p, simple=True) for p in pulls])

    def _create_pull(self, repo: _Repo, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        missing = [name for name in ("title", "head", "base") if not body.get(name)]
        if missing:
            raise _Reply(
                422,
                "Validation Failed",
                [{"resource": "PullRequest", "code": "missing_field", "field": name} for name in missing],
            )
        pull = self._new_pull(
            repo,
            body["title"],
            body.get("body"),
            self.viewer,
            draft=bool(body.get("draft")),
            head_ref=str(body["head"]).split(":")[-1],
            base=str(body["base"]),
        )
        self._cross_reference(repo, pull, self.viewer)
        data = self._pull_json(repo, pull)
        return 201, data, {"Location": data["url"]}

    def _update_pull(self, repo: _Repo, pull: _Issue, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if "title" in body:
            pull.title = str(body["title"])
        if "body" in body:
            pull.body = body["body"]
            self._cross_reference(repo, pull, self.viewer)
        if "base" in body:
            pull.base_ref = str(body["base"])
        if body.get("state") in ("open", "closed") and not pull.merged:
            self._set_state(repo, pull, body["state"], None, self.viewer)
            pull.state_reason = None
        pull.updated_at = self._now()
        return 200, self._pull_json(repo, pull), {}


def _simple_user(login: str, user_id: int, kind: str) -> dict[str, Any]:
    url = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": f"U_{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": kind,
        "site_admin": False,
    }


def _copilot_user() -> dict[str, Any]:
    """The Copilot coding agent as GitHub shows it among assignees and PR authors."""
    return _simple_user(COPILOT_LOGIN, COPILOT_ID, COPILOT_TYPE)


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # Weak comparison, as for If-None-Match: W/"x" matches "x".
    wanted = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == wanted for candidate in header.split(","))
