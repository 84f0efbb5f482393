"""Prometheus metrics: what selfheal counts, in a prometheus-client registry of its own, and the endpoint serving it."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from selfheal.errors import ConfigError

log = logging.getLogger(__name__)

PATH = "/metrics"

# Seconds; an analysis gathers logs and may wait for an LLM, a GitHub call is one HTTP exchange.
ANALYSIS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
LLM_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
GITHUB_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# An inline verdict answers within the web metric's timeout (10 s by default).
VERDICT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 8, 10, 30)


class _Family:
    """One prometheus-client metric behind the call sites' ``metric.inc(amount, **labels)`` style."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric

    def _child(self, labels: dict[str, object]) -> Any:
        return self._metric.labels(**{k: str(v) for k, v in labels.items()}) if labels else self._metric


class LabelledCounter(_Family):
    """Only goes up (until the process restarts)."""

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        self._child(labels).inc(amount)


class LabelledGauge(_Family):
    """Goes up and down; set to a value."""

    def set(self, value: float, **labels: object) -> None:
        self._child(labels).set(value)

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        self._child(labels).inc(amount)

    def dec(self, amount: float = 1.0, **labels: object) -> None:
        self._child(labels).dec(amount)


class LabelledHistogram(_Family):
    """Durations, in buckets."""

    def observe(self, seconds: float, **labels: object) -> None:
        self._child(labels).observe(seconds)


@dataclass
class TicketPhases:
    """The gauge of RemediationTickets by namespace and phase, kept from the tickets' watch events."""

    gauge: LabelledGauge
    _phases: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self, namespace: str, name: str, phase: str | None) -> None:
        """The ticket ``namespace/name`` is now in ``phase`` (None: it is gone)."""
        with self._lock:
            old = self._phases.pop((namespace, name), None)
            if phase:
                self._phases[(namespace, name)] = phase
        if old == phase:
            return
        if old:
            self.gauge.dec(namespace=namespace, phase=old)
        if phase:
            self.gauge.inc(namespace=namespace, phase=phase)


@dataclass(frozen=True)
class OperatorMetrics:
    """What selfheal counts, in one registry; built once at startup and kept in the runtime."""

    registry: CollectorRegistry
    analyses: LabelledCounter
    actions: LabelledCounter
    canaries_stopped: LabelledCounter
    analyzer_unavailable: LabelledCounter
    llm_tokens: LabelledCounter
    tickets_opened: LabelledCounter
    ticket_phase_changes: LabelledCounter
    github_requests_failed: LabelledCounter
    notifications: LabelledCounter
    analysis_seconds: LabelledHistogram
    llm_request_seconds: LabelledHistogram
    github_request_seconds: LabelledHistogram
    verdict_request_seconds: LabelledHistogram
    tickets: TicketPhases

    @classmethod
    def create(cls, version: str = "") -> OperatorMetrics:
        r = CollectorRegistry()
        # The process (CPU, memory, open files, start time), the interpreter and its garbage collector.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        if version:
            Info("selfheal_build", "The running selfheal version.", registry=r).info({"version": version})

        def counter(name: str, help: str, labels: list[str]) -> LabelledCounter:
            # prometheus-client adds the _total suffix itself (and the _created series beside it).
            return LabelledCounter(Counter(name.removesuffix("_total"), help, labels, registry=r))

        def histogram(name: str, help: str, labels: list[str], buckets: tuple[float, ...]) -> LabelledHistogram:
            return LabelledHistogram(Histogram(name, help, labels, registry=r, buckets=buckets))

        def gauge(name: str, help: str, labels: list[str]) -> LabelledGauge:
            return LabelledGauge(Gauge(name, help, labels, registry=r))

        return cls(
            registry=r,
            analyses=counter(
                "selfheal_analyses_total",
                "Canary analyses, by the verdict reached and who reached it.",
                ["namespace", "policy", "trigger", "verdict", "analyzer"],
            ),
            actions=counter(
                "selfheal_actions_total",
                "Actions sent to Rollouts (abort, pause, promote); dry runs and skips not counted.",
                ["namespace", "action"],
            ),
            canaries_stopped=counter(
                "selfheal_canaries_stopped_total",
                "Canaries aborted or paused by selfheal on an unhealthy verdict.",
                ["namespace"],
            ),
            analyzer_unavailable=counter(
                "selfheal_analyzer_unavailable_total",
                "Analyses whose configured LLM or agent gave no verdict (the fallback applied).",
                ["namespace", "policy"],
            ),
            llm_tokens=counter(
                "selfheal_llm_tokens_total",
                "Tokens spent by the LLM (prompt plus completion).",
                ["namespace", "policy"],
            ),
            tickets_opened=counter("selfheal_tickets_opened_total", "RemediationTickets created.", ["namespace"]),
            ticket_phase_changes=counter(
                "selfheal_ticket_phase_changes_total",
                "RemediationTicket phase changes, by the phase entered.",
                ["namespace", "phase"],
            ),
            github_requests_failed=counter(
                "selfheal_github_requests_failed_total",
                "GitHub requests of ticket reconciliations that failed, by reason.",
                ["reason"],
            ),
            notifications=counter(
                "selfheal_notifications_total",
                "Ticket phase notifications sent to webhooks and Slack, by channel and outcome (delivered, failed).",
                ["channel", "outcome"],
            ),
            analysis_seconds=histogram(
                "selfheal_analysis_duration_seconds",
                "One canary analysis: evidence gathered, verdict reached, action taken, ticket recorded.",
                ["trigger"],
                ANALYSIS_BUCKETS,
            ),
            llm_request_seconds=histogram(
                "selfheal_llm_request_duration_seconds",
                "One chat completion asked of the LLM (the SDK's retries included), by outcome.",
                ["outcome"],
                LLM_BUCKETS,
            ),
            github_request_seconds=histogram(
                "selfheal_github_request_duration_seconds",
                "One HTTP request to the GitHub API, by method and status class (2xx ... 5xx, error).",
                ["method", "status"],
                GITHUB_BUCKETS,
            ),
            verdict_request_seconds=histogram(
                "selfheal_verdict_request_duration_seconds",
                "One question of Argo's web metric provider to the verdict endpoint, by HTTP status.",
                ["status"],
                VERDICT_BUCKETS,
            ),
            tickets=TicketPhases(
                gauge("selfheal_tickets", "RemediationTickets, by namespace and phase.", ["namespace", "phase"])
            ),
        )


@dataclass
class MetricsServer:
    """A running metrics endpoint; ``port`` is the one bound (useful when asked for port 0)."""

    server: WSGIServer
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"


async def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` in the Prometheus exposition formats (text, or OpenMetrics when the scraper asks)
    from prometheus-client's own HTTP server thread; a port that cannot be bound is a ConfigError."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {e}") from e
    running = MetricsServer(server=server, thread=thread, host=host, port=int(server.server_port))
    log.info("serving metrics on %s", running.url)
    return running


async def stop_metrics_server(running: MetricsServer) -> None:
    """Stop serving and free the port (``shutdown`` waits for the serving loop: off the event loop)."""
    await asyncio.to_thread(running.server.shutdown)
    running.server.server_close()
    await asyncio.to_thread(running.thread.join, 10)
