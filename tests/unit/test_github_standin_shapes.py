"""The GitHub stand-in answers with the fields GitHub's OpenAPI description marks required.

Required-field lists below come from GitHub's published OpenAPI description
(github/rest-api-description, descriptions/api.github.com, version 2022-11-28), read through the
schema names ``#/components/schemas/<name>`` cited on each list; the lists were checked against a
client generated from that description (kakasoo/github-sdk, src/structures/<schema>.ts). Only the
schemas selfheal reads are covered: issue, issue-comment, pull-request, timeline-cross-referenced-event
and simple-user, plus the rate-limit headers, error bodies and ``Link`` pagination.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from selfheal.testing.github_server import GitHubStandIn

REPO = "acme/shop"
NULL = type(None)

# components/schemas/simple-user (also nullable-simple-user when not null)
SIMPLE_USER: dict[str, tuple[type, ...]] = {
    "login": (str,),
    "id": (int,),
    "node_id": (str,),
    "avatar_url": (str,),
    "gravatar_id": (str, NULL),
    "url": (str,),
    "html_url": (str,),
    "followers_url": (str,),
    "following_url": (str,),
    "gists_url": (str,),
    "starred_url": (str,),
    "subscriptions_url": (str,),
    "organizations_url": (str,),
    "repos_url": (str,),
    "events_url": (str,),
    "received_events_url": (str,),
    "type": (str,),
    "site_admin": (bool,),
}

# components/schemas/issue
ISSUE: dict[str, tuple[type, ...]] = {
    "id": (int,),
    "node_id": (str,),
    "url": (str,),
    "repository_url": (str,),
    "labels_url": (str,),
    "comments_url": (str,),
    "events_url": (str,),
    "html_url": (str,),
    "number": (int,),
    "state": (str,),
    "title": (str,),
    "user": (dict, NULL),
    "labels": (list,),
    "assignee": (dict, NULL),
    "milestone": (dict, NULL),
    "locked": (bool,),
    "comments": (int,),
    "closed_at": (str, NULL),
    "created_at": (str,),
    "updated_at": (str,),
    "author_association": (str,),
}
# optional in components/schemas/issue, but selfheal reads them
ISSUE_READ = {"body": (str, NULL), "assignees": (list, NULL), "state_reason": (str, NULL)}

# components/schemas/issue-comment
ISSUE_COMMENT: dict[str, tuple[type, ...]] = {
    "id": (int,),
    "node_id": (str,),
    "url": (str,),
    "html_url": (str,),
    "user": (dict, NULL),
    "created_at": (str,),
    "updated_at": (str,),
    "issue_url": (str,),
    "author_association": (str,),
}

# components/schemas/pull-request
PULL_REQUEST: dict[str, tuple[type, ...]] = {
    "url": (str,),
    "id": (int,),
    "node_id": (str,),
    "html_url": (str,),
    "diff_url": (str,),
    "patch_url": (str,),
    "issue_url": (str,),
    "commits_url": (str,),
    "review_comments_url": (str,),
    "review_comment_url": (str,),
    "comments_url": (str,),
    "statuses_url": (str,),
    "number": (int,),
    "state": (str,),
    "locked": (bool,),
    "title": (str,),
    "user": (dict,),
    "body": (str, NULL),
    "labels": (list,),
    "milestone": (dict, NULL),
    "created_at": (str,),
    "updated_at": (str,),
    "closed_at": (str, NULL),
    "merged_at": (str, NULL),
    "merge_commit_sha": (str, NULL),
    "assignee": (dict, NULL),
    "head": (dict,),
    "base": (dict,),
    "_links": (dict,),
    "author_association": (str,),
    "auto_merge": (dict, NULL),
    "merged": (bool,),
    "mergeable": (bool, NULL),
    "mergeable_state": (str,),
    "merged_by": (dict, NULL),
    "comments": (int,),
    "review_comments": (int,),
    "maintainer_can_modify": (bool,),
    "commits": (int,),
    "additions": (int,),
    "deletions": (int,),
    "changed_files": (int,),
}
# pull-request head / base objects
PULL_REF = {"label": (str,), "ref": (str,), "repo": (dict, NULL), "sha": (str,), "user": (dict,)}
# pull-request _links entries
PULL_LINKS = ("comments", "commits", "statuses", "html", "issue", "review_comments", "review_comment", "self")

# components/schemas/timeline-cross-referenced-event; its source.issue is an issue
CROSS_REFERENCED: dict[str, tuple[type, ...]] = {
    "event": (str,),
    "created_at": (str,),
    "updated_at": (str,),
    "source": (dict,),
}

# https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api
RATE_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
)


def conforms(obj: Any, schema: dict[str, tuple[type, ...]], where: str) -> None:
    assert isinstance(obj, dict), f"{where}: not an object"
    missing = sorted(set(schema) - set(obj))
    assert not missing, f"{where}: missing required {missing}"
    for name, types in schema.items():
        value = obj[name]
        # bool is an int in Python: keep integers and booleans apart
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        assert ok, f"{where}.{name}: {type(value).__name__} is not {[t.__name__ for t in types]}"


def users_conform(obj: dict[str, Any], where: str, *names: str) -> None:
    for name in names:
        if obj.get(name) is not None:
            conforms(obj[name], SIMPLE_USER, f"{where}.{name}")


def issue_conforms(obj: dict[str, Any], where: str) -> None:
    conforms(obj, ISSUE, where)
    conforms(obj, ISSUE_READ, where)
    users_conform(obj, where, "user", "assignee")
    for index, user in enumerate(obj["assignees"] or []):
        conforms(user, SIMPLE_USER, f"{where}.assignees[{index}]")
    for label in obj["labels"]:
        assert isinstance(label, dict) and isinstance(label.get("name"), str) and isinstance(label.get("id"), int)


@pytest.fixture(scope="module")
def world():
    with GitHubStandIn(token="t", repos=[REPO]) as gh:
        http = httpx.Client(
            base_url=gh.api_url, headers={"Authorization": "Bearer t", "Accept": "application/vnd.github+json"}
        )
        issue = http.post(
            f"/repos/{REPO}/issues",
            json={"title": "t", "body": "b", "labels": ["selfheal"], "assignees": ["copilot-swe-agent[bot]"]},
        ).json()
        http.post(f"/repos/{REPO}/issues/{issue['number']}/comments", json={"body": "hello"})
        pull = gh.open_pull(REPO, "fix", f"Fixes #{issue['number']}", draft=False)
        gh.merge_pull(pull)
        yield gh, http, issue["number"], pull
        http.close()


def test_issue_shapes(world):
    _, http, number, pull = world
    issue = http.get(f"/repos/{REPO}/issues/{number}").json()
    issue_conforms(issue, "issue")
    assert "pull_request" not in issue
    assert issue["assignees"][0]["login"] == "Copilot" and issue["assignees"][0]["id"] == 198982749
    assert issue["assignees"][0]["type"] == "Bot"
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    listed = http.get(f"/repos/{REPO}/issues", params={"state": "all"}).json()
    for index, item in enumerate(listed):
        issue_conforms(item, f"issues[{index}]")
    as_issue = next(item for item in listed if item["number"] == pull)
    assert set(as_issue["pull_request"]) >= {"url", "html_url", "diff_url", "patch_url", "merged_at"}


def test_comment_shapes(world):
    _, http, number, _ = world
    created = http.post(f"/repos/{REPO}/issues/{number}/comments", json={"body": "again"})
    assert created.status_code == 201
    conforms(created.json(), ISSUE_COMMENT, "comment")
    for index, comment in enumerate(http.get(f"/repos/{REPO}/issues/{number}/comments").json()):
        conforms(comment, ISSUE_COMMENT, f"comments[{index}]")
        users_conform(comment, f"comments[{index}]", "user")


def test_pull_request_shapes(world):
    _, http, _, pull = world
    data = http.get(f"/repos/{REPO}/pulls/{pull}").json()
    conforms(data, PULL_REQUEST, "pull")
    users_conform(data, "pull", "user", "merged_by")
    for side in ("head", "base"):
        conforms(data[side], PULL_REF, f"pull.{side}")
    assert set(PULL_LINKS) <= set(data["_links"])
    assert data["merged"] is True and len(data["merge_commit_sha"]) == 40 and data["user"]["login"] == "Copilot"


def test_timeline_cross_referenced_shape(world):
    _, http, number, pull = world
    events = http.get(f"/repos/{REPO}/issues/{number}/timeline").json()
    kinds = [e["event"] for e in events]
    assert {"labeled", "assigned", "commented", "cross-referenced", "closed"} <= set(kinds)
    cross = next(e for e in events if e["event"] == "cross-referenced")
    conforms(cross, CROSS_REFERENCED, "cross-referenced")
    assert cross["source"]["type"] == "issue"
    issue_conforms(cross["source"]["issue"], "cross-referenced.source.issue")
    assert cross["source"]["issue"]["number"] == pull and "pull_request" in cross["source"]["issue"]
    closed = next(e for e in events if e["event"] == "closed")
    assert closed["commit_id"] and closed["actor"]["login"]


def test_rate_limit_headers_count_down(world):
    _, http, number, _ = world
    first = http.get(f"/repos/{REPO}/issues/{number}")
    second = http.get(f"/repos/{REPO}/issues/{number}")
    for response in (first, second):
        for header in RATE_HEADERS:
            assert header in response.headers, header
        assert response.headers["x-ratelimit-resource"] == "core"
        int(response.headers["x-ratelimit-reset"])
    assert int(second.headers["x-ratelimit-remaining"]) == int(first.headers["x-ratelimit-remaining"]) - 1
    assert int(second.headers["x-ratelimit-used"]) == int(first.headers["x-ratelimit-used"]) + 1
    limits = http.get("/rate_limit").json()
    assert set(limits["resources"]["core"]) >= {"limit", "used", "remaining", "reset"}


def test_etag_and_304(world):
    _, http, number, _ = world
    first = http.get(f"/repos/{REPO}/issues/{number}")
    etag = first.headers["etag"]
    cached = http.get(f"/repos/{REPO}/issues/{number}", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]


def test_error_bodies(world):
    gh, http, _, _ = world
    missing = http.get(f"/repos/{REPO}/issues/999")
    assert missing.status_code == 404
    assert missing.json()["message"] == "Not Found" and missing.json()["documentation_url"].startswith("https://")
    invalid = http.post(f"/repos/{REPO}/issues", json={"body": "no title"})
    assert invalid.status_code == 422 and invalid.json()["message"] == "Validation Failed"
    assert invalid.json()["errors"][0] == {"resource": "Issue", "code": "missing_field", "field": "title"}
    gh.strict_labels = True
    try:
        bad_label = http.post(f"/repos/{REPO}/issues", json={"title": "t", "labels": ["nope"]})
    finally:
        gh.strict_labels = False
    assert bad_label.status_code == 422
    assert bad_label.json()["errors"][0]["resource"] == "Label" and bad_label.json()["errors"][0]["value"] == "nope"
    unauthorized = httpx.get(f"{gh.api_url}/repos/{REPO}", headers={"Authorization": "Bearer wrong"})
    assert unauthorized.status_code == 401 and unauthorized.json()["message"] == "Bad credentials"


def test_link_pagination(world):
    gh, http, _, _ = world
    for i in range(7):
        gh.add_issue(REPO, f"page filler {i}")
    first = http.get(f"/repos/{REPO}/issues", params={"state": "all", "per_page": 3})
    assert set(first.links) == {"next", "last"}
    assert "per_page=3" in first.links["next"]["url"] and "page=2" in first.links["next"]["url"]
    last = http.get(first.links["last"]["url"])
    assert set(last.links) == {"prev", "first"}
    middle = http.get(first.links["next"]["url"])
    assert set(middle.links) == {"prev", "next", "last", "first"}
    assert len(first.json()) == 3 and 1 <= len(last.json()) <= 3
