"""The verdict endpoint: an aiohttp server answering Argo's web metric provider at ``/api/v1/verdict``.

``GET /api/v1/verdict?namespace=..&rollout=..&canary=..&stable=..[&timeoutSeconds=..]``, or ``POST`` (or
``PUT``) with the same fields as a JSON object (``jsonBody``). The answer is JSON: 200 with the verdict, or an
error status with ``{"error": "..."}``: 400 a bad question, 401 a missing or wrong bearer token, 403 a Rollout
no policy governs, 404 no such Rollout, 409 not its current canary (or stable), 413 a body too large,
500 a fault, 503 the evidence could not be gathered in time.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from selfheal.domain.inline import VERDICT_PATH, VerdictAnswer, VerdictRequest
from selfheal.errors import ConfigError, Refused, SelfHealError, TransientError

log = logging.getLogger(__name__)

PATH = VERDICT_PATH
# A question is a handful of short names: anything larger is refused before it is read.
MAX_BODY_BYTES = 16 * 1024
# The longest request line and header aiohttp reads (its defaults are 8190).
MAX_LINE_BYTES = 4096

Answerer = Callable[[VerdictRequest], Awaitable[VerdictAnswer]]
Observer = Callable[..., None]


@dataclass
class VerdictServer:
    """A running verdict endpoint; ``port`` is the one bound (useful when asked for port 0)."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": message}


def _authorized(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def _question(request: web.Request) -> dict[str, Any]:
    """The fields of the question: the query string, and for POST or PUT the JSON object in the body."""
    fields: dict[str, Any] = dict(request.query)
    if request.method in ("POST", "PUT") and request.can_read_body:
        try:
            body = json.loads(await request.read() or b"{}")
        except (UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"the body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        fields.update(body)
    return fields


def _validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "request"
        parts.append(f"{where}: {item['msg']}")
    return "invalid question: " + "; ".join(parts)


async def _respond(request: web.Request, answer: Answerer, token: str) -> tuple[int, dict[str, Any]]:
    if token and not _authorized(request.headers.get("Authorization"), token):
        return _error(401, "a bearer token is required (Authorization: Bearer <token>)")
    try:
        question = VerdictRequest.model_validate(await _question(request))
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    except ValueError as e:  # ValidationError is one
        return _error(400, _validation_message(e) if isinstance(e, ValidationError) else str(e))
    try:
        verdict = await answer(question)
    except Refused as e:
        return _error(e.status, str(e))
    except TransientError as e:
        return _error(503, str(e))
    except ConfigError as e:
        return _error(500, f"selfheal is misconfigured: {e}")
    except SelfHealError as e:
        return _error(500, str(e))
    except Exception:  # a fault of ours: logged whole, answered as an error Argo counts
        log.exception("verdict for %s/%s failed unexpectedly", question.namespace, question.rollout)
        return _error(500, "internal error (see the operator's log)")
    return 200, verdict.wire()


async def start_verdict_server(
    answer: Answerer, host: str, port: int, *, token: str = "", observe: Observer | None = None
) -> VerdictServer:
    """Serve ``answer`` at ``PATH``; with ``token``, only to requests carrying it as a bearer token. A port that
    cannot be bound is a ConfigError; ``observe`` is told how long each answer took and its status."""

    async def handle(request: web.Request) -> web.Response:
        started = time.monotonic()
        status, body = await _respond(request, answer, token)
        if observe is not None:
            observe(time.monotonic() - started, status=str(status))
        headers = {"WWW-Authenticate": 'Bearer realm="selfheal"'} if status == 401 else None
        return web.json_response(body, status=status, headers=headers)

    limits = {"max_line_size": MAX_LINE_BYTES, "max_field_size": MAX_LINE_BYTES}
    app = web.Application(client_max_size=MAX_BODY_BYTES, handler_args=limits)
    for method in ("GET", "POST", "PUT"):
        app.router.add_route(method, PATH, handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise ConfigError(f"cannot serve verdicts on {host}:{port}: {e}") from e
    bound = runner.addresses[0][1] if runner.addresses else port
    server = VerdictServer(runner=runner, host=host, port=int(bound))
    log.info("serving verdicts on %s%s", server.url, " (bearer token required)" if token else "")
    return server


async def stop_verdict_server(server: VerdictServer) -> None:
    """Stop accepting questions and finish the answers in flight."""
    await server.runner.cleanup()
