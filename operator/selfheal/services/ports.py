"""The adapter interfaces the services depend on, as Protocols: the real adapters and the test fakes satisfy them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from selfheal.adapters.github import Comment, Issue, PullRequest, Repository
from selfheal.domain.argo import AnalysisRun, Rollout
from selfheal.domain.evidence import EventRecord


class KubePort(Protocol):
    """What the services ask of the Kubernetes API (``adapters.kube.KubeAdapter``)."""

    async def get_rollout_obj(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def get_rollout(self, namespace: str, name: str) -> Rollout | None: ...

    async def patch_rollout_status(
        self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]: ...

    async def patch_rollout(
        self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]: ...

    async def list_analysis_runs(
        self, namespace: str, rollout_uid: str, *, pod_hash: str | None = None
    ) -> list[AnalysisRun]: ...

    async def get_replicaset(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def list_pods(
        self, namespace: str, match_labels: Mapping[str, str], pod_hash: str | None = None
    ) -> list[dict[str, Any]]: ...

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
    ) -> str: ...

    async def list_events(self, namespace: str, object_names: set[str] | frozenset[str]) -> list[EventRecord]: ...

    async def create_event(
        self,
        involved: Mapping[str, Any],
        *,
        reason: str,
        message: str,
        type: str = "Normal",
        now: datetime | None = None,
    ) -> dict[str, Any]: ...

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str: ...

    async def get_ticket(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def create_ticket(self, namespace: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]: ...

    async def patch_ticket_status(
        self, namespace: str, name: str, body: Mapping[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]: ...

    async def list_tickets(self, namespace: str, rollout: str | None = None) -> list[dict[str, Any]]: ...

    async def get_policy(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def patch_policy_status(self, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]: ...


class GitHubPort(Protocol):
    """What the services ask of one repository on GitHub (``adapters.github.GitHubClient``)."""

    async def aclose(self) -> None: ...

    async def check_access(self) -> Repository: ...

    async def find_issue(
        self, signature: str, *, fingerprint: str = "", labels: list[str] | None = None, max_pages: int = 20
    ) -> Issue | None: ...

    async def create_issue(
        self, title: str, body: str, labels: list[str] | None = None, assignees: list[str] | None = None
    ) -> Issue: ...

    async def get_issue(self, number: int, etag: str | None = None) -> tuple[Issue | None, str | None]: ...

    async def update_issue(
        self,
        number: int,
        *,
        state: str | None = None,
        state_reason: str | None = None,
        labels: list[str] | None = None,
        title: str | None = None,
        body: str | None = None,
    ) -> Issue: ...

    async def add_labels(self, number: int, labels: list[str]) -> list[str]: ...

    async def comment(self, number: int, body: str) -> Comment: ...

    async def comments(self, number: int) -> list[Comment]: ...

    async def assign(self, number: int, login: str) -> bool: ...

    async def assign_copilot(
        self,
        number: int,
        base_branch: str | None = None,
        custom_instructions: str | None = None,
        target_repo: str | None = None,
    ) -> bool: ...

    async def linked_pull_requests(
        self, number: int, *, require_closing_keyword: bool = True, scan_pulls: bool = True
    ) -> list[PullRequest]: ...


class GitHubConnector(Protocol):
    """Builds the client for one repository from its API URL and token."""

    def __call__(self, api_url: str, token: str, repository: str) -> GitHubPort: ...
