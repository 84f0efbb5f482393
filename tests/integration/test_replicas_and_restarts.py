"""Two replicas and a SIGKILL mid-way: exactly one acts, the other takes over within the Lease duration,
and the work is neither judged nor done twice (LLM calls, abort, Events, GitHub issue: once each)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from selfheal.domain.ticket import ticket_name
from selfheal.testing import scenarios as argo_cli
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.github_server import GitHubStandIn
from selfheal.testing.llm_server import OpenAIStandIn, verdict_content
from selfheal.testing.operator import OperatorProcess, chart_cluster_rules
from tests.conftest import FAST_OPERATOR
from tests.integration.test_one_issue_per_bug import REPO, TOKEN, issue_creations, issue_number
from tests.integration.test_selfheal_scenarios import APP, POLICIES, TICKETS, deploy, llm_spec, selfheal_events

LEASE_SECONDS = 3
LEASE_RULE = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}


@pytest.fixture
def alone(request: pytest.FixtureRequest) -> Iterator[None]:
    """The session's all-namespaces operator is stopped meanwhile: the replicas started here are the only ones."""
    shared: OperatorProcess = request.getfixturevalue("operator")
    shared.stop()
    try:
        yield
    finally:
        shared.start()


def replica(cp: ControlPlane, ns: str) -> OperatorProcess:
    """``selfheal run --leader-election`` with the chart's rules and the Lease rule, as the chart runs it."""
    kubeconfig = cp.service_account(
        "selfheal-system", "selfheal-replicas", cluster_rules=[*chart_cluster_rules(), LEASE_RULE]
    )
    return OperatorProcess(
        kubeconfig,
        namespaces=[ns],
        env=FAST_OPERATOR,
        extra_args=[
            "--leader-election",
            f"--lease-namespace={ns}",
            "--lease-name=selfheal",
            f"--lease-duration={LEASE_SECONDS}",
        ],
    )


def test_the_active_replica_killed_mid_way_hands_over_and_nothing_is_done_twice(
    control_plane: ControlPlane, alone: None, argo: ArgoSimulator, namespace: str, llm: OpenAIStandIn
) -> None:
    cp, ns = control_plane, namespace
    llm.respond_with(lambda body: verdict_content("unhealthy", 95, "The canary panics in main.getColor."))
    with GitHubStandIn(token=TOKEN, repos=[REPO]) as gh:
        cp.admin.create(
            f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "github"}, "stringData": {"token": TOKEN}}
        )
        spec = {
            "selector": {"matchLabels": {"app": APP}},
            "triggers": {"logWatch": {"enabled": False}},
            "analysis": {"llm": llm_spec(llm)},
            "remediation": {"github": {"repository": REPO, "apiURL": gh.api_url, "tokenSecretRef": {"name": "github"}}},
        }
        cp.admin.create(
            POLICIES.format(ns=ns),
            {
                "apiVersion": "selfheal.dev/v1alpha1",
                "kind": "SelfHealingPolicy",
                "metadata": {"name": "heal"},
                "spec": spec,
            },
        )
        first, second = replica(cp, ns), replica(cp, ns)
        killed: list[float] = []

        def kill_the_leader() -> None:  # GitHub created the issue; the leader never hears back
            first.kill()
            killed.append(time.monotonic())

        gh.after_answer("POST", f"/repos/{REPO}/issues", kill_the_leader)
        with first:
            first.wait_for_output("leadership acquired", timeout=60)
            with second:  # started once the first leads, so which one leads is known
                second.wait_for_output("standing by", timeout=60)
                ro = deploy(cp, ns, "panic", steps=[{"setWeight": 40}, {"pause": {}}])
                name = ticket_name(APP, ro["status"]["currentPodHash"])

                cp.admin.wait_for(lambda: killed, timeout=90, message="the leader killed once GitHub created the issue")
                second.wait_for_output("leadership acquired", timeout=LEASE_SECONDS * 5)
                handover = time.monotonic() - killed[0]
                print(f"hand-over after SIGKILL: {handover:.1f}s (lease {LEASE_SECONDS}s)")
                cp.admin.wait_for(lambda: issue_number(cp, ns, name) == 1, timeout=60, message="the issue recorded")
                cp.admin.wait_for(
                    lambda: selfheal_events(cp, ns, "CanaryUnhealthy"),
                    timeout=60,
                    message="the verdict explained by the new leader, which resumes the judgement",
                )
                time.sleep(LEASE_SECONDS)  # a few more passes of the new leader: nothing more may happen

        assert handover <= LEASE_SECONDS * 3
        assert llm.completions == 1, "judged once"
        assert len(gh.issues(REPO)) == 1 and issue_creations(gh) == 1
        [ticket] = cp.admin.items(TICKETS.format(ns=ns))
        assert ticket["status"]["occurrences"] == 1
        assert [e["reason"] for e in selfheal_events(cp, ns) if e["reason"] == "CanaryUnhealthy"] == ["CanaryUnhealthy"]
        assert len(selfheal_events(cp, ns, "RemediationTicketOpened")) == 1
        assert "selfheal aborted it" in selfheal_events(cp, ns, "CanaryUnhealthy")[0]["message"]
        assert argo_cli.get_rollout(cp.admin, ns, APP)["status"]["abort"] is True
        assert not selfheal_events(cp, ns, "SelfHealActionFailed")
        # what was judged is readable on the policy
        canaries = cp.admin.get(f"{POLICIES.format(ns=ns)}/heal")["status"]["canaries"]
        assert canaries[APP]["last"]["verdict"] == "unhealthy" and canaries[APP]["last"]["step"] == "Done"
