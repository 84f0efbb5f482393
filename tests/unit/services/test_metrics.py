"""The metrics registry renders the Prometheus text format 0.0.4: HELP/TYPE, escaped labels, sorted output."""

from __future__ import annotations

import re

import pytest

from selfheal.services.metrics import (
    OperatorMetrics,
    Registry,
    escape_help,
    escape_label_value,
    format_value,
)

# One sample line of the text format: name, optional {labels}, value.
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? \S+$')


def test_counter_with_labels_renders_help_type_and_one_line_per_label_set() -> None:
    r = Registry()
    c = r.counter("selfheal_actions_total", "Actions sent.", ["namespace", "action"])
    c.inc(namespace="team-b", action="abort")
    c.inc(namespace="team-a", action="promote")
    c.inc(2, namespace="team-a", action="abort")
    assert r.render() == (
        "# HELP selfheal_actions_total Actions sent.\n"
        "# TYPE selfheal_actions_total counter\n"
        'selfheal_actions_total{namespace="team-a",action="abort"} 2\n'
        'selfheal_actions_total{namespace="team-a",action="promote"} 1\n'
        'selfheal_actions_total{namespace="team-b",action="abort"} 1\n'
    )
    assert c.value(namespace="team-a", action="abort") == 2
    assert c.value(namespace="nowhere", action="abort") == 0


def test_families_are_sorted_by_name_and_labelless_ones_start_at_zero() -> None:
    r = Registry()
    r.gauge("zeta", "Last.").set(1.5)
    r.counter("alpha_total", "First.")
    text = r.render()
    assert text.index("# HELP alpha_total") < text.index("# HELP zeta")
    assert "alpha_total 0\n" in text
    assert "# TYPE zeta gauge\nzeta 1.5\n" in text
    assert text.endswith("\n")


def test_label_values_are_escaped() -> None:
    r = Registry()
    c = r.counter("x_total", "X.", ["v"])
    c.inc(v='a "quoted" back\\slash\nnewline')
    line = r.render().splitlines()[-1]
    assert line == 'x_total{v="a \\"quoted\\" back\\\\slash\\nnewline"} 1'
    assert SAMPLE.match(line)


def test_help_is_escaped_but_keeps_quotes() -> None:
    assert escape_help('a\\b\nc "d"') == 'a\\\\b\\nc "d"'
    assert escape_label_value('"\\\n') == '\\"\\\\\\n'
    r = Registry()
    r.counter("y_total", "two\nlines")
    assert r.render().splitlines()[0] == "# HELP y_total two\\nlines"


def test_values_are_formatted_as_prometheus_parses_them() -> None:
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(float("inf")) == "+Inf"
    assert format_value(float("-inf")) == "-Inf"
    assert format_value(float("nan")) == "NaN"


def test_gauge_goes_up_and_down() -> None:
    g = Registry().gauge("in_flight", "In flight.", ["namespace"])
    g.inc(namespace="a")
    g.inc(namespace="a")
    g.dec(namespace="a")
    assert g.value(namespace="a") == 1
    g.set(7, namespace="a")
    assert g.value(namespace="a") == 7


def test_wrong_labels_and_decreasing_counters_are_refused() -> None:
    c = Registry().counter("z_total", "Z.", ["namespace"])
    with pytest.raises(ValueError, match="takes labels"):
        c.inc(namespace="a", extra="b")
    with pytest.raises(ValueError, match="takes labels"):
        c.inc()
    with pytest.raises(ValueError, match="cannot decrease"):
        c.inc(-1, namespace="a")


def test_invalid_names_are_refused() -> None:
    r = Registry()
    with pytest.raises(ValueError, match="metric name"):
        r.counter("1bad", "x")
    with pytest.raises(ValueError, match="label name"):
        r.counter("ok_total", "x", ["bad-label"])
    with pytest.raises(ValueError, match="label name"):
        r.counter("ok_total", "x", ["__reserved"])


def test_registering_twice_returns_the_same_family_unless_it_differs() -> None:
    r = Registry()
    a = r.counter("same_total", "S.", ["x"])
    assert r.counter("same_total", "S.", ["x"]) is a
    with pytest.raises(ValueError, match="already registered"):
        r.gauge("same_total", "S.", ["x"])
    with pytest.raises(ValueError, match="already registered"):
        r.counter("same_total", "S.", ["y"])


def test_operator_metrics_expose_every_selfheal_family_in_valid_text_format() -> None:
    m = OperatorMetrics.create("1.2.3")
    m.analyses.inc(namespace="team-a", policy="heal", trigger="logWatch", verdict="unhealthy", analyzer="statistical")
    m.actions.inc(namespace="team-a", action="abort")
    m.canaries_stopped.inc(namespace="team-a")
    m.analyzer_unavailable.inc(namespace="team-a", policy="heal")
    m.llm_tokens.inc(120, namespace="team-a", policy="heal")
    m.tickets_opened.inc(namespace="team-a")
    m.ticket_phase_changes.inc(namespace="team-a", phase="IssueOpened")
    m.github_requests_failed.inc(reason="RateLimited")
    text = m.render()
    for name in (
        "selfheal_analyses_total",
        "selfheal_actions_total",
        "selfheal_canaries_stopped_total",
        "selfheal_analyzer_unavailable_total",
        "selfheal_llm_tokens_total",
        "selfheal_tickets_opened_total",
        "selfheal_ticket_phase_changes_total",
        "selfheal_github_requests_failed_total",
    ):
        assert f"# TYPE {name} counter\n" in text
    assert 'selfheal_build_info{version="1.2.3"} 1\n' in text
    assert (
        'selfheal_analyses_total{namespace="team-a",policy="heal",trigger="logWatch",verdict="unhealthy",'
        'analyzer="statistical"} 1\n'
    ) in text
    assert 'selfheal_llm_tokens_total{namespace="team-a",policy="heal"} 120\n' in text
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or SAMPLE.match(line), line
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert names == sorted(names)
