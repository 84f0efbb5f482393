"""The whole loop through the simulated Argo Rollouts: panic, abort, issue, agent PR, merge, fixed rollout."""

from __future__ import annotations

import subprocess

from selfheal.testing import scenarios as argo_cli
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.github_server import GitHubStandIn
from selfheal.testing.operator import OperatorProcess

APP = "canary-demo"
REPO = "acme/rollouts-demo"
TICKETS = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/remediationtickets"


def ticket_status(cp: ControlPlane, ns: str) -> dict:
    items = cp.admin.items(TICKETS.format(ns=ns))
    assert len(items) <= 1, [t["metadata"]["name"] for t in items]
    return (items[0].get("status") or {}) if items else {}


def wait_ticket_phase(cp: ControlPlane, ns: str, phase: str, timeout: float = 60) -> dict:
    return cp.admin.wait_for(
        lambda: (s := ticket_status(cp, ns)).get("phase") == phase and s,
        timeout=timeout,
        message=f"ticket phase {phase}",
    )


def test_panic_to_verified_fix(
    control_plane: ControlPlane, operator: OperatorProcess, argo: ArgoSimulator, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    with GitHubStandIn(token="gh-token", repos=[REPO]) as gh:
        cp.admin.create(
            f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "github"}, "stringData": {"token": "gh-token"}}
        )
        cp.admin.create(
            f"/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies",
            {
                "apiVersion": "selfheal.dev/v1alpha1",
                "kind": "SelfHealingPolicy",
                "metadata": {"name": "heal"},
                "spec": {
                    "selector": {"matchLabels": {"app": APP}},
                    "remediation": {
                        "github": {
                            "repository": REPO,
                            "apiURL": gh.api_url,
                            "tokenSecretRef": {"name": "github"},
                            "agent": {"type": "copilot"},
                        }
                    },
                },
            },
        )
        argo_cli.create(cp.admin, ns, argo_cli.analysis_template("panic-rate", "panic-rate", "result < 0.01"))
        steps = [{"setWeight": 40}, {"pause": {"duration": "3s"}}, {"pause": {"duration": "60s"}}]
        argo_cli.create(
            cp.admin,
            ns,
            argo_cli.demo_rollout(APP, "blue", steps=steps, background_analysis="panic-rate", starting_step=2),
        )
        argo_cli.wait_phase(cp.admin, ns, APP, "Healthy", timeout=30)

        # A bad revision: aborted, one ticket, one issue handed to Copilot.
        argo_cli.set_image(cp.admin, ns, APP, "argoproj/rollouts-demo:panic")
        argo_cli.wait_phase(cp.admin, ns, APP, "Degraded", timeout=45)
        # IssueOpened is recorded as soon as the issue exists; the hand-over to the agent follows it.
        st = cp.admin.wait_for(
            lambda: (
                (s := ticket_status(cp, ns)).get("phase") == "IssueOpened"
                and (s.get("issue") or {}).get("agentAssigned")
                and s
            ),
            timeout=60,
            message="the issue opened and handed to the agent",
        )
        assert st["issue"]["agentAssigned"] is True
        [issue] = gh.issues(REPO)
        assert "index out of range" in issue["body"]
        assert [a["login"] for a in issue["assignees"]] == ["Copilot"]

        # The agent opens a PR that fixes it; it is merged.
        pr = gh.open_pull(REPO, "Fix the index out of range in getColor", f"Fixes #{issue['number']}")
        wait_ticket_phase(cp, ns, "FixProposed")
        gh.mark_ready(pr, REPO)
        gh.merge_pull(pr, REPO)
        wait_ticket_phase(cp, ns, "FixMerged")

        # The fixed image rolls out (a new pod-template hash after the merge) and becomes stable.
        ro = argo_cli.get_rollout(cp.admin, ns, APP)
        ro["spec"]["template"]["spec"]["containers"][0]["image"] = "argoproj/rollouts-demo:green"
        ro["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"pause": {"duration": "2s"}}]
        cp.admin.put(argo_cli.rollout_path(ns, APP), ro)
        argo_cli.wait_rollout(
            cp.admin,
            ns,
            APP,
            lambda r: (
                r["status"].get("phase") == "Healthy"
                and r["status"].get("stableRS") == r["status"].get("currentPodHash")
                and "green" in r["spec"]["template"]["spec"]["containers"][0]["image"]
            ),
            timeout=60,
        )
        st = wait_ticket_phase(cp, ns, "Resolved")
        assert st["verification"]["state"] == "Passed"
        cp.admin.wait_for(
            lambda: gh.issue(issue["number"], REPO)["state"] == "closed", timeout=20, message="the issue closed"
        )
        assert any("Verified by selfheal" in c for c in gh.comment_bodies(issue["number"], REPO))
        assert len(gh.issues(REPO)) == 1

        out = subprocess.run(
            ["kubectl", "--kubeconfig", cp.kubeconfig, "-n", ns, "get", "remediationtickets"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        header, row = out[0].split(), out[1].split()
        assert header[:6] == ["NAME", "ROLLOUT", "REVISION", "PHASE", "ISSUE", "PR"]
        assert row[1:6] == [APP, "2", "Resolved", str(issue["number"]), str(pr)]
