"""Notification deliveries over HTTP: one JSON POST to a webhook or Slack URL, a few tries, never a redirect."""

from __future__ import annotations

import logging

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from selfheal import __version__
from selfheal.adapters.llm import describe_endpoint
from selfheal.errors import SelfHealError

ATTEMPTS = 3
BACKOFF_SECONDS = 0.5
# Of a receiver's refusal, this much is quoted (Slack answers "invalid_payload", "no_service"...).
QUOTED = 120


class NotificationError(SelfHealError):
    """A receiver refused a notification, or could not be reached after a few tries."""


class _TryAgain(Exception):
    """A failure worth another try: the network, a 429 or a 5xx."""


class _HideUrls(logging.Filter):
    """httpx logs each request's URL at info; a notification URL is a credential, so only its host shows."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(str(arg) in self.urls for arg in record.args):
            record.args = tuple(describe_endpoint(str(a)) if str(a) in self.urls else a for a in record.args)
        return True


_HIDDEN = _HideUrls()
logging.getLogger("httpx").addFilter(_HIDDEN)


class Notifier:
    """POSTs notification bodies. The URLs are credentials: messages name the host only, and a redirect
    (which would carry the body elsewhere) is refused, never followed. Built once, closed at cleanup."""

    def __init__(self, *, attempts: int = ATTEMPTS, backoff: float = BACKOFF_SECONDS) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": f"selfheal/{__version__}"})
        self._attempts = attempts
        self._backoff = backoff

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, seconds: float) -> None:
        """Deliver ``body`` to ``url``, each try bounded by ``seconds``; raises NotificationError saying why
        not (never naming the URL)."""
        where = describe_endpoint(url)
        _HIDDEN.urls.add(str(httpx.URL(url)) if url.startswith(("https://", "http://")) else url)
        if not url.startswith(("https://", "http://")):
            raise NotificationError(f"{where}: the notification URL must be http(s)")
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff, max=4.0),
            retry=retry_if_exception_type(_TryAgain),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._once(url, where, body, headers, seconds)
        except _TryAgain as e:
            raise NotificationError(f"{where}: {e} (after {self._attempts} tries)") from None

    async def _once(self, url: str, where: str, body: bytes, headers: dict[str, str], seconds: float) -> None:
        try:
            response = await self._client.post(url, content=body, headers=headers, timeout=seconds)
        except httpx.TimeoutException:
            raise _TryAgain(f"no answer within {seconds:g}s") from None
        except httpx.HTTPError as e:
            raise _TryAgain(f"unreachable ({type(e).__name__})") from None
        status = response.status_code
        if 300 <= status < 400:
            target = response.headers.get("location", "")
            raise NotificationError(
                f"{where} redirected (HTTP {status}) to {describe_endpoint(target) if target else 'another place'}; "
                "redirects are not followed: the notification goes only to the configured URL"
            )
        if status == 429 or status >= 500:
            raise _TryAgain(f"HTTP {status}")
        if status >= 400:
            said = " ".join(response.text.split())[:QUOTED]
            raise NotificationError(f"{where} refused the notification (HTTP {status}{': ' + said if said else ''})")

    async def aclose(self) -> None:
        await self._client.aclose()
