"""Notification receivers on loopback: a webhook that checks the HMAC signature, and a Slack incoming webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from selfheal.testing.loopback import Fault, LoopbackServer

SIGNATURE_HEADER = "X-Selfheal-Signature-256"


@dataclass
class Delivery:
    """One request a receiver took: its headers, its JSON, and whether its signature was right."""

    headers: dict[str, str]
    body: bytes
    payload: Any
    signed: bool = False
    status: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


class _Receiver(LoopbackServer):
    """A receiver whose URL path holds a random token, as real webhook URLs do: the URL is a credential."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = secrets.token_hex(12)
        self.deliveries: list[Delivery] = []

    def fail(self, status: int, times: int | None = 1, text: str = "") -> None:
        """Answer the next ``times`` requests (or all) with ``status``."""
        with self._lock:
            self._faults.append(Fault("status", times, (status, text)))

    def redirect(self, location: str, times: int | None = None) -> None:
        """Answer 307 to ``location`` (another host, say)."""
        with self._lock:
            self._faults.append(Fault("redirect", times, location))

    def clear(self) -> None:
        self._clear_faults()

    def _scripted(self) -> web.Response | None:
        fault = self._take_fault(("status", "redirect"))
        if fault is None:
            return None
        if fault.kind == "redirect":
            return web.Response(status=307, headers={"Location": fault.detail})
        status, text = fault.detail
        return web.Response(status=status, text=text)

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def taken(self) -> list[Delivery]:
        """The deliveries answered with success."""
        with self._lock:
            return [d for d in self.deliveries if d.status < 300]


class WebhookReceiver(_Receiver):
    """A team's own endpoint: ``POST /hooks/<token>``; refuses (401) a body whose signature is wrong or absent."""

    thread_name = "webhook-receiver"

    def __init__(self, signing_key: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.signing_key = signing_key

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks/{self.token}"

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/hooks/{token}", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        await self._pause()
        body = await request.read()
        headers = dict(request.headers)
        if request.match_info["token"] != self.token:
            self._record(Delivery(headers, body, None, status=404))
            return web.Response(status=404, text="no such hook")
        scripted = self._scripted()
        if scripted is not None:
            self._record(Delivery(headers, body, None, status=scripted.status))
            return scripted
        expected = "sha256=" + hmac.new(self.signing_key.encode(), body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), expected)
        if self.signing_key and not signed:
            self._record(Delivery(headers, body, None, status=401))
            return web.Response(status=401, text="signature mismatch")
        try:
            payload = json.loads(body)
        except ValueError:
            self._record(Delivery(headers, body, None, status=400))
            return web.Response(status=400, text="not JSON")
        self._record(Delivery(headers, body, payload, signed=signed, status=204))
        return web.Response(status=204)


class SlackReceiver(_Receiver):
    """Slack's incoming webhooks as documented: ``POST /services/T../B../<token>`` with JSON carrying
    ``text`` (or ``blocks``); 200 ``ok``, 400 ``invalid_payload`` / ``no_text``, 404 ``no_service``."""

    thread_name = "slack-receiver"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/services/T0001/B0001/{self.token}"

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/services/{team}/{bot}/{token}", self._incoming)

    async def _incoming(self, request: web.Request) -> web.Response:
        await self._pause()
        body = await request.read()
        headers = dict(request.headers)
        if request.match_info["token"] != self.token:
            self._record(Delivery(headers, body, None, status=404))
            return web.Response(status=404, text="no_service")
        scripted = self._scripted()
        if scripted is not None:
            self._record(Delivery(headers, body, None, status=scripted.status))
            return scripted
        try:
            payload = json.loads(body)
        except ValueError:
            self._record(Delivery(headers, body, None, status=400))
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            self._record(Delivery(headers, body, payload, status=400))
            return web.Response(status=400, text="no_text")
        self._record(Delivery(headers, body, payload, status=200))
        return web.Response(status=200, text="ok")
