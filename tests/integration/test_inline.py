"""selfheal inside Argo's own analysis: the examples' AnalysisTemplates call the running operator's verdict endpoint
through the simulated controller's web provider (args, a header from a Secret, jsonPath, conditions), and Argo
acts on its own analysis."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfheal.testing import scenarios as sc
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.github_server import GitHubStandIn
from selfheal.testing.llm_server import OpenAIStandIn
from selfheal.testing.operator import OperatorProcess
from selfheal.testing.workloads import Behaviour, register_behaviour
from tests.conftest import VERDICT_TOKEN

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "inline"
CHART_URL = "http://selfheal-verdict.selfheal-system.svc.cluster.local:8081/api/v1/verdict"
POLICIES = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"
TICKETS = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/remediationtickets"
# The examples' seconds, shortened for the tests: Argo's intervals, delays and pauses.
FAST = {"10s": "2s", "30s": "2s"}


def example(name: str, url: str) -> list[dict[str, Any]]:
    """A file of examples/inline as written, with the verdict endpoint at ``url`` and its durations shortened."""
    text = (EXAMPLES / name).read_text().replace(CHART_URL, url)
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        for metric in (doc.get("spec") or {}).get("metrics") or []:
            for key in ("interval", "initialDelay"):
                if key in metric:
                    metric[key] = FAST.get(metric[key], metric[key])
        for step in (((doc.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get("steps") or []:
            if "pause" in step and step["pause"].get("duration"):
                step["pause"]["duration"] = FAST.get(step["pause"]["duration"], step["pause"]["duration"])
    return docs


def apply(cp: ControlPlane, namespace: str, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        doc = copy.deepcopy(doc)
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "Secret":
            doc["stringData"] = {"token": VERDICT_TOKEN}
        cp.apply_object(doc)


def runs(cp: ControlPlane, namespace: str, rollout: str, kind: str) -> list[dict[str, Any]]:
    return [
        r for r in sc.analysis_runs(cp.admin, namespace, rollout) if r["metadata"]["labels"]["rollout-type"] == kind
    ]


def answers(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdicts selfheal gave, as Argo recorded them (the metric reads the whole answer: `{$}`)."""
    measurements = run["status"]["metricResults"][0]["measurements"]
    return [json.loads(m["value"]) for m in measurements if m.get("value")]


def tickets(cp: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    return cp.admin.items(TICKETS.format(ns=namespace))


def selfheal_events(cp: ControlPlane, namespace: str, name: str) -> list[dict[str, Any]]:
    return [
        e for e in sc.events(cp.admin, namespace, name=name) if (e.get("source") or {}).get("component") == "selfheal"
    ]


def wait_promoted(cp: ControlPlane, namespace: str, name: str, stable: str, timeout: float = 60) -> dict[str, Any]:
    return sc.wait_rollout(
        cp.admin,
        namespace,
        name,
        lambda o: o["status"].get("stableRS") not in (None, stable) and sc.rollout_phase(o)[0] == "Healthy",
        timeout=timeout,
        message=f"{name} promoted",
    )


@pytest.fixture
def fast_argo(start_argo: Any) -> ArgoSimulator:
    """The simulated controller, its pods busy enough that a canary has a verdict within seconds."""
    return start_argo(requests_per_second=100)


def test_the_canary_examples_pass_a_healthy_canary_and_argo_aborts_a_panicking_one(
    control_plane: ControlPlane, operator: OperatorProcess, fast_argo: ArgoSimulator, namespace: str
) -> None:
    cp, ns, url = control_plane, namespace, operator.verdict_url
    with GitHubStandIn(token="gh-token", repos=["acme/checkout"]) as gh:
        cp.admin.create(
            f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "github"}, "stringData": {"token": "gh-token"}}
        )
        [policy] = example("policy-inline.yaml", url)
        policy["spec"]["remediation"] = {
            "github": {"repository": "acme/checkout", "apiURL": gh.api_url, "tokenSecretRef": {"name": "github"}}
        }
        for name in (
            "secret-verdict-token.yaml",
            "analysistemplate-selfheal-step.yaml",
            "analysistemplate-selfheal-background.yaml",
            "rollout-canary-inline.yaml",
        ):
            apply(cp, ns, example(name, url))
        apply(cp, ns, [policy])
        blue = sc.wait_phase(cp.admin, ns, "checkout", "Healthy", timeout=30)["status"]["stableRS"]

        # A healthy canary: every measurement of the step answered healthy, and Argo goes on to promote it.
        sc.set_image(cp.admin, ns, "checkout", "random")
        random = wait_promoted(cp, ns, "checkout", blue)["status"]["stableRS"]
        [step] = runs(cp, ns, "checkout", "Step")
        assert step["status"]["phase"] == "Successful"
        said = answers(step)
        # A young canary may be too small to judge at first: unsure, and the step's inconclusiveLimit waits for it.
        assert len(said) == 3 and all(a["canary"] == random and a["verdict"] != "unhealthy" for a in said)
        assert said[-1]["healthy"] and said[-1]["score"] > 0.5
        assert any("asked through its web metric" in e["message"] for e in selfheal_events(cp, ns, "checkout"))
        assert tickets(cp, ns) == []

        # A panicking canary: selfheal's answer fails Argo's own analysis, and Argo aborts.
        sc.set_image(cp.admin, ns, "checkout", "panic")
        ro = sc.wait_phase(cp.admin, ns, "checkout", "Degraded", timeout=60)
        panic = ro["status"]["currentPodHash"]
        assert re.search(r"analysis phase error/failed: Metric \"selfheal\" assessed Failed", ro["status"]["message"])
        failed = [r for r in sc.analysis_runs(cp.admin, ns, "checkout") if r["status"].get("phase") == "Failed"]
        [verdict] = [a for a in answers(failed[0]) if not a["healthy"]][-1:]
        assert verdict["verdict"] == "unhealthy" and verdict["score"] == 0 and verdict["canary"] == panic
        assert "index out of range" in verdict["summary"] and verdict["ticket"] == f"checkout-{panic}"

        # One ticket, counted once, and one GitHub issue: the failed AnalysisRun is not judged a second time.
        cp.admin.wait_for(
            lambda: len(gh.issues("acme/checkout")) == 1 and gh.issues("acme/checkout")[0]["state"] == "open",
            timeout=30,
            message="the issue",
        )
        fast_argo.wait_passes(10)
        [ticket] = tickets(cp, ns)
        assert ticket["metadata"]["name"] == f"checkout-{panic}" and ticket["spec"]["trigger"] == "inline"
        assert ticket["status"]["occurrences"] == 1
        unhealthy = [e for e in selfheal_events(cp, ns, "checkout") if e["reason"] == "CanaryUnhealthy"]
        assert len(unhealthy) == 1 and "answered Argo's web metric unhealthy" in unhealthy[0]["message"]
        assert len(gh.issues("acme/checkout")) == 1


def test_the_blue_green_example_promotes_a_healthy_preview_and_aborts_a_panicking_one(
    control_plane: ControlPlane, operator: OperatorProcess, fast_argo: ArgoSimulator, namespace: str
) -> None:
    cp, ns, url = control_plane, namespace, operator.verdict_url
    for name in (
        "secret-verdict-token.yaml",
        "analysistemplate-selfheal-prepromotion.yaml",
        "services-bluegreen-inline.yaml",
        "rollout-bluegreen-inline.yaml",
        "policy-inline.yaml",
    ):
        apply(cp, ns, example(name, url))
    blue = sc.wait_phase(cp.admin, ns, "checkout-bg", "Healthy", timeout=30)["status"]["stableRS"]

    sc.set_image(cp.admin, ns, "checkout-bg", "random")
    green = wait_promoted(cp, ns, "checkout-bg", blue)["status"]["stableRS"]
    [pre] = runs(cp, ns, "checkout-bg", "PrePromotion")
    said = answers(pre)
    assert pre["status"]["phase"] == "Successful" and len(said) == 2
    assert all(a["healthy"] and a["step"] == "blueGreen: preview" for a in said)

    sc.set_image(cp.admin, ns, "checkout-bg", "panic")
    ro = sc.wait_phase(cp.admin, ns, "checkout-bg", "Degraded", timeout=60)
    assert "Blue/green pre-promotion analysis phase error/failed" in ro["status"]["message"]
    assert ro["status"]["blueGreen"]["activeSelector"] == green  # production never saw the panicking pods
    [ticket] = tickets(cp, ns)
    assert ticket["spec"]["podTemplateHash"] == ro["status"]["currentPodHash"]
    assert ticket["spec"]["step"] == "blueGreen: preview" and ticket["status"]["occurrences"] == 1


def web_template(
    name: str, url: str, *, success: str, json_path: str, interval: str, count: int, timeout: int = 10
) -> dict:
    """A bare web metric template of the plugin style, its token sent from the Secret as the examples do."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {
            "args": [
                {"name": "namespace"},
                {"name": "rollout"},
                {"name": "canary-hash"},
                {"name": "verdict-token", "valueFrom": {"secretKeyRef": {"name": "selfheal-verdict", "key": "token"}}},
            ],
            "metrics": [
                {
                    "name": "selfheal",
                    # the canary serves traffic for a moment before it is judged, as plugin users configure it
                    "initialDelay": "3s",
                    "interval": interval,
                    "count": count,
                    "successCondition": success,
                    "consecutiveErrorLimit": 1,
                    "provider": {
                        "web": {
                            "url": f"{url}?namespace={{{{args.namespace}}}}&rollout={{{{args.rollout}}}}"
                            f"&canary={{{{args.canary-hash}}}}&timeoutSeconds={timeout}",
                            "headers": [{"key": "Authorization", "value": "Bearer {{args.verdict-token}}"}],
                            "timeoutSeconds": timeout,
                            "jsonPath": json_path,
                        }
                    },
                }
            ],
        },
    }


IDENTITY = [
    {"name": "namespace", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    {"name": "rollout", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
]


def plugin_style(
    cp: ControlPlane, ns: str, url: str, *, policy_spec: dict | None, count: int = 8, timeout: int = 10
) -> str:
    """A Rollout whose one step asks selfheal ``count`` times, 300 ms apart, the metric plugin's way
    (``jsonPath: {$.score}``, ``result > 0.50``); returns its first stable hash."""
    apply(cp, ns, example("secret-verdict-token.yaml", url))
    template = web_template(
        "plugin-style",
        url,
        success="result > 0.50",
        json_path="{$.score}",
        interval="300ms",
        count=count,
        timeout=timeout,
    )
    sc.create(cp.admin, ns, template)
    if policy_spec is not None:
        cp.admin.create(
            POLICIES.format(ns=ns),
            {
                "apiVersion": "selfheal.dev/v1alpha1",
                "kind": "SelfHealingPolicy",
                "metadata": {"name": "p"},
                "spec": policy_spec,
            },
        )
    steps = [{"setWeight": 50}, sc.analysis_step("plugin-style", IDENTITY), {"pause": {}}]
    rollout = sc.demo_rollout("web", "blue", steps=steps, replicas=2)
    sc.create(cp.admin, ns, rollout)
    return sc.wait_phase(cp.admin, ns, "web", "Healthy", timeout=30)["status"]["stableRS"]


def test_the_analyzer_is_asked_once_per_evidence_window_however_often_argo_measures(
    control_plane: ControlPlane, operator: OperatorProcess, fast_argo: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    cp, ns = control_plane, namespace
    llm.respond(verdict="healthy", confidence=93, summary="Only the colours differ.")
    spec = {
        "selector": {"matchLabels": {"app": "web"}},
        # logWatch.intervalSeconds is the evidence window: 600 s, 60 s at the tests' speed
        "triggers": {"logWatch": {"enabled": False, "intervalSeconds": 600}, "indefinitePause": False},
        "analysis": {"llm": {"provider": "openai", "model": "stand-in-model", "baseURL": llm.base_url}},
    }
    plugin_style(cp, ns, operator.verdict_url, policy_spec=spec)
    sc.set_image(cp.admin, ns, "web", "random")
    sc.wait_rollout(cp.admin, ns, "web", lambda o: o["status"].get("currentStepIndex") == 2, message="past the step")
    [step] = runs(cp, ns, "web", "Step")
    measurements = step["status"]["metricResults"][0]["measurements"]
    assert step["status"]["phase"] == "Successful" and len(measurements) == 8
    assert all(m["phase"] == "Successful" and float(m["value"]) > 0.5 for m in measurements)
    assert len(llm.requests) == 1  # eight measurements, one evidence window, one question to the model


def test_a_slow_analyzer_never_turns_a_measurement_into_an_error(
    control_plane: ControlPlane, operator: OperatorProcess, fast_argo: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    cp, ns = control_plane, namespace
    llm.hold()
    spec = {
        "selector": {"matchLabels": {"app": "web"}},
        "triggers": {"logWatch": {"enabled": False, "intervalSeconds": 600}, "indefinitePause": False},
        "analysis": {
            "llm": {"provider": "openai", "model": "stand-in-model", "baseURL": llm.base_url, "timeoutSeconds": 120}
        },
    }
    register_behaviour("panics-always", Behaviour(colour="red", panic_on_red=True))
    try:
        plugin_style(cp, ns, operator.verdict_url, policy_spec=spec, count=3, timeout=2)
        sc.set_image(cp.admin, ns, "web", "panics-always")
        ro = sc.wait_phase(cp.admin, ns, "web", "Degraded", timeout=60)
        [step] = runs(cp, ns, "web", "Step")
        result = step["status"]["metricResults"][0]
        # answered in time from the statistics (a panic needs no model): Failed, never Error
        assert result.get("error", 0) == 0 and result["failed"] == 1, result
        assert "assessed Failed" in ro["status"]["message"]
        assert llm.held == 1  # the one question, still unanswered
    finally:
        llm.release()


def test_questions_selfheal_must_not_answer_are_errors_that_argo_counts(
    control_plane: ControlPlane, operator: OperatorProcess, fast_argo: ArgoSimulator, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    plugin_style(cp, ns, operator.verdict_url, policy_spec=None, count=3)  # no policy governs the Rollout
    sc.set_image(cp.admin, ns, "web", "random")
    ro = sc.wait_phase(cp.admin, ns, "web", "Degraded", timeout=60)
    [step] = runs(cp, ns, "web", "Step")
    assert step["status"]["phase"] == "Error"
    [measurement] = step["status"]["metricResults"][0]["measurements"][-1:]
    assert measurement["message"] == "received non 2xx response code: 403"
    refused = [e for e in selfheal_events(cp, ns, "web") if e["reason"] == "InlineVerdictRefused"]
    assert len(refused) == 1 and f"no SelfHealingPolicy in namespace {ns} selects Rollout web" in refused[0]["message"]
    assert "Step-based analysis phase error/failed" in ro["status"]["message"]

    # A wrong token is refused too, without a word about the right one.
    cp.admin.patch(f"/api/v1/namespaces/{ns}/secrets/selfheal-verdict", {"stringData": {"token": "wrong"}})
    sc.set_image(cp.admin, ns, "web", "green")
    cp.admin.wait_for(
        lambda: any(
            m.get("message") == "received non 2xx response code: 401"
            for r in runs(cp, ns, "web", "Step")
            for m in (r.get("status") or {}).get("metricResults", [{}])[0].get("measurements", [])
        ),
        timeout=60,
        message="a 401",
    )


def test_in_dry_run_the_measurements_pass_and_what_would_have_failed_is_recorded(
    control_plane: ControlPlane, operator: OperatorProcess, fast_argo: ArgoSimulator, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    spec = {
        "selector": {"matchLabels": {"app": "web"}},
        "triggers": {"logWatch": {"enabled": False, "intervalSeconds": 600}, "indefinitePause": False},
        "decision": {"dryRun": True},
    }
    plugin_style(cp, ns, operator.verdict_url, policy_spec=spec, count=4)
    sc.set_image(cp.admin, ns, "web", "panic")
    sc.wait_rollout(cp.admin, ns, "web", lambda o: o["status"].get("currentStepIndex") == 2, message="past the step")
    [step] = runs(cp, ns, "web", "Step")
    assert step["status"]["phase"] == "Successful"
    [ticket] = cp.admin.wait_for(lambda: tickets(cp, ns), timeout=20, message="the shadow ticket")
    assert ticket["spec"]["verdict"]["verdict"] == "unhealthy"
    unhealthy = [e for e in selfheal_events(cp, ns, "web") if e["reason"] == "CanaryUnhealthy"]
    assert unhealthy and "dry run: judged unhealthy, the measurement would have failed" in unhealthy[0]["message"]
    assert not sc.get_rollout(cp.admin, ns, "web")["status"].get("abort")
