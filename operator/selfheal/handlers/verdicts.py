"""Kopf glue for the verdict endpoint: started with the operator when `selfheal run --verdict-port` asks for it
(from the start-up handler), stopped at clean-up."""

from __future__ import annotations

from typing import Any

import kopf

from selfheal.adapters.verdict_server import start_verdict_server, stop_verdict_server
from selfheal.errors import ConfigError
from selfheal.services.inline import InlineVerdicts


async def start(memo: kopf.Memo, policies: kopf.Index) -> None:
    """Serve verdicts on ``memo.verdict_port`` (0: off), from the runtime and the live policy index."""
    port = memo.get("verdict_port") or 0
    if not port:
        return
    runtime = memo.runtime
    verdicts = InlineVerdicts(runtime, lambda namespace: list(policies.get(namespace, [])))
    try:
        memo.verdict_server = await start_verdict_server(
            verdicts.answer,
            "0.0.0.0",
            port,
            token=memo.get("verdict_token") or "",
            observe=runtime.metrics.verdict_request_seconds.observe,
        )
    except ConfigError as e:
        raise kopf.PermanentError(str(e)) from e
    memo.verdicts = verdicts


async def stop(memo: Any) -> None:
    """Stop answering, then cancel the analyzer asks still running."""
    server = getattr(memo, "verdict_server", None)
    if server is not None:
        memo.verdict_server = None
        await stop_verdict_server(server)
    verdicts = getattr(memo, "verdicts", None)
    if verdicts is not None:
        await verdicts.aclose()
