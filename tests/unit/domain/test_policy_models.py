"""Unit tests of the SelfHealingPolicy and RemediationTicket models, selector matching, ticket names and conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from selfheal.domain.evidence import ContainerState, FailedMetric, PodEvidence, Side
from selfheal.domain.policy import (
    AgentSpec,
    AgentType,
    BudgetSpec,
    DecisionSpec,
    GitHubSpec,
    HealthyAction,
    InconclusiveAction,
    LabelSelector,
    LabelSelectorRequirement,
    LLMProvider,
    LLMSpec,
    LogBounds,
    PolicySpec,
    PolicyStatus,
    SelfHealingPolicy,
    UnavailableAction,
    UnhealthyAction,
    selector_matches,
)
from selfheal.domain.ticket import (
    Condition,
    ConditionStatus,
    ConditionType,
    FailedMetricRecord,
    PodRecord,
    Reason,
    RemediationTicket,
    TicketPhase,
    TicketVerdict,
    get_condition,
    is_condition_true,
    is_dns1123_subdomain,
    set_condition,
    ticket_name,
    to_wire,
)
from selfheal.domain.verdict import Analyzer, Verdict, VerdictKind

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


# --- Defaults -------------------------------------------------------------------------------------


def test_policy_defaults() -> None:
    spec = PolicySpec()
    assert spec.selector == LabelSelector()
    t = spec.triggers
    assert (t.analysis_failed, t.analysis_inconclusive, t.indefinite_pause) == (True, True, True)
    assert (t.log_watch.enabled, t.log_watch.interval_seconds) == (True, 60)
    logs = spec.analysis.logs
    assert (logs.tail_lines, logs.limit_bytes, logs.since_canary_start) == (500, 262144, True)
    assert (logs.pods_per_side, logs.previous_container, logs.containers) == (3, True, [])
    llm = spec.analysis.llm
    assert llm.provider == LLMProvider.NONE
    assert (llm.model, llm.base_url, llm.api_key_secret_ref) == ("", "", None)
    assert (llm.timeout_seconds, llm.max_input_tokens, llm.max_retries, llm.temperature) == (30, 4000, 2, 0)
    assert spec.analysis.extra_prompt == ""
    assert spec.analysis.redaction.patterns == [] and spec.analysis.redaction.builtins is True
    d = spec.decision
    assert d.confidence_threshold == 70
    assert d.on_unhealthy == UnhealthyAction.ABORT
    assert d.on_healthy == HealthyAction.NONE
    assert d.on_inconclusive == InconclusiveAction.NONE
    assert d.on_analyzer_unavailable == UnavailableAction.STATISTICAL
    assert d.dry_run is False
    assert spec.remediation.github is None
    assert (spec.budget.analyses_per_hour, spec.budget.tokens_per_day) == (30, 200000)


def test_github_defaults() -> None:
    gh = GitHubSpec.model_validate({"repository": "octo/app", "tokenSecretRef": {"name": "gh"}})
    assert gh.token_secret_ref.key == "token"
    assert gh.api_url == "https://api.github.com"
    assert gh.labels == ["selfheal"]
    assert gh.agent.type == AgentType.NONE and gh.agent.base_branch == "main"
    assert (gh.dedup_window_hours, gh.comment_interval_minutes, gh.patience_hours) == (168, 60, 24)
    assert gh.verification.require_merge_sha is False and gh.verification.close_issue is True
    assert (gh.owner, gh.repo) == ("octo", "app")
    other = GitHubSpec.model_validate({"repository": "octo/app", "tokenSecretRef": {"name": "gh"}})
    other.labels.append("x")
    assert gh.labels == ["selfheal"]


def test_llm_secret_key_default() -> None:
    llm = LLMSpec.model_validate({"provider": "openai", "apiKeySecretRef": {"name": "llm"}})
    assert llm.api_key_secret_ref is not None and llm.api_key_secret_ref.key == "api-key"


def test_names_and_aliases() -> None:
    by_alias = LLMSpec.model_validate({"baseURL": "http://x", "timeoutSeconds": 5})
    by_name = LLMSpec(base_url="http://x", timeout_seconds=5)
    assert by_alias == by_name
    dumped = by_name.model_dump()
    assert dumped["baseURL"] == "http://x" and dumped["timeoutSeconds"] == 5
    gh = GitHubSpec(repository="o/r", token_secret_ref={"name": "t"}, api_url="https://ghe.example.com/api/v3")
    assert gh.model_dump()["apiURL"] == "https://ghe.example.com/api/v3"
    assert gh.verification.model_dump() == {"requireMergeSHA": False, "closeIssue": True}


def test_unknown_fields_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        PolicySpec.model_validate({"decision": {"onUnhealty": "pause"}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        PolicySpec.model_validate({"dryRun": True})


def test_values_are_not_coerced() -> None:
    with pytest.raises(ValidationError):
        DecisionSpec.model_validate({"dryRun": "yes"})
    with pytest.raises(ValidationError):
        DecisionSpec.model_validate({"confidenceThreshold": "70"})
    assert LLMSpec.model_validate({"temperature": 1}).temperature == 1


# --- Bounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "field", "low", "high"),
    [
        (DecisionSpec, "confidenceThreshold", 0, 100),
        (LogBounds, "tailLines", 1, 100000),
        (LogBounds, "limitBytes", 1024, 10485760),
        (LogBounds, "podsPerSide", 1, 20),
        (LLMSpec, "timeoutSeconds", 1, 600),
        (LLMSpec, "maxInputTokens", 500, 200000),
        (LLMSpec, "maxRetries", 0, 10),
        (BudgetSpec, "analysesPerHour", 1, 3600),
        (BudgetSpec, "tokensPerDay", 0, 100000000),
    ],
)
def test_integer_bounds(model, field: str, low: int, high: int) -> None:
    assert model.model_validate({field: low}).model_dump()[field] == low
    assert model.model_validate({field: high}).model_dump()[field] == high
    with pytest.raises(ValidationError):
        model.model_validate({field: low - 1})
    with pytest.raises(ValidationError):
        model.model_validate({field: high + 1})


@pytest.mark.parametrize("field", ["dedupWindowHours", "commentIntervalMinutes", "patienceHours"])
def test_github_bounds(field: str) -> None:
    base = {"repository": "o/r", "tokenSecretRef": {"name": "t"}}
    with pytest.raises(ValidationError):
        GitHubSpec.model_validate({**base, field: 0})


@pytest.mark.parametrize("repository", ["o/r", "my-org/my.repo_2", "A/B"])
def test_good_repositories(repository: str) -> None:
    GitHubSpec.model_validate({"repository": repository, "tokenSecretRef": {"name": "t"}})


@pytest.mark.parametrize("repository", ["", "o", "o/r/x", "o /r", "https://github.com/o/r"])
def test_bad_repositories(repository: str) -> None:
    with pytest.raises(ValidationError):
        GitHubSpec.model_validate({"repository": repository, "tokenSecretRef": {"name": "t"}})


def test_temperature_bounds() -> None:
    assert LLMSpec(temperature=2).temperature == 2
    with pytest.raises(ValidationError):
        LLMSpec(temperature=2.01)
    with pytest.raises(ValidationError):
        LLMSpec(temperature=-0.1)


def test_a2a_needs_base_url() -> None:
    with pytest.raises(ValidationError, match="baseURL"):
        LLMSpec(provider="a2a")
    assert LLMSpec(provider="a2a", base_url="http://agent:8080").provider == LLMProvider.A2A
    with pytest.raises(ValidationError):
        LLMSpec(base_url="agent:8080")


def test_agent_targets() -> None:
    with pytest.raises(ValidationError):
        AgentSpec(type="label")
    with pytest.raises(ValidationError):
        AgentSpec(type="assignee")
    assert AgentSpec(type="label", label="ai-fix").label == "ai-fix"
    assert AgentSpec(type="copilot").type == AgentType.COPILOT
    with pytest.raises(ValidationError):
        AgentSpec(type="devin")


def test_redaction_regex_must_compile() -> None:
    PolicySpec.model_validate({"analysis": {"redaction": {"patterns": [{"name": "k", "regex": r"key-\d+"}]}}})
    with pytest.raises(ValidationError, match="regular expression"):
        PolicySpec.model_validate({"analysis": {"redaction": {"patterns": [{"name": "k", "regex": "(x"}]}}})


# --- Selector -------------------------------------------------------------------------------------


def req(key: str, operator: str, *values: str) -> dict:
    return {"key": key, "operator": operator, "values": list(values)}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (None, {"app": "a"}, True),
        ({}, {}, True),
        ({}, None, True),
        ({"matchLabels": {"app": "a"}}, {"app": "a", "x": "y"}, True),
        ({"matchLabels": {"app": "a"}}, {"app": "b"}, False),
        ({"matchLabels": {"app": "a"}}, {}, False),
        ({"matchLabels": {"app": "a", "tier": "web"}}, {"app": "a"}, False),
        ({"matchExpressions": [req("tier", "In", "web", "api")]}, {"tier": "api"}, True),
        ({"matchExpressions": [req("tier", "In", "web")]}, {"tier": "db"}, False),
        ({"matchExpressions": [req("tier", "In", "web")]}, {}, False),
        ({"matchExpressions": [req("tier", "NotIn", "web")]}, {"tier": "db"}, True),
        ({"matchExpressions": [req("tier", "NotIn", "web")]}, {}, True),
        ({"matchExpressions": [req("tier", "NotIn", "web")]}, {"tier": "web"}, False),
        ({"matchExpressions": [req("canary", "Exists")]}, {"canary": ""}, True),
        ({"matchExpressions": [req("canary", "Exists")]}, {}, False),
        ({"matchExpressions": [req("opt-out", "DoesNotExist")]}, {}, True),
        ({"matchExpressions": [req("opt-out", "DoesNotExist")]}, {"opt-out": "yes"}, False),
        (
            {
                "matchLabels": {"app": "a"},
                "matchExpressions": [req("tier", "In", "web"), req("opt-out", "DoesNotExist")],
            },
            {"app": "a", "tier": "web"},
            True,
        ),
        (
            {
                "matchLabels": {"app": "a"},
                "matchExpressions": [req("tier", "In", "web"), req("opt-out", "DoesNotExist")],
            },
            {"app": "a", "tier": "web", "opt-out": "1"},
            False,
        ),
    ],
)
def test_selector_matches(selector, labels, expected: bool) -> None:
    assert selector_matches(selector, labels) is expected
    if selector is not None:
        assert selector_matches(LabelSelector.model_validate(selector), labels) is expected


@pytest.mark.parametrize(
    "requirement",
    [
        req("k", "In"),
        req("k", "NotIn"),
        req("k", "Exists", "v"),
        req("k", "DoesNotExist", "v"),
        req("k", "Equals", "v"),
        req("", "Exists"),
    ],
)
def test_bad_selector_requirements(requirement: dict) -> None:
    with pytest.raises(ValidationError):
        LabelSelectorRequirement.model_validate(requirement)


def test_policy_object_and_selects() -> None:
    obj = {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "SelfHealingPolicy",
        "metadata": {
            "name": "p",
            "namespace": "shop",
            "uid": "u-1",
            "generation": 3,
            "labels": {"team": "x"},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"selector": {"matchLabels": {"app": "a"}}},
        "status": None,
    }
    policy = SelfHealingPolicy.model_validate(obj)
    assert (policy.metadata.name, policy.metadata.namespace, policy.metadata.uid) == ("p", "shop", "u-1")
    assert policy.metadata.generation == 3 and policy.metadata.labels == {"team": "x"}
    assert policy.status == PolicyStatus()
    assert policy.selects({"app": "a"}) and not policy.selects({"app": "b"})


def test_status_ignores_foreign_keys() -> None:
    status = PolicyStatus.model_validate({"matchedCount": 2, "kopf": {"progress": {}}, "phase": "Ready"})
    assert status.matched_count == 2


# --- Ticket names ---------------------------------------------------------------------------------


def test_ticket_name_plain() -> None:
    assert ticket_name("checkout", "5d4f8b7c9") == "checkout-5d4f8b7c9"
    assert ticket_name("web.v2", "abc") == "web.v2-abc"


def test_ticket_name_is_deterministic() -> None:
    assert ticket_name("a" * 300, "h1") == ticket_name("a" * 300, "h1")


@pytest.mark.parametrize(
    ("rollout", "pod_hash"),
    [
        ("a" * 250, "5d4f8b7c9"),
        ("a" * 253, "x" * 63),
        ("Checkout_API", "5D4F"),
        ("checkout", ""),
        ("", "abc"),
        ("-weird-.", "--"),
        ("x." * 120 + "y", "hash"),
    ],
)
def test_ticket_name_is_always_valid(rollout: str, pod_hash: str) -> None:
    name = ticket_name(rollout, pod_hash)
    assert is_dns1123_subdomain(name), name
    assert len(name) <= 253


def test_ticket_names_stay_distinct_when_truncated() -> None:
    long = "r" * 250
    names = {ticket_name(long, h) for h in ("aaa", "aab", "bbb")}
    assert len(names) == 3
    assert ticket_name("Checkout", "abc") != ticket_name("checkout", "abc")


# --- Conditions -----------------------------------------------------------------------------------


def test_set_condition_appends_new_type() -> None:
    conds = set_condition([], ConditionType.READY, ConditionStatus.TRUE, Reason.VALID, "ok", NOW, 2)
    assert len(conds) == 1
    c = conds[0]
    assert (c.type, c.status, c.reason, c.message) == ("Ready", ConditionStatus.TRUE, "Valid", "ok")
    assert c.last_transition_time == NOW and c.observed_generation == 2


def test_set_condition_keeps_transition_time_when_status_unchanged() -> None:
    first = set_condition(None, "Ready", True, Reason.VALID, "ok", NOW, 1)
    later = NOW + timedelta(minutes=5)
    second = set_condition(first, "Ready", "True", Reason.VALID, "still ok", later, 2)
    assert second[0].last_transition_time == NOW
    assert second[0].message == "still ok" and second[0].observed_generation == 2
    third = set_condition(second, "Ready", False, Reason.SECRET_NOT_FOUND, "secret gh missing", later, 2)
    assert third[0].last_transition_time == later
    assert third[0].reason == "SecretNotFound"
    # the input list is left alone
    assert first[0].message == "ok" and second[0].status == ConditionStatus.TRUE


def test_set_condition_keeps_order_and_accepts_wire_dicts() -> None:
    wire = [
        {
            "type": "IssueOpened",
            "status": "True",
            "reason": "IssueCreated",
            "lastTransitionTime": "2026-11-26T08:00:00Z",
        },
        {
            "type": "FixProposed",
            "status": "False",
            "reason": "AgentAssigned",
            "lastTransitionTime": "2026-11-26T08:00:00Z",
        },
    ]
    conds = set_condition(wire, ConditionType.FIX_PROPOSED, True, Reason.PULL_REQUEST_OPENED, "#7", NOW)
    assert [c.type for c in conds] == ["IssueOpened", "FixProposed"]
    assert conds[0].last_transition_time == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    assert conds[1].last_transition_time == NOW
    assert is_condition_true(conds, "FixProposed")
    assert not is_condition_true(conds, "Verified")
    assert get_condition(conds, "Verified") is None
    assert get_condition(wire, "IssueOpened").reason == "IssueCreated"


def test_condition_wire_form() -> None:
    (c,) = set_condition([], ConditionType.VERIFIED, False, Reason.REVISION_REGRESSED, "", NOW, None)
    assert to_wire(c) == {
        "type": "Verified",
        "status": "False",
        "reason": "RevisionRegressed",
        "lastTransitionTime": "2026-11-26T09:00:00Z",
    }
    assert Condition.model_validate(to_wire(c)) == c


def test_named_constants() -> None:
    assert {t.value for t in ConditionType} == {"Ready", "IssueOpened", "FixProposed", "FixMerged", "Verified"}
    for reason in (
        "IssueCreated",
        "GitHubDisabled",
        "BadCredentials",
        "RepositoryNotFound",
        "InvalidLabel",
        "PullRequestOpened",
        "PullRequestMerged",
        "AgentStalled",
        "RevisionVerified",
        "RevisionRegressed",
    ):
        assert Reason(reason) == reason
    assert [p.value for p in TicketPhase] == [
        "Open",
        "IssueOpened",
        "FixProposed",
        "FixMerged",
        "Verifying",
        "Resolved",
        "Regressed",
        "Closed",
        "Failed",
    ]


# --- Ticket models --------------------------------------------------------------------------------


def test_ticket_verdict_round_trip() -> None:
    verdict = Verdict(
        verdict=VerdictKind.UNHEALTHY,
        confidence=88,
        summary="canary panics on startup",
        analyzer=Analyzer.COMBINED,
        root_cause="nil config",
        evidence_refs=["T1", "restarts"],
        hard_evidence=True,
    )
    recorded = TicketVerdict.from_verdict(verdict)
    assert recorded.model_dump()["rootCause"] == "nil config"
    assert recorded.to_verdict() == verdict


def test_pod_and_metric_records() -> None:
    pod = PodEvidence(
        name="p-1",
        side=Side.CANARY,
        phase="Running",
        containers=[
            ContainerState(
                name="app", restart_count=2, waiting_reason="CrashLoopBackOff", last_terminated_reason="OOMKilled"
            ),
            ContainerState(name="side", restart_count=1, last_terminated_reason="OOMKilled"),
        ],
    )
    record = PodRecord.from_pod(pod)
    assert record.side == "canary" and record.restarts == 3
    assert record.reasons == ["CrashLoopBackOff", "OOMKilled"]
    metric = FailedMetricRecord.from_failed_metric(
        FailedMetric(analysis_run="ar-1", name="error-rate", phase="Failed", values=[str(i) for i in range(30)])
    )
    assert metric.values == [str(i) for i in range(10, 30)]


def test_ticket_from_kube_object() -> None:
    obj = {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "RemediationTicket",
        "metadata": {
            "name": "checkout-abc",
            "namespace": "shop",
            "ownerReferences": [
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Rollout",
                    "name": "checkout",
                    "uid": "u",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "rollout": "checkout",
            "policy": "p",
            "podTemplateHash": "abc",
            "fingerprint": "00ff",
            "verdict": {"verdict": "unhealthy", "confidence": 80, "analyzer": "statistical", "summary": "s"},
        },
        "status": {"phase": "IssueOpened", "issue": {"number": 4, "state": "open"}, "occurrences": 2},
    }
    ticket = RemediationTicket.model_validate(obj)
    assert ticket.status.phase == TicketPhase.ISSUE_OPENED
    assert ticket.status.issue is not None and ticket.status.issue.number == 4
    assert ticket.metadata.owner_references[0].kind == "Rollout"
    body = ticket.to_body()
    assert "status" not in body
    assert body["spec"]["podTemplateHash"] == "abc"
    assert body["metadata"]["ownerReferences"][0]["apiVersion"] == "argoproj.io/v1alpha1"
    assert "" not in body["spec"].values()


def test_to_wire_drops_empty_strings_and_nones() -> None:
    assert to_wire({"a": "", "b": None, "c": {"d": ""}, "e": [{"f": ""}], "g": 0, "h": False}) == {
        "c": {},
        "e": [{}],
        "g": 0,
        "h": False,
    }
