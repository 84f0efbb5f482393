"""Credentials go only where they were configured: no redirect or next-page link carries them elsewhere."""

from __future__ import annotations

import pytest

from selfheal.adapters.a2a import A2AClient
from selfheal.adapters.github import GitHubClient, GitHubError
from selfheal.domain.prompt import PromptBundle
from selfheal.errors import AnalyzerUnavailable
from selfheal.testing.a2a_server import A2AAgentStandIn
from selfheal.testing.github_server import GitHubStandIn

TOKEN = "ghp_" + "T0k3n" * 7 + "x"
BUNDLE = PromptBundle(
    messages=[{"role": "system", "content": "judge"}, {"role": "user", "content": "evidence"}], estimated_tokens=10
)


@pytest.fixture
def gh_pair():
    with (
        GitHubStandIn(token=TOKEN, repos=["acme/shop"]) as home,
        GitHubStandIn(token=TOKEN, repos=["acme/shop"]) as away,
    ):
        yield home, away


async def test_a_next_page_on_another_host_is_not_followed_with_the_token(gh_pair) -> None:
    home, away = gh_pair
    for n in range(150):  # two pages of 100
        home.add_issue("acme/shop", f"issue {n}")
    home.page_link_base = away.api_url
    async with GitHubClient(home.api_url, TOKEN, "acme/shop") as client:
        with pytest.raises(GitHubError, match="next page is on"):
            await client.find_issue("0" * 32)
    assert away.requests == []  # the token never reached the other host


async def test_a_next_page_on_the_same_api_is_followed(gh_pair) -> None:
    home, _ = gh_pair
    for n in range(25):
        home.add_issue("acme/shop", f"issue {n}")
    async with GitHubClient(home.api_url, TOKEN, "acme/shop") as client:
        pages = [items async for _, items in client._pages("/repos/acme/shop/issues", {"per_page": 10})]
    assert [len(p) for p in pages] == [10, 10, 5]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_github_redirect_to_another_host_is_an_error_not_a_hop(gh_pair, status: int) -> None:
    home, away = gh_pair
    home.redirect_next(f"{away.api_url}/repos/acme/shop", status=status)
    async with GitHubClient(home.api_url, TOKEN, "acme/shop") as client:
        with pytest.raises(GitHubError, match=f"redirected \\({status}\\)"):
            await client.check_access()
    assert away.requests == []


async def test_an_a2a_redirect_is_analyzer_unavailable_and_the_other_agent_hears_nothing() -> None:
    with A2AAgentStandIn() as home, A2AAgentStandIn() as away:
        home.redirect(away.rpc_url, status=307)
        async with A2AClient(home.base_url, api_key="agent-key-123456", timeout=5, max_retries=0) as client:
            with pytest.raises(AnalyzerUnavailable, match="redirect"):
                await client.judge(BUNDLE)
        assert away.sends == []
