"""In-memory fakes of our own adapter interfaces (KubePort, GitHubPort, the analyzer), for fast service tests.

They keep state the way the real systems do where the services rely on it: patches are JSON merge
patches applied to the stored objects, a second ticket create answers "already there", an issue
carries its fingerprint marker in its body. Nothing here speaks a wire protocol: the integration
tests do that against the real apiserver and the stand-in servers.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from selfheal.adapters.github import Comment, Issue, Label, PullRequest, Repository, User
from selfheal.domain.argo import POD_HASH_LABEL, AnalysisRun, Rollout
from selfheal.domain.evidence import EventRecord
from selfheal.domain.prompt import LLMVerdict, PromptBundle
from selfheal.errors import AnalyzerUnavailable, ConfigError, Conflict, PermanentError, SelfHealError
from selfheal.services.judge import AnalyzerClient
from selfheal.services.ports import GitHubPort, KubePort


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, ``None`` removes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _labels_match(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


@dataclass(frozen=True)
class PostedEvent:
    """An Event the services posted: about which object, why, and what it said."""

    object_name: str
    reason: str
    message: str
    type: str


@dataclass(frozen=True)
class SentPatch:
    """A merge patch the services sent: ``target`` is ``rollout``, ``rollout/status``, ``ticket/status`` or
    ``policy/status``."""

    target: str
    namespace: str
    name: str
    body: dict[str, Any]


class FakeKube:
    """The Kubernetes API as the services see it (``KubePort``), held in dictionaries.

    ``fail[method]`` raises once from that method; ``log_gate``, when set, holds every log read until
    it is opened, so a test can keep an analysis in flight (``reading`` is set once one waits there).
    """

    def __init__(self) -> None:
        self.rollouts: dict[tuple[str, str], dict[str, Any]] = {}
        self.replicasets: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[str, list[dict[str, Any]]] = {}
        self.logs: dict[tuple[str, str, str, bool], str] = {}
        self.analysis_runs: dict[str, list[dict[str, Any]]] = {}
        self.events: dict[str, list[EventRecord]] = {}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.tickets: dict[tuple[str, str], dict[str, Any]] = {}
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}
        self.posted: list[PostedEvent] = []
        self.patches: list[SentPatch] = []
        self.calls: Counter[str] = Counter()
        self.fail: dict[str, SelfHealError] = {}
        self.log_gate: asyncio.Event | None = None
        self.reading = asyncio.Event()
        self._uids = itertools.count(1)

    # -- test set-up -------------------------------------------------------------------------------

    def put_rollout(self, obj: Mapping[str, Any]) -> None:
        """Store (or replace, as a controller or a human would) a Rollout; each write is a new version."""
        stored = copy.deepcopy(dict(obj))
        meta = stored.setdefault("metadata", {})
        previous = self.rollouts.get((meta["namespace"], meta["name"]))
        version = int(((previous or {}).get("metadata") or {}).get("resourceVersion") or 0)
        meta["resourceVersion"] = str(version + 1)
        self.rollouts[(meta["namespace"], meta["name"])] = stored

    def rollout(self, namespace: str, name: str) -> Rollout:
        return Rollout.from_obj(self.rollouts[(namespace, name)])

    def rollout_patches(self) -> list[SentPatch]:
        return [p for p in self.patches if p.target.startswith("rollout")]

    def _called(self, method: str) -> None:
        self.calls[method] += 1
        error = self.fail.pop(method, None)
        if error is not None:
            raise error

    # -- Rollouts ----------------------------------------------------------------------------------

    async def get_rollout_obj(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._called("get_rollout_obj")
        obj = self.rollouts.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def get_rollout(self, namespace: str, name: str) -> Rollout | None:
        obj = await self.get_rollout_obj(namespace, name)
        return Rollout.from_obj(obj) if obj is not None else None

    def _patch_rollout(
        self, target: str, namespace: str, name: str, body: Mapping[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """A JSON merge patch with the apiserver's optimistic concurrency: a stale ``resource_version`` is refused."""
        self._called(f"patch_{target.replace('/', '_')}")
        if (namespace, name) not in self.rollouts:
            raise PermanentError(f"rollouts.argoproj.io {namespace}/{name} not found")
        current = self.rollouts[(namespace, name)]
        meta = current.setdefault("metadata", {})
        stored = str(meta.get("resourceVersion") or "")
        if resource_version is not None and resource_version != stored:
            raise Conflict(
                f"rollouts.argoproj.io {namespace}/{name} changed: version {resource_version} is not {stored}"
            )
        self.patches.append(SentPatch(target, namespace, name, copy.deepcopy(dict(body))))
        patched = merge_patch(current, body)
        patched.setdefault("metadata", {})["resourceVersion"] = str(int(stored or 0) + 1)
        self.rollouts[(namespace, name)] = patched
        return copy.deepcopy(patched)

    async def patch_rollout_status(
        self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        return self._patch_rollout("rollout/status", namespace, name, body, resource_version)

    async def patch_rollout(
        self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        return self._patch_rollout("rollout", namespace, name, body, resource_version)

    async def list_analysis_runs(
        self, namespace: str, rollout_uid: str, *, pod_hash: str | None = None
    ) -> list[AnalysisRun]:
        self._called("list_analysis_runs")
        runs = [AnalysisRun.from_obj(obj) for obj in self.analysis_runs.get(namespace, [])]
        owned = [run for run in runs if run.is_owned_by(rollout_uid) and (not pod_hash or run.pod_hash == pod_hash)]
        return sorted(owned, key=lambda r: (r.creation_timestamp or datetime.min.replace(tzinfo=UTC), r.name))

    # -- ReplicaSets, pods, logs, events -----------------------------------------------------------

    async def get_replicaset(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._called("get_replicaset")
        obj = self.replicasets.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def list_pods(
        self, namespace: str, match_labels: Mapping[str, str], pod_hash: str | None = None
    ) -> list[dict[str, Any]]:
        self._called("list_pods")
        wanted = {**match_labels, **({POD_HASH_LABEL: pod_hash} if pod_hash else {})}
        return [
            copy.deepcopy(pod)
            for pod in self.pods.get(namespace, [])
            if _labels_match((pod.get("metadata") or {}).get("labels") or {}, wanted)
        ]

    async def read_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        since_seconds: int | None = None,
        previous: bool = False,
    ) -> str:
        self.reading.set()
        if self.log_gate is not None:
            await self.log_gate.wait()
        self._called("read_log")
        text = self.logs.get((namespace, pod, container, previous), "")
        lines = text.splitlines(keepends=True)
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        text = "".join(lines)
        if limit_bytes is not None:
            text = text.encode()[:limit_bytes].decode(errors="ignore")
        return text

    async def list_events(self, namespace: str, object_names: set[str] | frozenset[str]) -> list[EventRecord]:
        self._called("list_events")
        return [e for e in self.events.get(namespace, []) if e.object_name in object_names]

    async def create_event(
        self,
        involved: Mapping[str, Any],
        *,
        reason: str,
        message: str,
        type: str = "Normal",
        now: datetime | None = None,
    ) -> dict[str, Any]:
        self._called("create_event")
        meta = involved.get("metadata") or involved
        self.posted.append(PostedEvent(meta.get("name", ""), reason, message, type))
        return {"reason": reason, "message": message, "type": type}

    # -- Secrets -----------------------------------------------------------------------------------

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        self._called("read_secret_key")
        data = self.secrets.get((namespace, name))
        if data is None:
            raise ConfigError(f"Secret {namespace}/{name} not found (needed for its key {key!r})")
        if key not in data:
            raise ConfigError(f"Secret {namespace}/{name} has no key {key!r} (keys present: {', '.join(sorted(data))})")
        return data[key]

    # -- RemediationTickets ------------------------------------------------------------------------

    async def get_ticket(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._called("get_ticket")
        obj = self.tickets.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def create_ticket(self, namespace: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        self._called("create_ticket")
        name = body["metadata"]["name"]
        existing = self.tickets.get((namespace, name))
        if existing is not None:  # the apiserver's 409, answered as the adapter does
            return copy.deepcopy(existing), False
        obj = copy.deepcopy(dict(body))
        obj["metadata"] = {
            **obj["metadata"],
            "namespace": namespace,
            "uid": f"ticket-uid-{next(self._uids)}",
            "generation": 1,
            "resourceVersion": "1",
            "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.tickets[(namespace, name)] = obj
        return copy.deepcopy(obj), True

    def put_ticket(self, obj: Mapping[str, Any]) -> None:
        """Store a ticket as a human or another writer would (a new version), status included."""
        stored = copy.deepcopy(dict(obj))
        meta = stored.setdefault("metadata", {})
        previous = self.tickets.get((meta["namespace"], meta["name"]))
        meta["resourceVersion"] = str(int(((previous or {}).get("metadata") or {}).get("resourceVersion") or 0) + 1)
        self.tickets[(meta["namespace"], meta["name"])] = stored

    async def patch_ticket_status(
        self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        """A merge patch on the status, refused (`Conflict`) when ``resource_version`` is not the stored one."""
        self._called("patch_ticket_status")
        if (namespace, name) not in self.tickets:
            raise PermanentError(f"remediationtickets.selfheal.dev {namespace}/{name} not found")
        current = self.tickets[(namespace, name)]
        stored = str((current.get("metadata") or {}).get("resourceVersion") or "0")
        if resource_version is not None and resource_version != stored:
            raise Conflict(f"remediationtickets {namespace}/{name} changed: version {resource_version} is not {stored}")
        self.patches.append(SentPatch("ticket/status", namespace, name, copy.deepcopy(dict(body))))
        patched = merge_patch(current, {"status": body.get("status")})
        patched.setdefault("metadata", {})["resourceVersion"] = str(int(stored) + 1)
        self.tickets[(namespace, name)] = patched
        return copy.deepcopy(patched)

    async def list_tickets(self, namespace: str, rollout: str | None = None) -> list[dict[str, Any]]:
        self._called("list_tickets")
        return [
            copy.deepcopy(obj)
            for (ns, _), obj in sorted(self.tickets.items())
            if ns == namespace and (rollout is None or (obj.get("spec") or {}).get("rollout") == rollout)
        ]

    # -- SelfHealingPolicies -----------------------------------------------------------------------

    async def get_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._called("get_policy")
        obj = self.policies.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def patch_policy_status(self, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A merge patch on the policy's status; a policy nobody stored yet is kept as its status alone."""
        self._called("patch_policy_status")
        self.patches.append(SentPatch("policy/status", namespace, name, copy.deepcopy(dict(body))))
        current = self.policies.get((namespace, name)) or {"metadata": {"name": name, "namespace": namespace}}
        self.policies[(namespace, name)] = merge_patch(current, {"status": body.get("status")})
        return copy.deepcopy(self.policies[(namespace, name)])


class FakeGitHub:
    """One repository as the services see it (``GitHubPort``): issues, comments, labels, assignees, linked PRs."""

    def __init__(self, repository: str = "acme/shop", *, copilot: bool = True) -> None:
        self.repository = repository
        self.copilot = copilot
        self.issues: dict[int, Issue] = {}
        self.issue_comments: dict[int, list[Comment]] = {}
        self.pulls: dict[int, list[PullRequest]] = {}
        self.access_error: SelfHealError | None = None
        self.calls: Counter[str] = Counter()
        self.closed = False
        self._numbers = itertools.count(1)
        self._comment_ids = itertools.count(1)

    def _url(self, number: int) -> str:
        return f"https://github.com/{self.repository}/issues/{number}"

    def link_pull(self, issue: int, pull: PullRequest) -> None:
        self.pulls.setdefault(issue, []).append(pull)

    async def aclose(self) -> None:
        self.closed = True

    async def check_access(self) -> Repository:
        self.calls["check_access"] += 1
        if self.access_error is not None:
            raise self.access_error
        return Repository(full_name=self.repository)

    async def find_issue(
        self, signature: str, *, fingerprint: str = "", labels: list[str] | None = None, max_pages: int = 20
    ) -> Issue | None:
        self.calls["find_issue"] += 1
        near = None
        for number in sorted(self.issues, reverse=True):
            issue = self.issues[number]
            if not set(labels or []) <= set(issue.label_names):
                continue
            if fingerprint and issue.fingerprint == fingerprint:
                return issue
            if near is None and signature and issue.signature == signature:
                near = issue
        return near

    async def create_issue(
        self, title: str, body: str, labels: list[str] | None = None, assignees: list[str] | None = None
    ) -> Issue:
        self.calls["create_issue"] += 1
        number = next(self._numbers)
        self.issues[number] = Issue(
            number=number,
            title=title,
            body=body,
            labels=[Label(name=n) for n in labels or []],
            assignees=[User(login=login) for login in assignees or []],
            html_url=self._url(number),
            created_at=datetime.now(UTC),
        )
        return self.issues[number]

    async def get_issue(self, number: int, etag: str | None = None) -> tuple[Issue | None, str | None]:
        self.calls["get_issue"] += 1
        return self.issues.get(number), None

    async def update_issue(
        self,
        number: int,
        *,
        state: str | None = None,
        state_reason: str | None = None,
        labels: list[str] | None = None,
        title: str | None = None,
        body: str | None = None,
    ) -> Issue:
        self.calls["update_issue"] += 1
        issue = self.issues[number]
        changes: dict[str, Any] = {"title": title, "body": body, "state_reason": state_reason}
        changes = {k: v for k, v in changes.items() if v is not None}
        if state is not None:
            changes["state"] = state
            changes["closed_at"] = datetime.now(UTC) if state == "closed" else None
        if labels is not None:
            changes["labels"] = [Label(name=n) for n in labels]
        self.issues[number] = issue.model_copy(update=changes)
        return self.issues[number]

    async def add_labels(self, number: int, labels: list[str]) -> list[str]:
        self.calls["add_labels"] += 1
        issue = self.issues[number]
        names = list(dict.fromkeys([*issue.label_names, *labels]))
        self.issues[number] = issue.model_copy(update={"labels": [Label(name=n) for n in names]})
        return names

    async def comment(self, number: int, body: str) -> Comment:
        self.calls["comment"] += 1
        posted = Comment(id=next(self._comment_ids), body=body, created_at=datetime.now(UTC))
        self.issue_comments.setdefault(number, []).append(posted)
        return posted

    async def comments(self, number: int) -> list[Comment]:
        self.calls["comments"] += 1
        return list(self.issue_comments.get(number, []))

    async def assign(self, number: int, login: str) -> bool:
        self.calls["assign"] += 1
        issue = self.issues[number]
        self.issues[number] = issue.model_copy(update={"assignees": [*issue.assignees, User(login=login)]})
        return True

    async def assign_copilot(
        self,
        number: int,
        base_branch: str | None = None,
        custom_instructions: str | None = None,
        target_repo: str | None = None,
    ) -> bool:
        self.calls["assign_copilot"] += 1
        if self.copilot:
            issue = self.issues[number]
            copilot = User(login="Copilot", type="Bot")
            self.issues[number] = issue.model_copy(update={"assignees": [*issue.assignees, copilot]})
        return self.copilot

    async def linked_pull_requests(
        self, number: int, *, require_closing_keyword: bool = True, scan_pulls: bool = True
    ) -> list[PullRequest]:
        self.calls["linked_pull_requests"] += 1
        return list(self.pulls.get(number, []))


@dataclass
class AnalyzerAnswer:
    """What an analyzer client returns: the validated verdict and what it cost."""

    verdict: LLMVerdict
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class FakeAnalyzer:
    """An LLM or A2A analyzer that gives a fixed answer (or is unavailable) and keeps the prompts it got."""

    answer: LLMVerdict | None = None
    unavailable: str = ""
    prompt_tokens: int = 900
    completion_tokens: int = 60
    prompts: list[PromptBundle] = field(default_factory=list)

    async def judge(self, bundle: PromptBundle) -> AnalyzerAnswer:
        self.prompts.append(bundle)
        if self.unavailable or self.answer is None:
            raise AnalyzerUnavailable(self.unavailable or "no answer configured")
        return AnalyzerAnswer(self.answer, self.prompt_tokens, self.completion_tokens)


def conforms(kube: FakeKube, github: FakeGitHub, analyzer: FakeAnalyzer) -> tuple[KubePort, GitHubPort, AnalyzerClient]:
    """Where mypy checks that the fakes still satisfy the interfaces the real adapters satisfy."""
    return kube, github, analyzer
