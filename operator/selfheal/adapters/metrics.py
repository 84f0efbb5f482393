"""The metrics endpoint: an aiohttp server answering `GET /metrics` in the Prometheus text format 0.0.4."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from selfheal.errors import ConfigError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"


@dataclass
class MetricsServer:
    """A running metrics endpoint; ``port`` is the one bound (useful when asked for port 0)."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"


async def start_metrics_server(render: Callable[[], str], host: str, port: int) -> MetricsServer:
    """Serve ``render()`` at ``GET /metrics`` on host:port; a port that cannot be bound is a ConfigError."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=render().encode(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get(PATH, metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {e}") from e
    bound = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound = int(address[1])
            break
    server = MetricsServer(runner=runner, host=host, port=bound)
    log.info("serving metrics on %s", server.url)
    return server


async def stop_metrics_server(server: MetricsServer) -> None:
    await server.runner.cleanup()
