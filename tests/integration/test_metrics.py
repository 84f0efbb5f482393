"""The real operator's /metrics after a panic canary: the unhealthy verdict, who stopped it, the ticket."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator

import pytest

from selfheal.domain.ticket import ticket_name
from selfheal.testing import scenarios as argo_cli
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane, free_port
from selfheal.testing.operator import OperatorProcess
from tests.conftest import FAST_OPERATOR
from tests.integration.test_selfheal_scenarios import (
    APP,
    PANIC_TEMPLATE,
    SLOW_STEPS,
    TICKETS,
    create_policy,
    deploy,
    selfheal_events,
    wait_event,
)

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"')


def scrape(port: int) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.headers["Content-Type"], resp.read().decode()


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    found = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        found.append((m["name"], dict(LABEL.findall(m["labels"] or "")), float(m["value"])))
    return found


def total(text: str, name: str, **labels: str) -> float:
    return sum(v for n, ls, v in samples(text) if n == name and all(ls.get(k) == x for k, x in labels.items()))


@pytest.fixture
def metrics_operator(
    request: pytest.FixtureRequest, control_plane: ControlPlane, kubelet, namespace: str
) -> Iterator[tuple[OperatorProcess, int]]:
    """Our own operator, watching only the test's namespace and serving metrics; the shared all-namespaces
    operator is paused meanwhile, so that every analysis and ticket of this namespace is ours."""
    shared: OperatorProcess = request.getfixturevalue("operator")
    shared.stop()
    port = free_port()
    proc = OperatorProcess.with_chart_rbac(
        control_plane, namespaces=[namespace], env=FAST_OPERATOR, extra_args=["--metrics-port", str(port)]
    )
    try:
        with proc:
            proc.wait_for_output(f"serving metrics on http://0.0.0.0:{port}/metrics", timeout=60)
            yield proc, port
    finally:
        print(f"operator output kept in {proc.log_path}")
        shared.start()


def test_panic_canary_shows_in_the_metrics(
    control_plane: ControlPlane, metrics_operator: tuple[OperatorProcess, int], argo: ArgoSimulator, namespace: str
) -> None:
    _, port = metrics_operator
    content_type, before = scrape(port)
    assert content_type.startswith("text/plain; version=")
    assert "# TYPE selfheal_analyses_total counter" in before
    assert total(before, "selfheal_tickets_opened_total", namespace=namespace) == 0
    assert total(before, "process_resident_memory_bytes") > 0  # the process itself

    create_policy(control_plane, namespace, {})
    steps = [{"setWeight": 40}, {"pause": {"duration": "3s"}}, *SLOW_STEPS[1:]]
    ro = deploy(control_plane, namespace, "panic", steps=steps, template=PANIC_TEMPLATE, starting_step=2)
    argo_cli.wait_phase(control_plane.admin, namespace, APP, "Degraded", timeout=45)
    wait_event(control_plane, namespace, "CanaryUnhealthy")
    wait_event(control_plane, namespace, "RemediationTicketOpened", timeout=30)
    name = ticket_name(APP, ro["status"]["currentPodHash"])
    assert control_plane.admin.get_or_none(f"{TICKETS.format(ns=namespace)}/{name}") is not None

    # Each counter is bumped before its Event is posted: Events listed first, a scrape after sees them all.
    unhealthy = selfheal_events(control_plane, namespace, "CanaryUnhealthy")
    _, text = scrape(port)
    assert (
        total(
            text,
            "selfheal_analyses_total",
            namespace=namespace,
            policy="heal",
            verdict="unhealthy",
            analyzer="statistical",
        )
        >= 1
    )
    assert total(text, "selfheal_tickets_opened_total", namespace=namespace) == 1
    assert total(text, "selfheal_analyzer_unavailable_total", namespace=namespace) == 0  # no LLM configured
    # How long the analyses took, and the ticket in the gauge of tickets by phase (watched, so it may lag).
    assert total(text, "selfheal_analysis_duration_seconds_count") >= 1
    assert total(text, "selfheal_analysis_duration_seconds_sum") > 0
    control_plane.admin.wait_for(
        lambda: total(scrape(port)[1], "selfheal_tickets", namespace=namespace) == 1,
        timeout=30,
        message="the ticket counted in selfheal_tickets",
    )

    # Who aborted? The log watch (selfheal sends the abort) or Argo itself on the failed AnalysisRun
    # (selfheal then finds the canary already aborted). The metrics must agree with the Events either way.
    we_aborted = any("selfheal aborted it" in e["message"] for e in unhealthy)
    aborts = total(text, "selfheal_actions_total", namespace=namespace, action="abort")
    stopped = total(text, "selfheal_canaries_stopped_total", namespace=namespace)
    assert (aborts, stopped) == ((1, 1) if we_aborted else (0, 0)), (we_aborted, [e["message"] for e in unhealthy])
    assert total(text, "selfheal_actions_total", namespace=namespace, action="promote") == 0
