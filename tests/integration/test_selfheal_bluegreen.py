"""selfheal on blue-green Rollouts end to end: the preview judged against the active pods, the abort and the
promote the CLI sends for blue-green, the ticket's GitHub loop and the fixed revision verified once active."""

from __future__ import annotations

from typing import Any

import pytest

from selfheal.domain.ticket import ticket_name
from selfheal.testing import scenarios as sc
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.coding_agent import StandInCodingAgent
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.github_server import GitHubStandIn
from selfheal.testing.operator import OperatorProcess

APP = "shop"
REPO = "acme/shop"
TICKETS = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/remediationtickets"
POLICIES = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"


@pytest.fixture
def fast_argo(start_argo: Any) -> ArgoSimulator:
    return start_argo(requests_per_second=100)


def selfheal_events(cp: ControlPlane, ns: str, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in sc.events(cp.admin, ns, name=APP)
        if (e.get("source") or {}).get("component") == "selfheal" and e["reason"] == reason
    ]


def ticket(cp: ControlPlane, ns: str, name: str) -> dict[str, Any]:
    return cp.admin.get_or_none(f"{TICKETS.format(ns=ns)}/{name}") or {}


def wait_ticket_phase(
    cp: ControlPlane, ns: str, name: str, phase: str, agent: StandInCodingAgent | None = None
) -> dict:
    def reached() -> dict | None:
        if agent is not None:
            agent.work()
        t = ticket(cp, ns, name)
        return t if (t.get("status") or {}).get("phase") == phase else None

    return cp.admin.wait_for(reached, timeout=60, message=f"ticket {name} {phase}")


def active_and_preview(cp: ControlPlane, ns: str) -> tuple[str, str]:
    return tuple(  # type: ignore[return-value]
        sc.service(cp.admin, ns, f"{APP}-{which}")["spec"]["selector"].get("rollouts-pod-template-hash", "")
        for which in ("active", "preview")
    )


def test_a_panicking_preview_is_aborted_before_it_is_active_and_its_fix_is_promoted_and_verified(
    control_plane: ControlPlane, operator: OperatorProcess, fast_argo: ArgoSimulator, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    with GitHubStandIn(token="gh-token", repos=[REPO]) as gh:
        agent = StandInCodingAgent(gh, REPO)
        cp.admin.create(
            f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "github"}, "stringData": {"token": "gh-token"}}
        )
        spec = {
            "selector": {"matchLabels": {"app": APP}},
            "triggers": {"logWatch": {"enabled": False}},
            "decision": {"onUnhealthy": "abort", "onHealthy": "promote"},
            "remediation": {
                "github": {
                    "repository": REPO,
                    "apiURL": gh.api_url,
                    "tokenSecretRef": {"name": "github"},
                    "agent": {"type": "copilot"},
                }
            },
        }
        policy = {"apiVersion": "selfheal.dev/v1alpha1", "kind": "SelfHealingPolicy", "metadata": {"name": "bg"}}
        cp.admin.create(POLICIES.format(ns=ns), {**policy, "spec": spec})
        for service in sc.blue_green_services(APP):
            sc.create(cp.admin, ns, service)
        # A human promotes each preview (autoPromotionEnabled: false): selfheal decides at that pause.
        sc.create(cp.admin, ns, sc.blue_green_rollout(APP, "blue", replicas=3, auto_promotion=False))
        blue = sc.wait_phase(cp.admin, ns, APP, "Healthy", timeout=30)["status"]["stableRS"]

        # The panicking preview is judged against the active pods and aborted: production never sees it.
        sc.set_image(cp.admin, ns, APP, "panic")
        ro = sc.wait_phase(cp.admin, ns, APP, "Degraded", timeout=60)
        panic = ro["status"]["currentPodHash"]
        assert ro["status"]["abort"] is True and ro["status"]["message"].startswith("RolloutAborted")
        assert active_and_preview(cp, ns)[0] == blue
        [unhealthy] = selfheal_events(cp, ns, "CanaryUnhealthy")
        assert "at a pause that waits for a promotion" in unhealthy["message"]
        assert "index out of range" in unhealthy["message"]
        name = ticket_name(APP, panic)
        t = wait_ticket_phase(cp, ns, name, "IssueOpened")
        assert t["spec"]["step"] == "blueGreen: preview" and t["spec"]["podTemplateHash"] == panic
        sides = {(p["side"], p["name"].rsplit("-", 2)[1]) for p in t["spec"]["evidence"]["pods"]}
        assert sides == {("canary", panic), ("stable", blue)}  # the preview's pods against the active ones

        # The agent's pull request is merged; the fixed image's preview is judged healthy and promoted the
        # way `kubectl argo rollouts promote` promotes a blue-green; once active and stable, the fix is verified.
        wait_ticket_phase(cp, ns, name, "FixProposed", agent)
        cp.admin.wait_for(lambda: (agent.work(), all(p.ready for p in agent.proposals.values()))[1], timeout=10)
        gh.merge_pull(next(iter(agent.proposals.values())).pull, REPO)
        wait_ticket_phase(cp, ns, name, "FixMerged")
        sc.set_image(cp.admin, ns, APP, "green")
        ro = sc.wait_rollout(
            cp.admin,
            ns,
            APP,
            lambda o: o["status"].get("stableRS") not in (blue, panic) and sc.rollout_phase(o)[0] == "Healthy",
            timeout=60,
            message="the fixed preview promoted",
        )
        green = ro["status"]["stableRS"]
        assert active_and_preview(cp, ns)[0] == green
        [healthy] = selfheal_events(cp, ns, "CanaryHealthy")
        assert "at a pause that waits for a promotion" in healthy["message"] and "promote" in healthy["message"]
        t = wait_ticket_phase(cp, ns, name, "Resolved")
        assert t["status"]["verification"]["state"] == "Passed"
        assert t["status"]["verification"]["podTemplateHash"] == green
        cp.admin.wait_for(lambda: gh.issues(REPO)[0]["state"] == "closed", timeout=20, message="the issue closed")
        assert len(gh.issues(REPO)) == 1 and len(cp.admin.items(TICKETS.format(ns=ns))) == 1
