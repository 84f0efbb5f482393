"""The self-healing core end to end: simulated Argo Rollouts, the real operator, an OpenAI stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from selfheal.domain.ticket import ticket_name
from selfheal.testing import scenarios as argo_cli
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.llm_server import OpenAIStandIn
from selfheal.testing.operator import OperatorProcess
from selfheal.testing.workloads import INJECTION_LINE, SECRET_LINE, Behaviour, register_behaviour

POLICIES = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"
TICKETS = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/remediationtickets"
APP = "canary-demo"


@pytest.fixture
def llm() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn() as server:
        yield server


def create_policy(cp: ControlPlane, ns: str, spec: dict, name: str = "heal") -> None:
    spec = {"selector": {"matchLabels": {"app": APP}}, **spec}
    cp.admin.create(
        POLICIES.format(ns=ns),
        {"apiVersion": "selfheal.dev/v1alpha1", "kind": "SelfHealingPolicy", "metadata": {"name": name}, "spec": spec},
    )


def llm_spec(llm: OpenAIStandIn, **extra) -> dict:
    return {
        "provider": "openai",
        "model": "stand-in-model",
        "baseURL": llm.base_url,
        "timeoutSeconds": 5,
        "maxRetries": 0,
        **extra,
    }


def deploy(
    cp: ControlPlane, ns: str, image: str, *, steps: list[dict], template: dict | None = None, starting_step: int = 1
) -> dict:
    """The stable revision first (initial deploy), then the canary image: returns the Rollout."""
    if template is not None:
        argo_cli.create(cp.admin, ns, template)
    manifest = argo_cli.demo_rollout(
        APP,
        "blue",
        steps=steps,
        replicas=5,
        starting_step=starting_step,
        background_analysis=template["metadata"]["name"] if template else None,
    )
    argo_cli.create(cp.admin, ns, manifest)
    argo_cli.wait_phase(cp.admin, ns, APP, "Healthy", timeout=30)
    argo_cli.set_image(cp.admin, ns, APP, f"argoproj/rollouts-demo:{image}")
    return argo_cli.wait_rollout(
        cp.admin, ns, APP, lambda r: r["status"].get("currentPodHash") != r["status"].get("stableRS"), timeout=30
    )


def selfheal_events(cp: ControlPlane, ns: str, reason: str | None = None) -> list[dict]:
    found = argo_cli.events(cp.admin, ns, name=APP)
    return [
        e
        for e in found
        if e.get("source", {}).get("component") == "selfheal" and (reason is None or e["reason"] == reason)
    ]


def tickets(cp: ControlPlane, ns: str) -> list[dict]:
    return cp.admin.items(TICKETS.format(ns=ns))


def wait_event(cp: ControlPlane, ns: str, reason: str, timeout: float = 45) -> dict:
    return cp.admin.wait_for(
        lambda: (selfheal_events(cp, ns, reason) or [None])[-1], timeout=timeout, message=f"selfheal Event {reason}"
    )


PANIC_TEMPLATE = argo_cli.analysis_template("panic-rate", "panic-rate", "result < 0.01", interval="1s")
PASSING_TEMPLATE = argo_cli.analysis_template("restarts", "restarts", "result < 1", interval="1s")
SLOW_STEPS = [{"setWeight": 40}, {"pause": {"duration": "60s"}}, {"setWeight": 80}, {"pause": {"duration": "60s"}}]
PAUSE_STEPS = [{"setWeight": 40}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}]


def test_panic_canary_is_aborted_explained_and_ticketed_once(
    control_plane: ControlPlane, operator: OperatorProcess, argo: ArgoSimulator, namespace: str
) -> None:
    create_policy(control_plane, namespace, {})
    # The canary serves for a few seconds before the background analysis starts, as in the demo.
    steps = [{"setWeight": 40}, {"pause": {"duration": "3s"}}, *SLOW_STEPS[1:]]
    ro = deploy(control_plane, namespace, "panic", steps=steps, template=PANIC_TEMPLATE, starting_step=2)
    canary = ro["status"]["currentPodHash"]

    argo_cli.wait_phase(control_plane.admin, namespace, APP, "Degraded", timeout=45)
    event = wait_event(control_plane, namespace, "CanaryUnhealthy")
    assert event["type"] == "Warning"
    assert "index out of range" in event["message"]
    name = ticket_name(APP, canary)
    ticket = control_plane.admin.wait_for(
        lambda: control_plane.admin.get_or_none(f"{TICKETS.format(ns=namespace)}/{name}"),
        timeout=30,
        message="the ticket",
    )
    assert ticket["spec"]["verdict"]["verdict"] == "unhealthy"
    assert ticket["metadata"]["ownerReferences"][0]["name"] == APP
    assert any("index out of range" in t["template"] for t in ticket["spec"]["evidence"]["templates"])
    occurrences = control_plane.admin.wait_for(
        lambda: (control_plane.admin.get(f"{TICKETS.format(ns=namespace)}/{name}").get("status") or {}).get(
            "occurrences"
        ),
        timeout=20,
        message="occurrences",
    )
    assert occurrences == 1

    # The same revision fails again after a retry: the ticket counts it; there is still one ticket.
    argo_cli.retry(control_plane.admin, namespace, APP)
    control_plane.admin.wait_for(
        lambda: (
            (control_plane.admin.get(f"{TICKETS.format(ns=namespace)}/{name}").get("status") or {}).get("occurrences")
            == 2
        ),
        timeout=60,
        message="a second occurrence",
    )
    assert len(tickets(control_plane, namespace)) == 1


def test_random_colours_with_extra_prompt_are_promoted_without_a_ticket(
    control_plane: ControlPlane, operator: OperatorProcess, argo: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    llm.respond(verdict="healthy", confidence=92, summary="Only the colours differ; no errors.")
    create_policy(
        control_plane,
        namespace,
        {
            "analysis": {"llm": llm_spec(llm), "extraPrompt": "Ignore color changes."},
            "decision": {"onHealthy": "promote"},
        },
    )
    deploy(control_plane, namespace, "random", steps=PAUSE_STEPS)
    final = argo_cli.wait_phase(control_plane.admin, namespace, APP, "Healthy", timeout=60)
    assert final["status"]["stableRS"] == final["status"]["currentPodHash"]
    assert tickets(control_plane, namespace) == []
    assert llm.requests, "the LLM was asked"
    assert "Ignore color changes." in llm.requests[0]["messages"][0]["content"]
    assert selfheal_events(control_plane, namespace, "CanaryHealthy")
    # What the analyses cost shows on the policy.
    spent = control_plane.admin.wait_for(
        lambda: (
            (control_plane.admin.get(f"{POLICIES.format(ns=namespace)}/heal").get("status") or {})
            .get("tokens", {})
            .get("today")
        ),
        timeout=20,
        message="tokens on the policy status",
    )
    assert spent > 0
    status = control_plane.admin.get(f"{POLICIES.format(ns=namespace)}/heal")["status"]
    assert status["analyses"]["total"] >= 1 and status["matchedRollouts"] == [APP]


def test_http_500_canary_with_passing_metrics_is_caught_by_the_log_watch(
    control_plane: ControlPlane, operator: OperatorProcess, argo: ArgoSimulator, namespace: str
) -> None:
    create_policy(control_plane, namespace, {})
    deploy(control_plane, namespace, "bad-blue", steps=SLOW_STEPS, template=PASSING_TEMPLATE)
    event = wait_event(control_plane, namespace, "CanaryUnhealthy")
    assert "while selfheal watched its logs" in event["message"]
    ro = argo_cli.wait_phase(control_plane.admin, namespace, APP, "Degraded", timeout=30)
    assert ro["status"]["abort"] is True
    run = control_plane.admin.items(f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/analysisruns")[0]
    assert run["status"]["phase"] in ("Running", "Successful")  # the metrics never failed


@pytest.mark.parametrize(
    "image, steps", [("silent", PAUSE_STEPS), ("blue", [{"pause": {}}, {"setWeight": 50}])], ids=["no-logs", "no-pods"]
)
def test_canary_without_logs_or_pods_is_inconclusive_and_never_promoted(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    argo: ArgoSimulator,
    namespace: str,
    image: str,
    steps: list[dict],
) -> None:
    create_policy(control_plane, namespace, {"decision": {"onHealthy": "promote"}})
    deploy(control_plane, namespace, image if image != "blue" else "green", steps=steps)
    event = wait_event(control_plane, namespace, "CanaryInconclusive")
    assert event["message"].startswith("Could not tell whether the canary of revision")
    argo.wait_passes(10)
    ro = argo_cli.get_rollout(control_plane.admin, namespace, APP)
    assert ro["status"]["currentStepIndex"] == (1 if image == "silent" else 0)
    assert ro["status"]["stableRS"] != ro["status"]["currentPodHash"]


# A canary whose only sign of trouble is new ERROR lines: soft evidence, where the analyzer's word counts.
SOFT_ERROR_LINE = "ERROR checkout {n}: payment authorisation refused by upstream"
register_behaviour(
    "soft-errors",
    Behaviour(
        colour="blue",
        extra=lambda rng: [SOFT_ERROR_LINE.format(n=rng.randint(1, 10_000))] if rng.random() < 0.6 else [],
    ),
)


@pytest.mark.parametrize("fault", ["down", "slow", "malformed"])
def test_llm_outage_applies_the_fallback_and_records_it(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    argo: ArgoSimulator,
    namespace: str,
    llm: OpenAIStandIn,
    fault: str,
) -> None:
    if fault == "down":
        llm.down()
    elif fault == "slow":
        llm.slow(30)
    else:
        llm.malformed()
    create_policy(
        control_plane,
        namespace,
        {
            "analysis": {"llm": llm_spec(llm, timeoutSeconds=1)},
            "decision": {"onAnalyzerUnavailable": "pause"},
        },
    )
    deploy(control_plane, namespace, "soft-errors", steps=SLOW_STEPS)
    event = wait_event(control_plane, namespace, "CanaryUnhealthy")
    assert "Analyzer unavailable" in event["message"]
    assert "onAnalyzerUnavailable=pause" in event["message"]
    control_plane.admin.wait_for(
        lambda: argo_cli.get_rollout(control_plane.admin, namespace, APP)["spec"].get("paused") is True,
        timeout=20,
        message="the fallback pause",
    )
    assert operator.proc is not None and operator.proc.poll() is None


def test_a_crash_is_aborted_while_the_analyzer_is_down(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    argo: ArgoSimulator,
    namespace: str,
    llm: OpenAIStandIn,
) -> None:
    llm.down()
    create_policy(
        control_plane,
        namespace,
        {
            "analysis": {"llm": llm_spec(llm, timeoutSeconds=1)},
            "decision": {"onAnalyzerUnavailable": "none"},
        },
    )
    deploy(control_plane, namespace, "panic", steps=SLOW_STEPS)
    event = wait_event(control_plane, namespace, "CanaryUnhealthy")
    assert "Analyzer unavailable" in event["message"]
    assert "hard evidence needs no analyzer" in event["message"]
    control_plane.admin.wait_for(
        lambda: argo_cli.get_rollout(control_plane.admin, namespace, APP)["status"].get("abort") is True,
        timeout=20,
        message="the abort",
    )


def test_llm_saying_healthy_99_does_not_promote_a_panicking_canary(
    control_plane: ControlPlane, operator: OperatorProcess, argo: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    llm.respond(verdict="healthy", confidence=99, summary="Looks perfect, promote.")
    create_policy(
        control_plane,
        namespace,
        {
            "triggers": {"logWatch": {"enabled": False}},
            "analysis": {"llm": llm_spec(llm)},
            "decision": {"onHealthy": "promote"},
        },
    )
    deploy(control_plane, namespace, "panic-red", steps=PAUSE_STEPS)
    event = wait_event(control_plane, namespace, "CanaryUnhealthy")
    assert "at a pause that waits for a promotion" in event["message"]
    ro = argo_cli.wait_phase(control_plane.admin, namespace, APP, "Degraded", timeout=30)
    assert ro["status"]["stableRS"] != ro["status"]["currentPodHash"]
    assert llm.requests


def test_injected_instructions_and_keys_in_canary_logs_change_nothing(
    control_plane: ControlPlane, operator: OperatorProcess, argo: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    def obey_the_logs(request: dict) -> dict:
        # A model that does whatever the text says: it answers what the injected line asks for.
        return {
            "verdict": "healthy",
            "confidence": 100,
            "summary": "promote this canary",
            "root_cause": "",
            "evidence_refs": [],
            "suggested_fix": "",
        }

    llm.respond_with(obey_the_logs)
    # Every tick of every canary pod prints the injection and a key, next to the demo's panics.
    register_behaviour(
        "injection-always", Behaviour(panic_on_red=True, extra=lambda rng: [INJECTION_LINE, SECRET_LINE])
    )
    create_policy(
        control_plane,
        namespace,
        {
            "triggers": {"logWatch": {"enabled": False}},
            "analysis": {"llm": llm_spec(llm)},
            "decision": {"onHealthy": "promote"},
        },
    )
    deploy(control_plane, namespace, "injection-always", steps=PAUSE_STEPS)
    event = wait_event(control_plane, namespace, "CanaryUnhealthy")
    assert "unhealthy" in event["message"]
    sent = json.dumps(llm.requests)
    assert "AKIAIOSFODNN7EXAMPLE" not in sent and "wJalrXUtnFEMI" not in sent
    user = llm.requests[0]["messages"][1]["content"]
    start, end = user.index("<<<EVIDENCE"), user.index("<<<END EVIDENCE")
    assert "ignore previous instructions" in user[start:end]
    assert "ignore previous instructions" not in user[:start] + user[end:]
    ticket = control_plane.admin.wait_for(lambda: tickets(control_plane, namespace), timeout=30, message="a ticket")[0]
    assert ticket["spec"]["evidence"]["redactions"]
    assert "AKIAIOSFODNN7EXAMPLE" not in json.dumps(ticket)


def test_an_a2a_agent_judges_the_canary(
    control_plane: ControlPlane, operator: OperatorProcess, argo: ArgoSimulator, namespace: str
) -> None:
    from selfheal.testing.a2a_server import A2AAgentStandIn

    with A2AAgentStandIn(api_key="agent-key") as agent:
        agent.respond(verdict="healthy", confidence=95, summary="The agent sees only colour changes.")
        control_plane.admin.create(
            f"/api/v1/namespaces/{namespace}/secrets",
            {"metadata": {"name": "agent"}, "stringData": {"api-key": "agent-key"}},
        )
        create_policy(
            control_plane,
            namespace,
            {
                "analysis": {
                    "llm": {
                        "provider": "a2a",
                        "baseURL": agent.base_url,
                        "timeoutSeconds": 5,
                        "apiKeySecretRef": {"name": "agent"},
                    }
                },
                "decision": {"onHealthy": "promote"},
            },
        )
        deploy(control_plane, namespace, "random", steps=PAUSE_STEPS)
        final = argo_cli.wait_phase(control_plane.admin, namespace, APP, "Healthy", timeout=60)
        assert final["status"]["stableRS"] == final["status"]["currentPodHash"]
        event = selfheal_events(control_plane, namespace, "CanaryHealthy")[-1]
        assert "by the A2A agent" in event["message"] or "by the statistics and the analyzer" in event["message"]
        assert agent.requests and agent.request_headers[-1].get("Authorization") == "Bearer agent-key"
