"""Operator metrics: labelled counters and gauges, rendered in the Prometheus text format 0.0.4."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def escape_label_value(value: str) -> str:
    """A label value as it goes between double quotes: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text: backslash and newline escaped (double quotes stay as they are)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class _Family:
    """One metric name: its HELP, its TYPE and one value per combination of label values."""

    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Iterable[str] = ()) -> None:
        if not _METRIC_NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        self.name, self.help = name, help
        self.labelnames = tuple(labelnames)
        for label in self.labelnames:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r} for {name}")
        if len(set(self.labelnames)) != len(self.labelnames):
            raise ValueError(f"duplicate label names for {name}: {self.labelnames}")
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, object]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {sorted(self.labelnames)}, got {sorted(labels)}")
        return tuple(str(labels[name]) for name in self.labelnames)

    def _add(self, amount: float, labels: dict[str, object]) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: object) -> float:
        """The current value for these label values (0 when never touched)."""
        key = self._key(labels)
        with self._lock:
            return self._values.get(key, 0.0)

    def samples(self) -> list[tuple[tuple[str, ...], float]]:
        with self._lock:
            values = dict(self._values)
        if not self.labelnames and not values:
            values[()] = 0.0  # a metric without labels exists from the start
        return sorted(values.items())

    def render(self) -> str:
        lines = [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for key, value in self.samples():
            if key:
                labels = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(self.labelnames, key, strict=True))
                lines.append(f"{self.name}{{{labels}}} {format_value(value)}")
            else:
                lines.append(f"{self.name} {format_value(value)}")
        return "\n".join(lines) + "\n"


class Counter(_Family):
    """Only goes up (until the process restarts)."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        if amount < 0:
            raise ValueError(f"counter {self.name} cannot decrease (got {amount})")
        self._add(amount, labels)


class Gauge(_Family):
    """Goes up and down; set to a value."""

    kind = "gauge"

    def set(self, value: float, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        self._add(amount, labels)

    def dec(self, amount: float = 1.0, **labels: object) -> None:
        self._add(-amount, labels)


class Registry:
    """The metric families of one process, rendered together, sorted by name."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self._lock = threading.Lock()

    def _register(self, cls: type[_Family], name: str, help: str, labelnames: Iterable[str]) -> _Family:
        with self._lock:
            existing = self._families.get(name)
            if existing is not None:
                if type(existing) is not cls or existing.labelnames != tuple(labelnames):
                    raise ValueError(f"metric {name} is already registered differently")
                return existing
            family = cls(name, help, labelnames)
            self._families[name] = family
            return family

    def counter(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Counter:
        family = self._register(Counter, name, help, labelnames)
        assert isinstance(family, Counter)
        return family

    def gauge(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Gauge:
        family = self._register(Gauge, name, help, labelnames)
        assert isinstance(family, Gauge)
        return family

    def render(self) -> str:
        """Every family in the text exposition format 0.0.4."""
        with self._lock:
            families = sorted(self._families.values(), key=lambda f: f.name)
        return "".join(f.render() for f in families)


@dataclass(frozen=True)
class OperatorMetrics:
    """What selfheal counts, in one registry; built once at startup and kept in the runtime."""

    registry: Registry
    build_info: Gauge
    analyses: Counter
    actions: Counter
    canaries_stopped: Counter
    analyzer_unavailable: Counter
    llm_tokens: Counter
    tickets_opened: Counter
    ticket_phase_changes: Counter
    github_requests_failed: Counter

    @classmethod
    def create(cls, version: str = "") -> OperatorMetrics:
        r = Registry()
        metrics = cls(
            registry=r,
            build_info=r.gauge("selfheal_build_info", "The running selfheal version (always 1).", ["version"]),
            analyses=r.counter(
                "selfheal_analyses_total",
                "Canary analyses, by the verdict reached and who reached it.",
                ["namespace", "policy", "trigger", "verdict", "analyzer"],
            ),
            actions=r.counter(
                "selfheal_actions_total",
                "Actions sent to Rollouts (abort, pause, promote); dry runs and skips not counted.",
                ["namespace", "action"],
            ),
            canaries_stopped=r.counter(
                "selfheal_canaries_stopped_total",
                "Canaries aborted or paused by selfheal on an unhealthy verdict.",
                ["namespace"],
            ),
            analyzer_unavailable=r.counter(
                "selfheal_analyzer_unavailable_total",
                "Analyses whose configured LLM or agent gave no verdict (the fallback applied).",
                ["namespace", "policy"],
            ),
            llm_tokens=r.counter(
                "selfheal_llm_tokens_total",
                "Tokens spent by the LLM (prompt plus completion).",
                ["namespace", "policy"],
            ),
            tickets_opened=r.counter("selfheal_tickets_opened_total", "RemediationTickets created.", ["namespace"]),
            ticket_phase_changes=r.counter(
                "selfheal_ticket_phase_changes_total",
                "RemediationTicket phase changes, by the phase entered.",
                ["namespace", "phase"],
            ),
            github_requests_failed=r.counter(
                "selfheal_github_requests_failed_total",
                "GitHub requests of ticket reconciliations that failed, by reason.",
                ["reason"],
            ),
        )
        if version:
            metrics.build_info.set(1, version=version)
        return metrics

    def render(self) -> str:
        return self.registry.render()
