"""GitHub REST v3 adapter: issues, comments, assignees, timeline and pulls, translated into selfheal errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from selfheal.domain.issue import pr_references_issue
from selfheal.domain.shared_issue import parse_fingerprint, parse_signature
from selfheal.errors import PermanentError, RateLimitedError, TransientError

API_VERSION = "2022-11-28"
USER_AGENT = "selfheal"
PER_PAGE = 100
# Logins under which the Copilot coding agent shows up as an assignee.
COPILOT_LOGINS = frozenset({"copilot", "copilot-swe-agent", "copilot-swe-agent[bot]"})
COPILOT_ASSIGNEE = "copilot-swe-agent[bot]"
# GitHub's advice when a secondary rate limit names no wait: at least one minute.
SECONDARY_DEFAULT_DELAY = 60.0
# Conditional GETs remembered per client (URL and query -> ETag and answer).
ETAG_CACHE_SIZE = 512
# Headers that describe the wire form of a body, not the decoded body a cached answer carries.
_WIRE_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


# -- errors ----------------------------------------------------------------------------------------


class GitHubError(PermanentError):
    """GitHub refused the request for good. Carries GitHub's error body."""

    def __init__(
        self, message: str, *, status: int, errors: list[dict[str, Any]] | None = None, documentation_url: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []
        self.documentation_url = documentation_url


class BadCredentials(GitHubError):
    """401: the token is wrong, expired or revoked."""


class Forbidden(GitHubError):
    """403 that is not a rate limit: the token lacks a permission or scope."""


class NotFound(GitHubError):
    """404 (or 410): the repository, issue or pull request does not exist or the token cannot see it."""


class ValidationFailed(GitHubError):
    """422: GitHub rejected the payload; ``errors`` says which field (e.g. an invalid label)."""


# -- response models (only what selfheal reads) ---------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class User(_Model):
    login: str
    id: int = 0
    type: str = "User"


class Label(_Model):
    name: str


class Issue(_Model):
    number: int
    title: str = ""
    body: str | None = None
    state: str = "open"
    state_reason: str | None = None
    labels: list[Label] = Field(default_factory=list)
    assignees: list[User] = Field(default_factory=list)
    user: User | None = None
    html_url: str = ""
    comments: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    pull_request: dict[str, Any] | None = None

    @property
    def is_pull_request(self) -> bool:
        return self.pull_request is not None

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def assignee_logins(self) -> list[str]:
        return [user.login for user in self.assignees]

    @property
    def fingerprint(self) -> str | None:
        return parse_fingerprint(self.body)

    @property
    def signature(self) -> str | None:
        return parse_signature(self.body)


class Comment(_Model):
    id: int
    body: str | None = None
    user: User | None = None
    html_url: str = ""
    created_at: datetime | None = None


class GitRef(_Model):
    ref: str = ""
    sha: str = ""


class PullRequest(_Model):
    number: int
    title: str = ""
    body: str | None = None
    state: str = "open"
    draft: bool = False
    merged: bool = False
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    head: GitRef = Field(default_factory=GitRef)
    base: GitRef = Field(default_factory=GitRef)
    user: User | None = None
    html_url: str = ""

    def closes(self, issue_number: int, repository: str | None = None) -> bool:
        return pr_references_issue(self.body, issue_number, repository)


class _SourceRepository(_Model):
    full_name: str = ""


class _SourceIssue(Issue):
    repository: _SourceRepository | None = None


class TimelineSource(_Model):
    type: str = ""
    issue: _SourceIssue | None = None


class TimelineEvent(_Model):
    event: str = ""
    created_at: datetime | None = None
    actor: User | None = None
    source: TimelineSource | None = None
    label: Label | None = None
    assignee: User | None = None
    commit_id: str | None = None


class Repository(_Model):
    full_name: str
    default_branch: str = "main"
    private: bool = False


class RateLimit(_Model):
    """The primary rate-limit budget, from the ``X-RateLimit-*`` headers of the last response."""

    limit: int
    remaining: int
    used: int = 0
    reset: int = 0  # epoch seconds
    resource: str = "core"

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> RateLimit | None:
        try:
            return cls(
                limit=int(headers["x-ratelimit-limit"]),
                remaining=int(headers["x-ratelimit-remaining"]),
                used=int(headers.get("x-ratelimit-used", "0")),
                reset=int(headers.get("x-ratelimit-reset", "0")),
                resource=headers.get("x-ratelimit-resource", "core"),
            )
        except (KeyError, ValueError):
            return None


# -- retry policy ----------------------------------------------------------------------------------


class _ServerError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"GitHub answered {response.status_code}")
        self.response = response


# Failures where the request certainly never reached GitHub: safe to repeat even a create.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _retryable(idempotent: bool) -> Callable[[BaseException], bool]:
    def check(error: BaseException) -> bool:
        if isinstance(error, _NOT_SENT):
            return True
        # A create whose answer was lost may have happened: the caller re-finds by fingerprint instead.
        return idempotent and isinstance(error, (httpx.TransportError, _ServerError))

    return check


# -- the client ------------------------------------------------------------------------------------


class GitHubClient:
    """One repository's issues and pulls over one ``httpx.AsyncClient``.

    Transport failures and 5xx are retried a few times with a short backoff (one tenacity policy);
    rate limits are never slept on: they raise :class:`RateLimitedError` with the wait GitHub asked for.
    With ``conditional``, every GET is sent with the ETag of its last answer and a 304 (free of rate
    limit) is answered from memory, so polling something unchanged costs nothing. With ``hold_off``,
    after a rate limit or an outage every caller of this client gets the same error, without a request,
    until the wait is over: the limit belongs to the token, not to one caller.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        repository: str,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.2,
        clock: Callable[[], float] = time.time,
        conditional: bool = False,
        hold_off: bool = False,
        observe: Callable[..., None] | None = None,
    ) -> None:
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"repository must be 'owner/name', got {repository!r}")
        self.repository = repository
        self.api_url = api_url.rstrip("/")
        self._repo_path = f"/repos/{owner}/{name}"
        self._attempts = attempts
        self._backoff = backoff
        self._clock = clock
        self.rate_limit: RateLimit | None = None
        self._conditional = conditional
        self._hold_off = hold_off
        self._held: tuple[float, TransientError] | None = None
        # Told the seconds, method and status class of each HTTP exchange: the latency metric.
        self._observe = observe
        self._etags: dict[tuple[str, str], tuple[str, list[tuple[str, str]], bytes]] = {}
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            timeout=timeout,
            follow_redirects=False,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "Authorization": f"Bearer {token}",
                "User-Agent": USER_AGENT,
            },
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _same_origin(self, url: str) -> bool:
        """Whether ``url`` (absolute, or relative to the API URL) is on the configured API's origin."""
        target = httpx.URL(self.api_url + "/").join(url)
        base = httpx.URL(self.api_url)
        return (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port)

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport -------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        etag: str | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        if self._held is not None:
            until, error = self._held
            remaining = until - time.monotonic()
            if remaining > 0:
                raise type(error)(f"{error} (holding off {remaining:.0f}s more)", delay=remaining)
            self._held = None
        try:
            return await self._exchange(method, url, params=params, json=json, etag=etag, idempotent=idempotent)
        except TransientError as e:
            if self._hold_off:
                self._held = (time.monotonic() + e.delay, e)
            raise

    async def _timed(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange, its duration told to ``observe``."""
        started, status = time.monotonic(), "error"
        try:
            response = await self._http.request(method, url, **kwargs)
            status = f"{response.status_code // 100}xx"
            return response
        finally:
            if self._observe is not None:
                self._observe(time.monotonic() - started, method=method, status=status)

    async def _exchange(
        self, method: str, url: str, *, params: dict[str, Any] | None, json: Any, etag: str | None, idempotent: bool
    ) -> httpx.Response:
        cache_key, cached = None, None
        if self._conditional and method == "GET" and etag is None:
            cache_key = (url, urlencode(sorted((params or {}).items())))
            cached = self._etags.get(cache_key)
            etag = cached[0] if cached else None
        headers = {"If-None-Match": etag} if etag else None
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff, max=2.0),
            retry=retry_if_exception(_retryable(idempotent)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._timed(method, url, params=params, json=json, headers=headers)
                    if response.status_code >= 500:
                        raise _ServerError(response)
        except _ServerError as e:
            raise TransientError(f"GitHub {method} {url}: {e.response.status_code} {self._message(e.response)}") from e
        except httpx.TransportError as e:
            raise TransientError(f"GitHub {method} {url}: {type(e).__name__}: {e}") from e
        limit = RateLimit.from_headers(response.headers)
        if limit is not None:
            self.rate_limit = limit
        if 300 <= response.status_code < 400 and response.status_code != 304:
            # Never followed: a redirect elsewhere would carry the token (and an issue's text) there.
            target = response.headers.get("location", "")
            raise GitHubError(
                f"GitHub {method} {url}: redirected ({response.status_code}) to "
                f"{_origin_text(str(response.url.join(target))) if target else 'another place'}; not followed",
                status=response.status_code,
            )
        if response.status_code >= 400:
            self._raise_for(method, url, response)
        if cache_key is not None:
            response = self._remember(cache_key, cached, response)
        return response

    def _remember(
        self, key: tuple[str, str], cached: tuple[str, list[tuple[str, str]], bytes] | None, response: httpx.Response
    ) -> httpx.Response:
        """Keeps a 200's ETag and body; turns a 304 into the remembered 200."""
        if response.status_code == 304 and cached is not None:
            return httpx.Response(200, headers=cached[1], content=cached[2], request=response.request)
        tag = response.headers.get("etag")
        if response.status_code == 200 and tag:
            self._etags.pop(key, None)
            if len(self._etags) >= ETAG_CACHE_SIZE:
                self._etags.pop(next(iter(self._etags)))
            kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _WIRE_HEADERS]
            self._etags[key] = (tag, kept, response.content)
        return response

    @staticmethod
    def _payload(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _message(self, response: httpx.Response) -> str:
        return str(self._payload(response).get("message", "")) or response.reason_phrase

    def _raise_for(self, method: str, url: str, response: httpx.Response) -> None:
        status = response.status_code
        payload = self._payload(response)
        message = str(payload.get("message", "")) or response.reason_phrase
        raw_errors = payload.get("errors")
        errors: list[Any] = raw_errors if isinstance(raw_errors, list) else []
        docs = str(payload.get("documentation_url", ""))
        what = f"GitHub {method} {url}: {status} {message}"
        if status in (403, 429):
            retry_after = response.headers.get("retry-after")
            if retry_after is not None:
                try:
                    delay = max(float(retry_after), 1.0)
                except ValueError:
                    delay = SECONDARY_DEFAULT_DELAY
                raise RateLimitedError(f"{what} (secondary rate limit)", delay=delay)
            if response.headers.get("x-ratelimit-remaining") == "0":
                reset = float(response.headers.get("x-ratelimit-reset", "0") or 0)
                delay = max(reset - self._clock(), 1.0)
                raise RateLimitedError(f"{what} (primary rate limit)", delay=delay)
            if status == 429 or "rate limit" in message.lower():
                raise RateLimitedError(f"{what} (secondary rate limit)", delay=SECONDARY_DEFAULT_DELAY)
            raise Forbidden(what, status=status, errors=errors, documentation_url=docs)
        if status == 401:
            raise BadCredentials(what, status=status, errors=errors, documentation_url=docs)
        if status in (404, 410):
            raise NotFound(what, status=status, errors=errors, documentation_url=docs)
        if status == 422:
            detail = "; ".join(
                ", ".join(f"{k}={v}" for k, v in error.items()) if isinstance(error, dict) else str(error)
                for error in errors
            )
            raise ValidationFailed(
                f"{what}: {detail}" if detail else what, status=status, errors=errors, documentation_url=docs
            )
        raise GitHubError(what, status=status, errors=errors, documentation_url=docs)

    async def _pages(
        self, url: str, params: dict[str, Any] | None = None, *, max_pages: int = 50
    ) -> AsyncIterator[tuple[httpx.Response, list[dict[str, Any]]]]:
        """Yields each page's response and items, following ``Link: <...>; rel="next"``."""
        next_url: str | None = url
        query = params
        pages = 0
        while next_url and pages < max_pages:
            response = await self._request("GET", next_url, params=query)
            pages += 1
            yield response, response.json()
            next_url = response.links.get("next", {}).get("url")
            if next_url and not self._same_origin(next_url):
                raise GitHubError(
                    f"GitHub GET {url}: the next page is on {_origin_text(next_url)}, "
                    f"not {_origin_text(self.api_url)}; the token is sent only to the configured API URL",
                    status=response.status_code,
                )
            query = None  # the next link carries the query

    # -- repository ------------------------------------------------------------------------------

    async def check_access(self) -> Repository:
        """The repository, proving the token works (401 -> BadCredentials) and can see it (404 -> NotFound)."""
        response = await self._request("GET", self._repo_path)
        return Repository.model_validate(response.json())

    # -- issues ----------------------------------------------------------------------------------

    async def find_issue(
        self, signature: str, *, fingerprint: str = "", labels: list[str] | None = None, max_pages: int = 20
    ) -> Issue | None:
        """The newest issue (open or closed) of the failure: its body's marker carries ``signature`` (the
        primary signature: a near match, another sample of the same failure), preferring one whose
        fingerprint marker is ``fingerprint`` too. Without a signature, the fingerprint marker decides.

        Lists issues filtered by label rather than searching: the search index lags behind writes, the
        listing shows an issue created a moment ago (by this operator before a restart, or by a ticket of
        another Rollout)."""
        params: dict[str, Any] = {"state": "all", "sort": "created", "direction": "desc", "per_page": PER_PAGE}
        if labels:
            params["labels"] = ",".join(labels)
        near: Issue | None = None
        async for _, items in self._pages(f"{self._repo_path}/issues", params, max_pages=max_pages):
            for raw in items:
                issue = Issue.model_validate(raw)
                if issue.is_pull_request:
                    continue
                if fingerprint and issue.fingerprint == fingerprint:
                    return issue
                if near is None and signature and issue.signature == signature:
                    near = issue
        return near

    async def create_issue(
        self, title: str, body: str, labels: list[str] | None = None, assignees: list[str] | None = None
    ) -> Issue:
        payload: dict[str, Any] = {"title": title, "body": body, "labels": list(labels or [])}
        if assignees:
            payload["assignees"] = list(assignees)
        response = await self._request("POST", f"{self._repo_path}/issues", json=payload, idempotent=False)
        return Issue.model_validate(response.json())

    async def get_issue(self, number: int, etag: str | None = None) -> tuple[Issue | None, str | None]:
        """The issue and its ETag; ``(None, etag)`` when it is unchanged since ``etag`` (a free 304)."""
        response = await self._request("GET", f"{self._repo_path}/issues/{number}", etag=etag)
        if response.status_code == 304:
            return None, etag
        return Issue.model_validate(response.json()), response.headers.get("etag")

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
        changes = {
            key: value
            for key, value in (
                ("state", state),
                ("state_reason", state_reason),
                ("labels", labels),
                ("title", title),
                ("body", body),
            )
            if value is not None
        }
        response = await self._request("PATCH", f"{self._repo_path}/issues/{number}", json=changes)
        return Issue.model_validate(response.json())

    async def add_labels(self, number: int, labels: list[str]) -> list[str]:
        """Adds labels (idempotent); returns all labels now on the issue."""
        response = await self._request(
            "POST", f"{self._repo_path}/issues/{number}/labels", json={"labels": list(labels)}
        )
        return [Label.model_validate(label).name for label in response.json()]

    async def comment(self, number: int, body: str) -> Comment:
        response = await self._request(
            "POST", f"{self._repo_path}/issues/{number}/comments", json={"body": body}, idempotent=False
        )
        return Comment.model_validate(response.json())

    async def comments(self, number: int) -> list[Comment]:
        result: list[Comment] = []
        async for _, items in self._pages(f"{self._repo_path}/issues/{number}/comments", {"per_page": PER_PAGE}):
            result += [Comment.model_validate(raw) for raw in items]
        return result

    # -- assignees -------------------------------------------------------------------------------

    async def assign(self, number: int, login: str) -> bool:
        """Assigns ``login``; GitHub silently ignores users who cannot be assigned, so this says whether it took."""
        response = await self._request(
            "POST", f"{self._repo_path}/issues/{number}/assignees", json={"assignees": [login]}
        )
        issue = Issue.model_validate(response.json())
        return login.lower() in {name.lower() for name in issue.assignee_logins}

    async def assign_copilot(
        self,
        number: int,
        base_branch: str | None = None,
        custom_instructions: str | None = None,
        target_repo: str | None = None,
    ) -> bool:
        """Hands the issue to the Copilot coding agent and confirms it shows up among the assignees.

        The assignment can "succeed" without effect (wrong token kind, agent disabled): False then."""
        agent = {
            key: value
            for key, value in (
                ("target_repo", target_repo),
                ("base_branch", base_branch),
                ("custom_instructions", custom_instructions),
            )
            if value
        }
        payload: dict[str, Any] = {"assignees": [COPILOT_ASSIGNEE]}
        if agent:
            payload["agent_assignment"] = agent
        response = await self._request("POST", f"{self._repo_path}/issues/{number}/assignees", json=payload)
        if _has_copilot(Issue.model_validate(response.json())):
            return True
        issue, _ = await self.get_issue(number)
        return issue is not None and _has_copilot(issue)

    # -- timeline and pulls ----------------------------------------------------------------------

    async def timeline(self, number: int, etag: str | None = None) -> tuple[list[TimelineEvent] | None, str | None]:
        """All timeline events and an opaque change token; ``(None, token)`` when nothing changed.

        Events are appended in time order, so the token is the last page and its ETag: a 304 there
        means no event was added (and costs no rate limit)."""
        url = f"{self._repo_path}/issues/{number}/timeline"
        if etag and "|" in etag:
            page, _, known_etag = etag.partition("|")
            response = await self._request("GET", url, params={"per_page": PER_PAGE, "page": page}, etag=known_etag)
            if response.status_code == 304:
                return None, etag
        events: list[TimelineEvent] = []
        last_page, newest_etag = 1, None
        async for response, items in self._pages(url, {"per_page": PER_PAGE}):
            events += [TimelineEvent.model_validate(raw) for raw in items]
            last_page = int(parse_qs(urlsplit(str(response.request.url)).query).get("page", ["1"])[-1])
            newest_etag = response.headers.get("etag")
        return events, f"{last_page}|{newest_etag}" if newest_etag else None

    async def get_pull(self, number: int) -> PullRequest:
        response = await self._request("GET", f"{self._repo_path}/pulls/{number}")
        return PullRequest.model_validate(response.json())

    async def list_pulls(self, state: str = "all", *, max_pages: int = 1) -> list[PullRequest]:
        """The most recently updated pulls (one page of 100 by default)."""
        params = {"state": state, "sort": "updated", "direction": "desc", "per_page": PER_PAGE}
        result: list[PullRequest] = []
        async for _, items in self._pages(f"{self._repo_path}/pulls", params, max_pages=max_pages):
            result += [PullRequest.model_validate(raw) for raw in items]
        return result

    async def linked_pull_requests(
        self, number: int, *, require_closing_keyword: bool = True, scan_pulls: bool = True
    ) -> list[PullRequest]:
        """Pull requests that fix issue ``number``, oldest first.

        Found through the issue timeline (``cross-referenced`` events whose ``source.issue`` is a pull
        request of this repository) and, with ``scan_pulls``, through the bodies of the most recently
        updated pulls. Unless ``require_closing_keyword`` is False, a PR must close the issue with a
        closing keyword (``Fixes #N``...) to count; a mere mention does not."""
        events, _ = await self.timeline(number)
        candidates: dict[int, None] = {}
        for event in events or []:
            source = event.source.issue if event.event == "cross-referenced" and event.source else None
            if source is None or not source.is_pull_request:
                continue
            if source.repository and source.repository.full_name.lower() != self.repository.lower():
                continue
            if require_closing_keyword and not pr_references_issue(source.body, number, self.repository):
                continue
            candidates[source.number] = None
        pulls: dict[int, PullRequest] = {}
        for pr_number in candidates:
            pulls[pr_number] = await self.get_pull(pr_number)
        if scan_pulls:
            for pull in await self.list_pulls():
                if pull.number not in pulls and pull.closes(number, self.repository):
                    # the list shape lacks ``merged``: read the full pull request
                    pulls[pull.number] = await self.get_pull(pull.number)
        return [pulls[key] for key in sorted(pulls)]

    async def rate_limit_status(self) -> RateLimit | None:
        """``GET /rate_limit`` (free of charge): the core budget."""
        response = await self._request("GET", "/rate_limit")
        core = response.json().get("resources", {}).get("core")
        return RateLimit.model_validate({**core, "resource": "core"}) if core else None


def _has_copilot(issue: Issue) -> bool:
    return any(login.lower() in COPILOT_LOGINS for login in issue.assignee_logins)


def _origin_text(url: str) -> str:
    """``scheme://host[:port]`` of a URL, for messages: never its path, query or userinfo."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")
