"""The real GitHubClient against the real GitHub stand-in, over loopback HTTP: no mocks."""

from __future__ import annotations

import time

import pytest

from selfheal.adapters.github import (
    BadCredentials,
    Forbidden,
    GitHubClient,
    NotFound,
    ValidationFailed,
)
from selfheal.domain.shared_issue import fingerprint_marker, first_line
from selfheal.errors import PermanentError, RateLimitedError, TransientError
from selfheal.testing.github_server import GitHubStandIn

REPO = "acme/shop"
FP = "a1b2c3d4e5f60718"
SIG = "5e5e5e5e5e5e5e5e"


@pytest.fixture
def gh():
    with GitHubStandIn(token="t", repos=[REPO]) as server:
        yield server


@pytest.fixture
async def client(gh):
    github = GitHubClient(gh.api_url, "t", REPO, backoff=0.01)
    yield github
    await github.aclose()


def body_for(fp: str, extra: str = "") -> str:
    return f"{fingerprint_marker(fp)}\n\nsomething failed\n{extra}"


# -- issues and dedup -------------------------------------------------------------------------------


async def test_sends_github_headers(gh, client):
    await client.check_access()
    headers = {k.lower(): v for k, v in gh.last_request_headers.items()}
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["authorization"] == "Bearer t"
    assert headers["user-agent"].startswith("selfheal")


async def test_find_by_fingerprint_walks_three_pages(gh, client):
    created = await client.create_issue("[selfheal] checkout: panic", body_for(FP), ["selfheal"])
    # 250 newer issues push the target to page 3 (newest first, 100 per page)
    for i in range(250):
        gh.add_issue(REPO, f"other {i}", body_for(f"{i:08x}ff"), ["selfheal"])
    gh.requests.clear()

    found = await client.find_issue("", fingerprint=FP, labels=["selfheal"])

    assert found is not None and found.number == created.number
    assert found.fingerprint == FP
    assert gh.count("GET", f"/repos/{REPO}/issues") == 3


async def test_find_by_fingerprint_ignores_spoofed_markers_pulls_and_other_labels(gh, client):
    # the marker only inside log examples of another issue: its own marker comes first
    gh.add_issue(REPO, "spoof", body_for("0000000000", extra=fingerprint_marker(FP)), ["selfheal"])
    gh.add_issue(REPO, "unlabelled", body_for(FP), ["bug"])
    gh.open_pull(REPO, "a pull", body_for(FP))
    assert await client.find_issue("", fingerprint=FP, labels=["selfheal"]) is None


async def test_find_matches_the_signature_and_prefers_the_exact_fingerprint(gh, client):
    near = gh.add_issue(REPO, "near", f"{first_line('ab' * 8, SIG, 'shop/web-1')}\n\nx", ["selfheal"])
    assert (await client.find_issue(SIG, fingerprint=FP, labels=["selfheal"])).number == near
    exact = gh.add_issue(REPO, "exact", f"{first_line(FP, SIG, 'eu/web-1')}\n\nx", ["selfheal"])
    newer = gh.add_issue(REPO, "newer near", f"{first_line('cd' * 8, SIG, 'us/web-1')}\n\nx", ["selfheal"])
    assert newer > exact
    assert (await client.find_issue(SIG, fingerprint=FP, labels=["selfheal"])).number == exact
    assert (await client.find_issue(SIG, labels=["selfheal"])).number == newer
    assert await client.find_issue("ef" * 8, fingerprint="01" * 8, labels=["selfheal"]) is None


async def test_find_by_fingerprint_sees_closed_issues(gh, client):
    number = gh.add_issue(REPO, "old", body_for(FP), ["selfheal"], state="closed")
    found = await client.find_issue("", fingerprint=FP, labels=["selfheal"])
    assert found is not None and found.number == number and found.state == "closed"


async def test_issue_lifecycle(gh, client):
    issue = await client.create_issue("t", body_for(FP), ["selfheal"])
    assert issue.label_names == ["selfheal"]
    labels = await client.add_labels(issue.number, ["jules", "selfheal"])
    assert labels == ["selfheal", "jules"]
    comment = await client.comment(issue.number, "seen again")
    assert comment.body == "seen again"
    assert [c.body for c in await client.comments(issue.number)] == ["seen again"]
    closed = await client.update_issue(issue.number, state="closed", state_reason="completed")
    assert (closed.state, closed.state_reason) == ("closed", "completed")
    reopened = await client.update_issue(issue.number, state="open")
    assert reopened.state == "open" and reopened.closed_at is None
    events = [e.event for e in (await client.timeline(issue.number))[0] or []]
    assert events == ["labeled", "labeled", "commented", "closed", "reopened"]


# -- conditional requests ---------------------------------------------------------------------------


async def test_etag_304_costs_no_budget(gh, client):
    issue = await client.create_issue("t", body_for(FP), ["selfheal"])
    fetched, etag = await client.get_issue(issue.number)
    assert fetched is not None and etag
    budget = gh.remaining

    unchanged, same = await client.get_issue(issue.number, etag=etag)

    assert unchanged is None and same == etag
    assert gh.requests[-1].status == 304
    assert gh.remaining == budget
    assert client.rate_limit is not None and client.rate_limit.remaining == budget

    await client.comment(issue.number, "news")
    changed, new_etag = await client.get_issue(issue.number, etag=etag)
    assert changed is not None and changed.comments == 1 and new_etag != etag


async def test_timeline_change_token_across_pages(gh, client):
    issue = await client.create_issue("t", body_for(FP))
    await client.add_labels(issue.number, [f"l{i}" for i in range(120)])
    events, token = await client.timeline(issue.number)
    assert events is not None and len(events) == 120 and token
    assert gh.count("GET", f"/repos/{REPO}/issues/{issue.number}/timeline") == 2
    budget = gh.remaining

    again, same = await client.timeline(issue.number, etag=token)
    assert again is None and same == token and gh.remaining == budget

    await client.comment(issue.number, "one more event")
    events, _ = await client.timeline(issue.number, etag=token)
    assert events is not None and len(events) == 121 and events[-1].event == "commented"


# -- retries ----------------------------------------------------------------------------------------


async def test_server_errors_are_retried(gh, client):
    gh.fail_next(2, status=500)
    repo = await client.check_access()
    assert repo.full_name == REPO
    assert [r.status for r in gh.requests] == [500, 500, 200]


async def test_server_errors_give_up_as_transient(gh, client):
    gh.fail_next(5, status=502)
    with pytest.raises(TransientError) as caught:
        await client.check_access()
    assert not isinstance(caught.value, RateLimitedError)
    assert len(gh.requests) == 3


async def test_dropped_connection_is_retried(gh, client):
    issue = await client.create_issue("t", body_for(FP))
    gh.requests.clear()
    gh.drop_next(1)
    fetched, _ = await client.get_issue(issue.number)
    assert fetched is not None and fetched.number == issue.number
    assert [r.status for r in gh.requests] == [0, 200]


async def test_create_is_not_blindly_repeated_after_a_lost_answer(gh, client):
    gh.drop_next(1)
    with pytest.raises(TransientError):
        await client.create_issue("t", body_for(FP))
    assert gh.count("POST") == 1  # the caller re-finds by fingerprint before creating again


async def test_create_is_not_repeated_after_a_5xx(gh, client):
    gh.fail_next(1, status=502)
    with pytest.raises(TransientError):
        await client.comment(gh.add_issue(REPO, "t"), "hello")
    assert gh.count("POST") == 1


async def test_slow_answers_time_out_as_transient(gh):
    gh.slow(0.5)
    started = time.monotonic()
    async with GitHubClient(gh.api_url, "t", REPO, timeout=0.2, backoff=0.01) as github:
        with pytest.raises(TransientError, match="ReadTimeout"):
            await github.check_access()
        elapsed = time.monotonic() - started
        gh.slow(0)
        assert (await github.check_access()).full_name == REPO
    assert 0.6 <= elapsed < 2.0  # three attempts of 0.2 s, no long sleeps


# -- rate limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 403])
async def test_secondary_rate_limit_raises_with_retry_after(gh, client, status):
    gh.rate_limit_next(retry_after=7, status=status)
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        await client.check_access()
    assert caught.value.delay == 7
    assert len(gh.requests) == 1  # no retry, no busy loop
    assert time.monotonic() - started < 1.0


async def test_primary_exhaustion_waits_until_reset(gh, client):
    gh.exhaust_primary(reset_in=30)
    with pytest.raises(RateLimitedError) as caught:
        await client.check_access()
    assert 27 <= caught.value.delay <= 31
    assert len(gh.requests) == 1
    assert client.rate_limit is not None and client.rate_limit.remaining == 0


async def test_rate_limit_status_is_free(gh, client):
    await client.check_access()
    budget = gh.remaining
    status = await client.rate_limit_status()
    assert status is not None and status.remaining == budget and gh.remaining == budget


# -- permanent errors -------------------------------------------------------------------------------


async def test_wrong_token_is_bad_credentials(gh):
    async with GitHubClient(gh.api_url, "wrong", REPO) as github:
        with pytest.raises(BadCredentials) as caught:
            await github.check_access()
    assert isinstance(caught.value, PermanentError) and caught.value.status == 401
    assert "Bad credentials" in str(caught.value)


async def test_revoked_token_is_bad_credentials(gh, client):
    gh.bad_token()
    with pytest.raises(BadCredentials):
        await client.find_issue(SIG, fingerprint=FP, labels=["selfheal"])
    assert len(gh.requests) == 1


async def test_unknown_repository_is_not_found(gh):
    async with GitHubClient(gh.api_url, "t", "acme/nope") as github:
        with pytest.raises(NotFound) as caught:
            await github.check_access()
    assert isinstance(caught.value, PermanentError) and caught.value.status == 404


async def test_plain_403_is_forbidden_not_rate_limited(gh, client):
    gh.fail_next(1, status=403)
    with pytest.raises(Forbidden) as caught:
        await client.check_access()
    assert isinstance(caught.value, PermanentError) and "not accessible" in str(caught.value)


async def test_unknown_issue_is_not_found(client):
    with pytest.raises(NotFound):
        await client.get_issue(4242)


async def test_strict_labels_fail_validation_naming_the_label(gh, client):
    gh.strict_labels = True
    with pytest.raises(ValidationFailed) as caught:
        await client.create_issue("t", body_for(FP), ["no-such-label"])
    assert "no-such-label" in str(caught.value)
    assert caught.value.errors[0]["resource"] == "Label"
    assert gh.issues(REPO) == []


async def test_unknown_labels_are_created_by_default(gh, client):
    issue = await client.create_issue("t", body_for(FP), ["brand-new"])
    assert issue.label_names == ["brand-new"]


# -- coding agents ----------------------------------------------------------------------------------


async def test_copilot_assignment_is_confirmed(gh, client):
    issue = await client.create_issue("t", body_for(FP), ["selfheal"])
    assert await client.assign_copilot(issue.number, "main", "Fix the panic; add a test.", REPO)
    assert [a["login"] for a in gh.issue(issue.number)["assignees"]] == ["Copilot"]
    assert gh.agent_assignments == [
        (
            REPO,
            issue.number,
            {"target_repo": REPO, "base_branch": "main", "custom_instructions": "Fix the panic; add a test."},
        )
    ]


async def test_copilot_silent_failure_is_detected(gh, client):
    gh.copilot_enabled = False
    issue = await client.create_issue("t", body_for(FP), ["selfheal"])
    assert await client.assign_copilot(issue.number, "main", "", REPO) is False
    assert gh.issue(issue.number)["assignees"] == []


async def test_assign_reports_ignored_logins(gh, client):
    issue = await client.create_issue("t", body_for(FP))
    gh.collaborators.add("alice")
    assert await client.assign(issue.number, "alice") is True
    assert await client.assign(issue.number, "stranger") is False


async def test_linked_pull_requests_via_timeline(gh, client):
    issue = await client.create_issue("t", body_for(FP), ["selfheal"])
    fix = gh.open_pull(REPO, "[WIP] Fix panic", f"Fixes #{issue.number}\n\nCo-authored by Copilot", head_sha="c0ffee")
    gh.open_pull(REPO, "unrelated", f"see #{issue.number} for context", author="alice", draft=False)

    linked = await client.linked_pull_requests(issue.number)
    assert [(p.number, p.draft, p.merged, p.head.sha) for p in linked] == [(fix, True, False, "c0ffee")]
    assert linked[0].user is not None and linked[0].user.login == "Copilot"
    mentioned = await client.linked_pull_requests(issue.number, require_closing_keyword=False)
    assert len(mentioned) == 2

    gh.mark_ready(fix)
    sha = gh.merge_pull(fix)
    merged = await client.linked_pull_requests(issue.number)
    assert merged[0].merged and merged[0].merge_commit_sha == sha
    closed, _ = await client.get_issue(issue.number)
    assert closed is not None and (closed.state, closed.state_reason) == ("closed", "completed")


async def test_linked_pull_requests_via_closing_keywords(gh, client):
    issue = await client.create_issue("t", body_for(FP))
    fix = gh.open_pull(REPO, "fix", f"This resolves {REPO}#{issue.number}.", cross_reference=False)
    assert [p.number for p in await client.linked_pull_requests(issue.number)] == [fix]
    assert await client.linked_pull_requests(issue.number, scan_pulls=False) == []


async def test_draft_pull_cannot_be_merged(gh):
    number = gh.open_pull(REPO, "wip", "Fixes #1")
    with pytest.raises(Exception, match="not mergeable"):
        gh.merge_pull(number)
