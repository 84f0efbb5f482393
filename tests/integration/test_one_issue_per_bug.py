"""One bug, one GitHub issue: whichever trigger catches it, on whichever revision, with however many canary
pods, in however many Rollouts deploying the same build. Driven through the simulated Argo controller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from selfheal.domain.ticket import ticket_name
from selfheal.testing import scenarios as argo_cli
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.github_server import GitHubStandIn
from selfheal.testing.kubelet import TestKubelet
from selfheal.testing.operator import OperatorProcess
from selfheal.testing.workloads import Behaviour, register_behaviour
from tests.conftest import WATCHED
from tests.integration.test_selfheal_scenarios import APP, POLICIES, TICKETS

REPO = "acme/rollouts-demo"
TOKEN = "gh-token"
# Rebuilt images of the same code: a new tag, a new pod-template hash, the same panic in main.getColor.
for tag in ("panic-rebuilt", "panic-rebuilt-again"):
    register_behaviour(tag, Behaviour(panic_on_red=True))


@pytest.fixture
def gh() -> Iterator[GitHubStandIn]:
    with GitHubStandIn(token=TOKEN, repos=[REPO]) as server:
        yield server


def govern(cp: ControlPlane, ns: str, gh: GitHubStandIn) -> None:
    """A policy that aborts an unhealthy canary and opens an issue in REPO (statistics only, no LLM)."""
    cp.admin.create(
        f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "github"}, "stringData": {"token": TOKEN}}
    )
    spec = {
        "selector": {"matchLabels": {"app": APP}},
        "triggers": {"logWatch": {"enabled": True, "intervalSeconds": 10}},
        "remediation": {
            "github": {"repository": REPO, "apiURL": gh.api_url, "tokenSecretRef": {"name": "github"}},
        },
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


def tickets(cp: ControlPlane, ns: str) -> list[dict[str, Any]]:
    return cp.admin.items(TICKETS.format(ns=ns))


def issue_number(cp: ControlPlane, ns: str, name: str) -> int | None:
    found = cp.admin.get_or_none(f"{TICKETS.format(ns=ns)}/{name}") or {}
    return ((found.get("status") or {}).get("issue") or {}).get("number")


def issue_creations(gh: GitHubStandIn) -> int:
    return sum(1 for r in gh.requests if r.method == "POST" and r.path == f"/repos/{REPO}/issues")


def roll_out(cp: ControlPlane, ns: str, image: str) -> str:
    """``kubectl argo rollouts set image``; the new canary's pod-template hash."""
    before = argo_cli.get_rollout(cp.admin, ns, APP)["status"].get("currentPodHash")
    argo_cli.set_image(cp.admin, ns, APP, f"argoproj/rollouts-demo:{image}")
    ro = argo_cli.wait_rollout(
        cp.admin, ns, APP, lambda r: r["status"].get("currentPodHash") not in (before, None), timeout=30
    )
    return str(ro["status"]["currentPodHash"])


def caught(cp: ControlPlane, ns: str, pod_hash: str, timeout: float = 90) -> dict[str, Any]:
    """The revision aborted and its ticket on the shared issue."""
    name = ticket_name(APP, pod_hash)
    cp.admin.wait_for(lambda: issue_number(cp, ns, name), timeout=timeout, message=f"ticket {name} on an issue")
    argo_cli.wait_rollout(cp.admin, ns, APP, lambda r: r["status"].get("abort") is True, timeout=30)
    return cp.admin.get(f"{TICKETS.format(ns=ns)}/{name}")


def watch_logs(cp: ControlPlane, ns: str, enabled: bool) -> None:
    """Turn the policy's log watch on or off, so that the trigger meant to catch a revision is the first."""
    cp.admin.patch(f"{POLICIES.format(ns=ns)}/heal", {"spec": {"triggers": {"logWatch": {"enabled": enabled}}}})


def set_steps(cp: ControlPlane, ns: str, steps: list[dict[str, Any]], analysis: bool) -> None:
    ro = argo_cli.get_rollout(cp.admin, ns, APP)
    canary = ro["spec"]["strategy"]["canary"]
    canary["steps"] = steps
    if not analysis:
        canary.pop("analysis", None)
    cp.admin.put(argo_cli.rollout_path(ns, APP), ro)


def test_the_same_panic_caught_three_ways_on_three_revisions_is_one_issue(
    control_plane: ControlPlane, operator: OperatorProcess, argo: ArgoSimulator, namespace: str, gh: GitHubStandIn
) -> None:
    cp, ns = control_plane, namespace
    govern(cp, ns, gh)
    watch_logs(cp, ns, False)
    # A step analysis that can neither pass nor fail: Argo pauses the canary on an inconclusive run.
    argo_cli.create(
        cp.admin,
        ns,
        argo_cli.analysis_template(
            "unsure", "panic-rate", "result < 0", interval="1s", count=1, failure_condition="result > 1000"
        ),
    )
    steps = [{"setWeight": 40}, {"pause": {"duration": "6s"}}, argo_cli.analysis_step("unsure"), {"pause": {}}]
    argo_cli.create(cp.admin, ns, argo_cli.demo_rollout(APP, "blue", steps=steps))
    argo_cli.wait_phase(cp.admin, ns, APP, "Healthy", timeout=30)

    # Revision 1, two canary pods: its step analysis is inconclusive.
    first = caught(cp, ns, roll_out(cp, ns, "panic"))
    # Revision 2 (the same code rebuilt), one canary pod: judged at an indefinite pause.
    set_steps(cp, ns, [{"setWeight": 20}, {"pause": {}}], analysis=False)
    second = caught(cp, ns, roll_out(cp, ns, "panic-rebuilt"))
    # Revision 3, all five pods canary, a long timed pause: the log watch catches it.
    set_steps(cp, ns, [{"setWeight": 100}, {"pause": {"duration": "300s"}}], analysis=False)
    watch_logs(cp, ns, True)
    third = caught(cp, ns, roll_out(cp, ns, "panic-rebuilt-again"))

    triggers = [t["spec"]["trigger"] for t in (first, second, third)]
    assert triggers == ["analysisInconclusive", "indefinitePause", "logWatch"]
    named = [(t["spec"]["fingerprint"], t["spec"]["signature"], t["spec"]["failure"]) for t in (first, second, third)]
    assert len({t["spec"]["fingerprint"] for t in (first, second, third)}) == 1, named
    cp.admin.wait_for(
        lambda: all(issue_number(cp, ns, t["metadata"]["name"]) == 1 for t in tickets(cp, ns)),
        timeout=30,
        message="every ticket on issue #1",
    )
    assert len(gh.issues(REPO)) == 1 and issue_creations(gh) == 1
    assert [(t["status"] or {}).get("occurrences") for t in tickets(cp, ns)] == [1, 1, 1]
    body = gh.issue(1, REPO)["body"]
    for t in (first, second, third):
        cp.admin.wait_for(
            lambda t=t: t["spec"]["podTemplateHash"] in gh.issue(1, REPO)["body"],
            timeout=30,
            message="each revision listed on the issue",
        )
    assert body.count("<!-- selfheal:signature=") == 1


@pytest.fixture
def regions(control_plane: ControlPlane, kubelet: TestKubelet, namespace: str) -> Iterator[list[str]]:
    """Three namespaces (three regions deploying one build), each reconciled by the simulated controller."""
    names = [namespace, f"{namespace}-eu", f"{namespace}-ap"]
    for name in names[1:]:
        control_plane.ensure_namespace(name)
    with ArgoSimulator(control_plane, kubelet, namespaces=names):
        yield names
    for name in names[1:]:
        for collection in WATCHED:
            control_plane.admin.delete(collection.format(ns=name))


def test_one_build_failing_in_three_regions_is_one_issue_listing_each(
    control_plane: ControlPlane, operator: OperatorProcess, regions: list[str], gh: GitHubStandIn
) -> None:
    cp = control_plane
    steps = [{"setWeight": 40}, {"pause": {}}]
    for ns in regions:
        govern(cp, ns, gh)
        argo_cli.create(cp.admin, ns, argo_cli.demo_rollout(APP, "blue", steps=steps))
    for ns in regions:
        argo_cli.wait_phase(cp.admin, ns, APP, "Healthy", timeout=30)
    hashes = [roll_out(cp, ns, "panic") for ns in regions]
    found = [caught(cp, ns, h, timeout=120) for ns, h in zip(regions, hashes, strict=True)]

    assert len(gh.issues(REPO)) == 1 and issue_creations(gh) == 1
    assert len({t["spec"]["fingerprint"] for t in found}) == 1
    for ns, ticket in zip(regions, found, strict=True):
        assert ticket["metadata"]["namespace"] == ns and issue_number(cp, ns, ticket["metadata"]["name"]) == 1
        cp.admin.wait_for(
            lambda ns=ns: f"{ns}/{APP}" in gh.issue(1, REPO)["body"], timeout=30, message=f"{ns}/{APP} listed"
        )
    assert gh.comment_bodies(1, REPO) == [], "joining the issue edits its list; it posts no comment"
