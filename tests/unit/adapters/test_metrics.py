"""The metrics endpoint serves the registry at GET /metrics with the 0.0.4 content type, and stops cleanly."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from selfheal.adapters.metrics import start_metrics_server, stop_metrics_server
from selfheal.errors import ConfigError
from selfheal.services.metrics import OperatorMetrics


async def test_get_metrics_returns_the_rendered_registry() -> None:
    metrics = OperatorMetrics.create("0.0.0-test")
    metrics.actions.inc(namespace="ns", action="abort")
    server = await start_metrics_server(metrics.render, "127.0.0.1", 0)
    try:
        assert server.port > 0
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                body = await resp.text()
            assert 'selfheal_actions_total{namespace="ns",action="abort"} 1\n' in body
            metrics.actions.inc(namespace="ns", action="abort")  # rendered at each scrape
            async with session.get(server.url) as resp:
                assert 'selfheal_actions_total{namespace="ns",action="abort"} 2\n' in await resp.text()
            async with session.get(f"http://127.0.0.1:{server.port}/other") as resp:
                assert resp.status == 404
    finally:
        await stop_metrics_server(server)
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", server.port))


async def test_a_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            await start_metrics_server(lambda: "", "127.0.0.1", port)
