"""The GitHub client a policy names, built from its Secret and reused, and the check that it can work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from selfheal.adapters.github import BadCredentials, NotFound
from selfheal.domain.policy import GitHubSpec
from selfheal.domain.ticket import Reason
from selfheal.errors import SelfHealError, TransientError
from selfheal.services.judge import secret_digest
from selfheal.services.ports import GitHubPort
from selfheal.services.runtime import Runtime

# A token and repository that worked are asked about again after this long.
ACCESS_RECHECK_SECONDS = 300.0


async def github_client(runtime: Runtime, namespace: str, gh: GitHubSpec) -> GitHubPort:
    """The client for the policy's repository and current token, built once and kept in the runtime."""
    ref = gh.token_secret_ref
    token = await runtime.kube.read_secret_key(namespace, ref.name, ref.key)
    key = ("github", gh.api_url, gh.repository, secret_digest(token))
    client = runtime.clients.get(key)
    if client is None:
        for stale in [k for k in runtime.clients if k[:3] == key[:3]]:
            await runtime.clients.pop(stale).aclose()
        client = runtime.github(gh.api_url, token, gh.repository)
        runtime.clients[key] = client
    return client


@dataclass(frozen=True)
class Access:
    """Whether the token can see the repository; ``reason`` names why not."""

    ok: bool
    reason: str = ""
    message: str = ""
    checked_at: datetime | None = None


async def check_access(runtime: Runtime, namespace: str, gh: GitHubSpec, now: datetime) -> Access:
    """Ask GitHub once per token and repository, and again after a while (sooner after a refusal).

    A bad token or an unknown repository is a readiness problem; GitHub being down or rate limited
    is not (the answer stays what it was, or unknown and fine).
    """
    client = await github_client(runtime, namespace, gh)
    key = (gh.api_url, gh.repository)
    checked_with, known = runtime.github_access.get(key, (None, None))
    if checked_with is not client:  # a new token: what the old one was told does not count
        known = None
    if known is not None and known.checked_at is not None:
        wait = ACCESS_RECHECK_SECONDS if known.ok else runtime.config.github_refused_retry_seconds
        if (now - known.checked_at).total_seconds() < wait:
            return known
    try:
        await client.check_access()
        access = Access(True, checked_at=now)
    except BadCredentials as e:
        access = Access(False, Reason.BAD_CREDENTIALS, f"GitHub refused the token for {gh.repository}: {e}", now)
    except NotFound as e:
        access = Access(
            False,
            Reason.REPOSITORY_NOT_FOUND,
            f"GitHub repository {gh.repository} not found or not visible to the token: {e}",
            now,
        )
    except TransientError:
        return known or Access(True)
    except SelfHealError as e:
        access = Access(False, Reason.GITHUB_UNAVAILABLE, f"GitHub refused the access check: {e}", now)
    runtime.github_access[key] = (client, access)
    return access
