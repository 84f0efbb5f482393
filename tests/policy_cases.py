"""SelfHealingPolicy specs that must be refused, shared by the unit tests and the apiserver tests."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

API_VERSION = "selfheal.dev/v1alpha1"
KIND = "SelfHealingPolicy"

# A valid base every case starts from; each case changes one thing in it.
BASE_SPEC: dict[str, Any] = {
    "selector": {"matchLabels": {"app": "checkout"}},
    "analysis": {"llm": {"provider": "openai", "model": "gpt-4o-mini", "apiKeySecretRef": {"name": "llm"}}},
    "remediation": {
        "github": {"repository": "example-org/checkout", "tokenSecretRef": {"name": "github"}},
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """BASE_SPEC with the dotted ``path`` set to ``value`` (intermediate objects created)."""
    spec = copy.deepcopy(BASE_SPEC)
    node = spec
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return spec


def _without(path: str) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_SPEC)
    node = spec
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]
    return spec


class PolicyCase(NamedTuple):
    """One policy spec and the field that makes it wrong.

    ``field`` is spelt as the apiserver names it in its error after ``spec.`` (list indexes left
    out: a v1.20 apiserver says ``spec.selector.matchExpressions.operator``). A case is also a plain
    tuple ``(id, spec, field, notes)``.
    """

    id: str
    spec: dict[str, Any]
    field: str
    notes: str = ""

    def manifest(self, name: str | None = None, namespace: str = "default") -> dict[str, Any]:
        """A full SelfHealingPolicy object for this spec, ready to send to the apiserver."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name or self.id, "namespace": namespace},
            "spec": copy.deepcopy(self.spec),
        }


# Refused by the pydantic models AND by the CRD schema (the apiserver answers 422 Invalid).
BAD_POLICIES: list[PolicyCase] = [
    PolicyCase("confidence-threshold-150", _with("decision.confidenceThreshold", 150), "decision.confidenceThreshold"),
    PolicyCase(
        "confidence-threshold-negative", _with("decision.confidenceThreshold", -1), "decision.confidenceThreshold"
    ),
    PolicyCase("unknown-on-unhealthy", _with("decision.onUnhealthy", "rollback"), "decision.onUnhealthy"),
    PolicyCase("unknown-on-healthy", _with("decision.onHealthy", "abort"), "decision.onHealthy"),
    PolicyCase("dry-run-not-boolean", _with("decision.dryRun", "yes"), "decision.dryRun"),
    PolicyCase(
        "bad-repository", _with("remediation.github.repository", "not a repository"), "remediation.github.repository"
    ),
    PolicyCase(
        "repository-without-owner", _with("remediation.github.repository", "checkout"), "remediation.github.repository"
    ),
    PolicyCase(
        "github-without-token", _without("remediation.github.tokenSecretRef"), "remediation.github.tokenSecretRef"
    ),
    PolicyCase(
        "api-url-not-http", _with("remediation.github.apiURL", "ftp://github.example.com"), "remediation.github.apiURL"
    ),
    PolicyCase("unknown-agent", _with("remediation.github.agent", {"type": "devin"}), "remediation.github.agent.type"),
    PolicyCase(
        "label-agent-without-label",
        _with("remediation.github.agent", {"type": "label"}),
        "remediation.github.agent",
        notes="cross-field rule, an anyOf branch in the CRD",
    ),
    PolicyCase(
        "dedup-window-zero", _with("remediation.github.dedupWindowHours", 0), "remediation.github.dedupWindowHours"
    ),
    PolicyCase("negative-tail-lines", _with("analysis.logs.tailLines", -5), "analysis.logs.tailLines"),
    PolicyCase("limit-bytes-too-small", _with("analysis.logs.limitBytes", 100), "analysis.logs.limitBytes"),
    PolicyCase("pods-per-side-too-many", _with("analysis.logs.podsPerSide", 21), "analysis.logs.podsPerSide"),
    PolicyCase("unknown-provider", _with("analysis.llm.provider", "anthropic"), "analysis.llm.provider"),
    PolicyCase(
        "a2a-without-base-url",
        _with("analysis.llm", {"provider": "a2a"}),
        "analysis.llm",
        notes="cross-field rule, an anyOf branch in the CRD",
    ),
    PolicyCase("base-url-not-a-url", _with("analysis.llm.baseURL", "llm.internal:8080"), "analysis.llm.baseURL"),
    PolicyCase("temperature-too-high", _with("analysis.llm.temperature", 2.5), "analysis.llm.temperature"),
    PolicyCase("timeout-zero", _with("analysis.llm.timeoutSeconds", 0), "analysis.llm.timeoutSeconds"),
    PolicyCase(
        "secret-name-invalid",
        _with("analysis.llm.apiKeySecretRef", {"name": "My_Secret"}),
        "analysis.llm.apiKeySecretRef.name",
    ),
    PolicyCase("extra-prompt-too-long", _with("analysis.extraPrompt", "x" * 4001), "analysis.extraPrompt"),
    PolicyCase(
        "log-watch-too-often", _with("triggers.logWatch", {"intervalSeconds": 5}), "triggers.logWatch.intervalSeconds"
    ),
    PolicyCase("budget-tokens-negative", _with("budget.tokensPerDay", -1), "budget.tokensPerDay"),
    PolicyCase("budget-analyses-zero", _with("budget.analysesPerHour", 0), "budget.analysesPerHour"),
    PolicyCase(
        "selector-bad-operator",
        _with("selector.matchExpressions", [{"key": "tier", "operator": "Equals", "values": ["a"]}]),
        "selector.matchExpressions.operator",
    ),
    PolicyCase(
        "selector-in-without-values",
        _with("selector.matchExpressions", [{"key": "tier", "operator": "In"}]),
        "selector.matchExpressions",
        notes="cross-field rule, an anyOf branch in the CRD",
    ),
    PolicyCase(
        "selector-exists-with-values",
        _with("selector.matchExpressions", [{"key": "tier", "operator": "Exists", "values": ["a"]}]),
        "selector.matchExpressions",
        notes="cross-field rule, an anyOf branch in the CRD",
    ),
    PolicyCase(
        "redaction-pattern-without-regex",
        _with("analysis.redaction.patterns", [{"name": "card"}]),
        "analysis.redaction.patterns.regex",
    ),
]

# Unknown fields. Pydantic refuses them (extra="forbid"); a v1.20 apiserver has no strict field
# validation, so it accepts the object and silently prunes the unknown field.
PRUNED_POLICIES: list[PolicyCase] = [
    PolicyCase("unknown-spec-field", _with("dryRun", True), "dryRun", notes="dryRun belongs under decision"),
    PolicyCase("misspelt-decision-field", _with("decision.onUnhealty", "pause"), "decision.onUnhealty"),
    PolicyCase("unknown-github-field", _with("remediation.github.token", "ghp_x"), "remediation.github.token"),
]

# Refused by pydantic only: the CRD schema cannot express the rule.
PYDANTIC_ONLY_BAD_POLICIES: list[PolicyCase] = [
    PolicyCase(
        "redaction-regex-does-not-compile",
        _with("analysis.redaction.patterns", [{"name": "broken", "regex": "(unclosed"}]),
        "analysis.redaction.patterns.regex",
    ),
]
