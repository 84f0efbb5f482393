"""The metrics registry and endpoint: prometheus-client's exposition over real HTTP, one registry per runtime,
the latency histograms fed by the real LLM and GitHub clients, the tickets-by-phase gauge."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from selfheal.adapters.github import GitHubClient
from selfheal.adapters.llm import LLMClient
from selfheal.adapters.metrics import OperatorMetrics, start_metrics_server, stop_metrics_server
from selfheal.domain.prompt import PromptBundle
from selfheal.errors import AnalyzerUnavailable
from selfheal.testing.github_server import GitHubStandIn
from selfheal.testing.llm_server import ErrorReply, OpenAIStandIn

BUNDLE = PromptBundle(messages=[{"role": "user", "content": "Respond with JSON."}], estimated_tokens=5)
SELFHEAL_FAMILIES = {
    "selfheal_analyses",
    "selfheal_actions",
    "selfheal_canaries_stopped",
    "selfheal_analyzer_unavailable",
    "selfheal_llm_tokens",
    "selfheal_tickets_opened",
    "selfheal_ticket_phase_changes",
    "selfheal_github_requests_failed",
    "selfheal_analysis_duration_seconds",
    "selfheal_llm_request_duration_seconds",
    "selfheal_github_request_duration_seconds",
    "selfheal_tickets",
    "selfheal_build_info",
}


def sample(m: OperatorMetrics, name: str, **labels: str) -> float:
    """The value of one sample of ``m`` (0 when it has never been touched)."""
    return m.registry.get_sample_value(name, labels) or 0.0


def scrape(url: str, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return resp.headers["Content-Type"], resp.read().decode()


def families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Parsed with prometheus-client's own parser: family name -> {sorted labels: value}."""
    parsed: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            parsed.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        parsed.setdefault(family.name, {})
    return parsed


async def test_the_endpoint_serves_every_family_and_the_process() -> None:
    metrics = OperatorMetrics.create("0.0.0-test")
    metrics.actions.inc(namespace="ns", action="abort")
    metrics.llm_tokens.inc(120, namespace="ns", policy="heal")
    server = await start_metrics_server(metrics.registry, "127.0.0.1", 0)
    try:
        assert server.port > 0 and server.url.endswith("/metrics")
        content_type, text = scrape(server.url)
        assert content_type.startswith("text/plain; version=")
        found = families(text)
        assert set(found) >= SELFHEAL_FAMILIES, SELFHEAL_FAMILIES - set(found)
        assert found["selfheal_actions_total"][(("action", "abort"), ("namespace", "ns"))] == 1
        assert found["selfheal_llm_tokens_total"][(("namespace", "ns"), ("policy", "heal"))] == 120
        assert found["selfheal_build_info"][(("version", "0.0.0-test"),)] == 1
        # Process metrics: memory, CPU, open files.
        assert found["process_resident_memory_bytes"][()] > 0
        assert "process_cpu_seconds_total" in found and "python_info" in found

        metrics.actions.inc(namespace="ns", action="abort")  # read at each scrape
        assert (
            families(scrape(server.url)[1])["selfheal_actions_total"][(("action", "abort"), ("namespace", "ns"))] == 2
        )
        # A Prometheus that asks for OpenMetrics gets it.
        content_type, text = scrape(server.url, "application/openmetrics-text; version=1.0.0")
        assert content_type.startswith("application/openmetrics-text") and text.rstrip().endswith("# EOF")
    finally:
        await stop_metrics_server(server)
    again = await start_metrics_server(metrics.registry, "127.0.0.1", server.port)  # the port is free again
    await stop_metrics_server(again)


async def test_a_port_in_use_is_a_config_error() -> None:
    from selfheal.errors import ConfigError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            await start_metrics_server(OperatorMetrics.create().registry, "127.0.0.1", port)


def test_each_runtime_has_its_own_registry() -> None:
    first, second = OperatorMetrics.create(), OperatorMetrics.create()
    first.tickets_opened.inc(namespace="a")
    assert sample(first, "selfheal_tickets_opened_total", namespace="a") == 1
    assert sample(second, "selfheal_tickets_opened_total", namespace="a") == 0


def test_the_ticket_gauge_follows_each_ticket_through_its_phases() -> None:
    m = OperatorMetrics.create()

    def gauge(namespace: str, phase: str) -> float:
        return sample(m, "selfheal_tickets", namespace=namespace, phase=phase)

    m.tickets.track("team-a", "web-1", "Open")
    m.tickets.track("team-a", "web-2", "Open")
    m.tickets.track("team-b", "api-1", "Open")
    assert gauge("team-a", "Open") == 2
    m.tickets.track("team-a", "web-1", "IssueOpened")
    m.tickets.track("team-a", "web-1", "IssueOpened")  # the same phase again (any other change) counts once
    assert gauge("team-a", "Open") == 1
    assert gauge("team-a", "IssueOpened") == 1
    m.tickets.track("team-a", "web-1", None)  # deleted
    m.tickets.track("team-a", "never-seen", None)
    assert gauge("team-a", "IssueOpened") == 0
    assert gauge("team-a", "Open") == 1
    assert gauge("team-b", "Open") == 1


async def test_llm_latency_is_observed_per_completion_with_its_outcome() -> None:
    m = OperatorMetrics.create()

    def seconds(suffix: str, outcome: str) -> float:
        return sample(m, f"selfheal_llm_request_duration_seconds{suffix}", outcome=outcome)

    with OpenAIStandIn() as llm:
        client = LLMClient(llm.base_url, "k", "m", timeout=5, max_retries=0, observe=m.llm_request_seconds.observe)
        try:
            llm.slow(0.3, times=1)
            await client.judge(BUNDLE)
            assert seconds("_count", "answered") == 1
            assert seconds("_sum", "answered") >= 0.3
            llm.imitate("llama-cpp-python")  # a refused format, then the answer
            client.mode = "json_schema"
            await client.judge(BUNDLE)
            assert seconds("_count", "refused") == 1
            assert seconds("_count", "answered") == 2
            llm.respond_with(lambda body: ErrorReply(503, "overloaded"))
            with pytest.raises(AnalyzerUnavailable):
                await client.judge(BUNDLE)
            assert seconds("_count", "failed") == 1
        finally:
            await client.aclose()


async def test_github_latency_is_observed_per_request_with_its_status_class() -> None:
    m = OperatorMetrics.create()

    def seconds(status: str) -> float:
        return sample(m, "selfheal_github_request_duration_seconds_count", method="GET", status=status)

    with GitHubStandIn(token="t", repos=["acme/web"]) as gh:
        client = GitHubClient(gh.api_url, "t", "acme/web", backoff=0.01, observe=m.github_request_seconds.observe)
        try:
            await client.check_access()
            assert seconds("2xx") == 1
            gh.fail_next(1, status=502)  # retried once by the client: two requests, two observations
            await client.check_access()
            assert seconds("5xx") == 1
            assert seconds("2xx") == 2
            gh.down()
            with pytest.raises(Exception):  # noqa: B017 - a connection error of whatever kind
                await client.check_access()
            assert seconds("error") >= 1
        finally:
            await client.aclose()
