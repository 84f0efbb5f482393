"""Tickets end to end: the real operator, the real apiserver and the GitHub stand-in, from issue to verified fix."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from selfheal.adapters.kube import KubeAdapter
from selfheal.domain.ticket import (
    ObjectMeta,
    OwnerReference,
    RemediationTicket,
    TemplateRecord,
    TicketEvidence,
    TicketSpec,
    TicketVerdict,
    ticket_name,
    to_wire,
)
from selfheal.services.remediation import record_failure
from selfheal.services.runtime import Runtime
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.github_server import GitHubStandIn
from selfheal.testing.operator import OperatorProcess, chart_cluster_rules

ARGO = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts"
TICKETS = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/remediationtickets"
POLICIES = "/apis/selfheal.dev/v1alpha1/namespaces/{ns}/selfhealingpolicies"
TOKEN = "ghp_standin_token"
# Seconds over which the pace of retries against a refused token is counted (a "nothing more" window).
REFUSAL_WINDOW = 6.0
STABLE, FAILING = "5b7c9d8e6f", "6c8d9e7f5a"
LEAKED = "hunter2-s3cr3t"


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubeconfig(request: pytest.FixtureRequest, control_plane: ControlPlane) -> Iterator[str]:
    """The operator's identity (the chart's RBAC). The shared all-namespaces operator is paused meanwhile,
    so that the operators started here, with a 1-second poll and fault injection, are the only ones."""
    shared: OperatorProcess = request.getfixturevalue("operator")
    shared.stop()
    try:
        yield control_plane.service_account("selfheal-system", "selfheal", cluster_rules=chart_cluster_rules())
    finally:
        shared.start()


@pytest.fixture(scope="module")
def gh() -> Iterator[GitHubStandIn]:
    with GitHubStandIn(token=TOKEN, repos=["acme/shop"]) as server:
        yield server


@pytest.fixture
def repo(gh: GitHubStandIn, namespace: str) -> str:
    """A fresh repository per test, so issue numbers start at 1."""
    name = f"acme/{namespace}"
    gh.add_repo(name)
    return name


@contextmanager
def operator_process(kubeconfig: str, namespace: str, **env: str) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(kubeconfig, namespaces=[namespace], env={"SELFHEAL_TICKET_POLL_SECONDS": "1", **env})
    try:
        with proc:
            yield proc
    finally:
        print(f"operator output kept in {proc.log_path}")


# --- the world as the pipeline and Argo leave it ----------------------------------------------------


def setup_world(cp: ControlPlane, gh: GitHubStandIn, ns: str, repo: str, **github: Any) -> dict[str, Any]:
    """Token Secret, policy, and a Rollout whose canary FAILING was aborted (STABLE still serves)."""
    cp.admin.create(f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "gh"}, "stringData": {"token": TOKEN}})
    spec = {
        "selector": {"matchLabels": {"app": "web"}},
        "analysis": {"redaction": {"patterns": [{"name": "acme-id", "regex": "ACME-[0-9]+"}]}},
        "remediation": {
            "github": {
                "repository": repo,
                "apiURL": gh.api_url,
                "tokenSecretRef": {"name": "gh"},
                "labels": ["selfheal", "bug"],
                "commentIntervalMinutes": 1,
                "agent": {"type": "copilot", "baseBranch": "main", "customInstructions": "Keep the change small."},
                **github,
            }
        },
    }
    cp.admin.create(
        POLICIES.format(ns=ns),
        {"apiVersion": "selfheal.dev/v1alpha1", "kind": "SelfHealingPolicy", "metadata": {"name": "web"}, "spec": spec},
    )
    ro = cp.admin.create(
        ARGO.format(ns=ns),
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"rollout.argoproj.io/revision": "3"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/web:bad"}]},
                },
                "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
            },
        },
    )
    replicaset(cp, ns, ro, STABLE, "2", "ghcr.io/acme/web:good")
    replicaset(cp, ns, ro, FAILING, "3", "ghcr.io/acme/web:bad")
    rollout_status(cp, ns, ro, current=FAILING, stable=STABLE, phase="Degraded", abort=True)
    return ro


def replicaset(cp: ControlPlane, ns: str, ro: dict[str, Any], pod_hash: str, revision: str, image: str) -> None:
    labels = {"app": "web", "rollouts-pod-template-hash": pod_hash}
    cp.admin.create(
        f"/apis/apps/v1/namespaces/{ns}/replicasets",
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"web-{pod_hash}",
                "labels": labels,
                "annotations": {"rollout.argoproj.io/revision": revision},
                "ownerReferences": [
                    {
                        "apiVersion": "argoproj.io/v1alpha1",
                        "kind": "Rollout",
                        "name": "web",
                        "uid": ro["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": image}]}},
            },
        },
    )


def rollout_status(
    cp: ControlPlane, ns: str, ro: dict[str, Any], *, current: str, stable: str, phase: str, abort: bool = False
) -> None:
    """What the Argo controller would write: the Rollout moving on (a merge patch on /status, as admin)."""
    cp.admin.patch(
        f"{ARGO.format(ns=ns)}/web/status",
        {
            "status": {
                "currentPodHash": current,
                "stableRS": stable,
                "phase": phase,
                "abort": abort,
                "observedGeneration": str(ro["metadata"]["generation"]),
            }
        },
    )


def create_ticket(cp: ControlPlane, ns: str, ro: dict[str, Any], pod_hash: str, revision: str, fingerprint: str) -> str:
    """A ticket as the pipeline writes it: deterministic name, owned by the Rollout, then its first status."""
    name = ticket_name("web", pod_hash)
    ticket = RemediationTicket(
        metadata=ObjectMeta(
            name=name,
            owner_references=[
                OwnerReference(
                    api_version="argoproj.io/v1alpha1",
                    kind="Rollout",
                    name="web",
                    uid=ro["metadata"]["uid"],
                    controller=True,
                )
            ],
        ),
        spec=TicketSpec(
            rollout="web",
            policy="web",
            pod_template_hash=pod_hash,
            revision=revision,
            fingerprint=fingerprint,
            images=["ghcr.io/acme/web:bad"],
            step="step 2/2 (pause)",
            trigger="analysisFailed",
            verdict=TicketVerdict(
                verdict="unhealthy",
                confidence=91,
                analyzer="combined",
                summary=f"panics on /color; config dump shows password={LEAKED}",
                root_cause="getColor writes to a nil map (see ACME-4242)",
            ),
            evidence=TicketEvidence(
                templates=[
                    TemplateRecord(
                        id="T1",
                        template="panic: assignment to entry in nil map",
                        severity="error",
                        status="new",
                        canary_count=12,
                        examples=["panic: assignment to entry in nil map"],
                    )
                ]
            ),
        ),
    )
    cp.admin.create(TICKETS.format(ns=ns), ticket.to_body())
    stamp = datetime.now(UTC)
    cp.admin.patch(
        f"{TICKETS.format(ns=ns)}/{name}/status",
        {
            "status": to_wire(
                {
                    "occurrences": 1,
                    "firstSeen": stamp.isoformat().replace("+00:00", "Z"),
                    "lastSeen": stamp.isoformat().replace("+00:00", "Z"),
                }
            )
        },
    )
    return name


def issue_creations(gh: GitHubStandIn, repo: str) -> int:
    return sum(1 for r in gh.requests if r.method == "POST" and r.path == f"/repos/{repo}/issues")


def fingerprint() -> str:
    return uuid.uuid4().hex


# --- reading back --------------------------------------------------------------------------------------


def status(cp: ControlPlane, ns: str, name: str) -> dict[str, Any]:
    return cp.admin.get(f"{TICKETS.format(ns=ns)}/{name}").get("status") or {}


def condition(st: dict[str, Any], type_: str) -> tuple[str, str, str]:
    for cond in st.get("conditions") or []:
        if cond["type"] == type_:
            return cond["status"], cond.get("reason", ""), cond.get("message", "")
    return "", "", ""


def wait_status(
    cp: ControlPlane, ns: str, name: str, predicate: Any, message: str, timeout: float = 30
) -> dict[str, Any]:
    return cp.admin.wait_for(
        lambda: (st := status(cp, ns, name)) and predicate(st) and st, timeout=timeout, interval=0.2, message=message
    )


def passes_over(cp: ControlPlane, gh: GitHubStandIn, repo: str, issue: int = 1, passes: int = 2) -> None:
    """Wait until the operator has read issue ``issue`` ``passes`` more times (once per reconcile pass of
    each ticket following it): the last of those passes began after this call and saw every change
    made before it. What a test asserts next is then the operator's settled answer, on a busy machine too."""
    path = f"/repos/{repo}/issues/{issue}"

    def reads() -> int:
        return sum(1 for r in list(gh.requests) if r.method == "GET" and r.path == path)

    start = reads()
    cp.admin.wait_for(
        lambda: reads() >= start + passes, timeout=30, message=f"{passes} more reconcile passes over issue #{issue}"
    )


def wait_phase(cp: ControlPlane, ns: str, name: str, phase: str, timeout: float = 30) -> dict[str, Any]:
    return wait_status(cp, ns, name, lambda st: st.get("phase") == phase, f"phase {phase}", timeout)


def columns(cp: ControlPlane, ns: str, name: str) -> dict[str, str]:
    """``kubectl get remediationtickets`` as a user sees it."""
    out = subprocess.run(
        ["kubectl", "--kubeconfig", cp.kubeconfig, "-n", ns, "get", "remediationtickets", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header, row = out.splitlines()[:2]
    names = header.split()
    starts = [header.index(f" {n}") + 1 if i else 0 for i, n in enumerate(names)]
    ends = [*starts[1:], len(row) + 1]
    return {n: row[s:e].strip() for n, s, e in zip(names, starts, ends, strict=True)}


def rollout_event_reasons(cp: ControlPlane, ns: str) -> list[str]:
    events = cp.admin.items(f"/api/v1/namespaces/{ns}/events", fieldSelector="involvedObject.name=web")
    return [e["reason"] for e in events if e["involvedObject"].get("kind") == "Rollout"]


def record(cp: ControlPlane, ns: str, pod_hash: str, revision: str, fp: str) -> str | None:
    """``record_failure`` called as the pipeline calls it, from another process."""

    async def call() -> str | None:
        configuration = k8s_client.Configuration()
        await k8s_config.load_kube_config(config_file=cp.kubeconfig, client_configuration=configuration)
        async with k8s_client.ApiClient(configuration) as api:
            runtime = Runtime(api_client=api, kube=KubeAdapter(api))
            return await record_failure(runtime, ns, "web", pod_hash, revision, fp, datetime.now(UTC))

    return asyncio.run(call())


# --- the tests -------------------------------------------------------------------------------------------


def test_full_loop_issue_agent_pr_merge_verified(
    control_plane: ControlPlane, kubeconfig: str, gh: GitHubStandIn, namespace: str, repo: str
) -> None:
    cp, ns = control_plane, namespace
    ro = setup_world(cp, gh, ns, repo, verification={"requireMergeSHA": True})
    fp = fingerprint()
    name = create_ticket(cp, ns, ro, FAILING, "3", fp)
    assert columns(cp, ns, name)["PHASE"] == ""

    with operator_process(kubeconfig, ns):
        st = wait_status(cp, ns, name, lambda s: (s.get("issue") or {}).get("agentAssigned"), "issue + agent")
        assert st["phase"] == "IssueOpened" and st["issue"]["number"] == 1
        assert condition(st, "IssueOpened")[:2] == ("True", "IssueCreated")
        assert condition(st, "FixProposed")[:2] == ("False", "AgentAssigned")
        [issue] = gh.issues(repo)
        assert f"<!-- selfheal:fingerprint={fp} -->" in issue["body"]
        assert LEAKED not in issue["body"] and "ACME-4242" not in issue["body"] and "[REDACTED:" in issue["body"]
        assert {label["name"] for label in issue["labels"]} == {"selfheal", "bug"}
        assert [a["login"] for a in issue["assignees"]] == ["Copilot"]
        assert gh.agent_assignments == [
            (repo, 1, {"target_repo": repo, "base_branch": "main", "custom_instructions": "Keep the change small."})
        ]
        row = columns(cp, ns, name)
        assert (row["PHASE"], row["ISSUE"], row["PR"]) == ("IssueOpened", "1", "")

        # The agent opens a draft PR that fixes the issue.
        pr = gh.open_pull(repo, "[WIP] Fix nil map in getColor", "Fixes #1", author="Copilot", draft=True)
        st = wait_phase(cp, ns, name, "FixProposed")
        assert st["pullRequest"] == pr
        [tracked] = st["pullRequests"]
        assert (tracked["number"], tracked["author"], tracked["state"]) == (pr, "Copilot", "draft")
        assert tracked["headSHA"] and tracked["url"].endswith(f"/pull/{pr}")
        row = columns(cp, ns, name)
        assert (row["PHASE"], row["ISSUE"], row["PR"]) == ("FixProposed", "1", str(pr))

        # The issue's list of affected Rollouts shows the new phase (one edit, and its next read is a full one);
        # from then on, unchanged polls are conditional requests: they cost no rate limit.
        cp.admin.wait_for(lambda: "FixProposed" in gh.issue(1, repo)["body"], timeout=30, message="the list edited")
        passes_over(cp, gh, repo)
        used = gh.used
        passes_over(cp, gh, repo)
        assert gh.used == used, "\n".join(f"{r.method} {r.path} {r.status}" for r in gh.requests[-14:])

        gh.mark_ready(pr, repo)
        wait_status(cp, ns, name, lambda s: s["pullRequests"][0]["state"] == "open", "PR ready")
        sha = gh.merge_pull(pr, repo)
        st = wait_phase(cp, ns, name, "FixMerged")
        assert st["pullRequests"][0]["mergeSHA"] == sha and st["pullRequests"][0]["mergedAt"]
        assert condition(st, "Verified")[:2] == ("Unknown", "AwaitingRollout")
        row = columns(cp, ns, name)
        assert (row["PHASE"], row["ISSUE"], row["PR"]) == ("FixMerged", "1", str(pr))

        # A revision built before the fix (no merge SHA) is not the verification revision.
        time.sleep(1.1)  # creation timestamps have one-second resolution
        replicaset(cp, ns, ro, "7a8b9c0d1e", "4", "ghcr.io/acme/web:unrelated")
        rollout_status(cp, ns, ro, current="7a8b9c0d1e", stable=STABLE, phase="Progressing")
        passes_over(cp, gh, repo)
        st = status(cp, ns, name)
        assert st["phase"] == "FixMerged" and st["verification"]["state"] == "Pending"

        # The revision carrying the merge SHA rolls out, then becomes stable and healthy.
        replicaset(cp, ns, ro, "8b9c0d1e2f", "5", f"ghcr.io/acme/web:sha-{sha[:7]}")
        rollout_status(cp, ns, ro, current="8b9c0d1e2f", stable=STABLE, phase="Paused")
        st = wait_phase(cp, ns, name, "Verifying")
        assert st["verification"]["podTemplateHash"] == "8b9c0d1e2f" and st["verification"]["revision"] == "5"
        assert columns(cp, ns, name)["PHASE"] == "Verifying"
        rollout_status(cp, ns, ro, current="8b9c0d1e2f", stable="8b9c0d1e2f", phase="Healthy")
        st = wait_status(
            cp,
            ns,
            name,
            lambda s: s.get("phase") == "Resolved" and s["verification"].get("reported"),
            "Resolved and reported",
        )
        assert condition(st, "Verified")[:2] == ("True", "RevisionVerified")
        row = columns(cp, ns, name)
        assert (row["PHASE"], row["ISSUE"], row["PR"]) == ("Resolved", "1", str(pr))
        comments = gh.comment_bodies(1, repo)
        assert len(comments) == 1 and "Verified by selfheal" in comments[0] and "`5`" in comments[0]
        assert gh.issue(1, repo)["state"] == "closed"
        # closed once, by us, after the verification (the other edits keep the list of affected Rollouts current)
        assert [e["event"] for e in gh.timeline_events(1, repo)].count("closed") == 1
        assert "Resolved" in gh.issue(1, repo)["body"]
        phases = {"TicketIssueOpened", "TicketFixProposed", "TicketFixMerged", "TicketVerifying", "TicketResolved"}
        cp.admin.wait_for(
            lambda: phases <= set(rollout_event_reasons(cp, ns)),
            timeout=10,
            message="an Event on the Rollout for each phase",
        )
    assert issue_creations(gh, repo) == 1


def test_same_failure_three_times_one_issue_paced_comments(
    control_plane: ControlPlane, kubeconfig: str, gh: GitHubStandIn, namespace: str, repo: str
) -> None:
    cp, ns = control_plane, namespace
    ro = setup_world(cp, gh, ns, repo, agent={"type": "jules"})
    fp = fingerprint()
    name = create_ticket(cp, ns, ro, FAILING, "3", fp)
    with operator_process(kubeconfig, ns):
        st = wait_status(cp, ns, name, lambda s: (s.get("issue") or {}).get("agentAssigned"), "issue + agent")
        assert "jules" in {label["name"] for label in gh.issue(1, repo)["labels"]}
        assert st["issue"]["commentedOccurrences"] == 1

        # The pipeline counts a repeat: one comment reports it.
        cp.admin.patch(f"{TICKETS.format(ns=ns)}/{name}/status", {"status": {"occurrences": 2}})
        wait_status(cp, ns, name, lambda s: s["issue"].get("commentedOccurrences") == 2, "occurrence commented")
        [comment] = gh.comment_bodies(1, repo)
        assert "Occurrences: 2" in comment

        # A third sighting within commentIntervalMinutes: counted, not commented yet.
        cp.admin.patch(f"{TICKETS.format(ns=ns)}/{name}/status", {"status": {"occurrences": 3}})
        passes_over(cp, gh, repo)
        st = status(cp, ns, name)
        assert st["occurrences"] == 3 and st["issue"]["commentedOccurrences"] == 2
        assert len(gh.comment_bodies(1, repo)) == 1

        # The same fingerprint on another revision: the existing issue is adopted, no second issue.
        replicaset(cp, ns, ro, "9c0d1e2f3a", "4", "ghcr.io/acme/web:bad2")
        other = create_ticket(cp, ns, ro, "9c0d1e2f3a", "4", fp)
        st = wait_status(cp, ns, other, lambda s: (s.get("issue") or {}).get("number"), "issue adopted")
        assert st["issue"]["number"] == 1 and condition(st, "IssueOpened")[:2] == ("True", "IssueFound")
        passes_over(cp, gh, repo, passes=4)  # two tickets follow issue #1 now
        assert len(gh.issues(repo)) == 1 and issue_creations(gh, repo) == 1
        assert len(gh.comment_bodies(1, repo)) == 1  # paced per issue, whichever ticket reports


def test_crash_right_after_creating_the_issue(
    control_plane: ControlPlane, kubeconfig: str, gh: GitHubStandIn, namespace: str, repo: str
) -> None:
    cp, ns = control_plane, namespace
    ro = setup_world(cp, gh, ns, repo)
    name = create_ticket(cp, ns, ro, FAILING, "3", fingerprint())
    running: list[OperatorProcess] = []
    # SIGKILL once GitHub created the issue, before the operator hears back and records it
    gh.after_answer("POST", f"/repos/{repo}/issues", lambda: running[0].kill())
    with operator_process(kubeconfig, ns) as proc:
        running.append(proc)
        assert proc.proc is not None
        proc.proc.wait(timeout=40)
        assert proc.proc.returncode == -9
    assert len(gh.issues(repo)) == 1
    assert not (status(cp, ns, name).get("issue") or {}).get("number")

    with operator_process(kubeconfig, ns):
        st = wait_status(cp, ns, name, lambda s: (s.get("issue") or {}).get("agentAssigned"), "issue recorded")
        passes_over(cp, gh, repo)
    st = status(cp, ns, name)
    assert st["issue"]["number"] == 1 and st["phase"] == "IssueOpened"
    assert condition(st, "IssueOpened")[:2] == ("True", "IssueCreated")
    assert len(gh.issues(repo)) == 1 and issue_creations(gh, repo) == 1
    assert gh.comment_bodies(1, repo) == []


def test_crash_right_after_handing_the_issue_to_the_agent(
    control_plane: ControlPlane, kubeconfig: str, gh: GitHubStandIn, namespace: str, repo: str
) -> None:
    cp, ns = control_plane, namespace
    ro = setup_world(cp, gh, ns, repo)
    name = create_ticket(cp, ns, ro, FAILING, "3", fingerprint())
    running: list[OperatorProcess] = []
    # SIGKILL once GitHub assigned the coding agent, before the operator hears back and records it
    gh.after_answer("POST", f"/repos/{repo}/issues/1/assignees", lambda: running[0].kill())
    with operator_process(kubeconfig, ns) as proc:
        running.append(proc)
        assert proc.proc is not None
        proc.proc.wait(timeout=40)
        assert proc.proc.returncode == -9
    assert [a for a in gh.agent_assignments if a[0] == repo] != []

    with operator_process(kubeconfig, ns):
        wait_status(cp, ns, name, lambda s: (s.get("issue") or {}).get("agentAssigned"), "hand-over recorded")
        passes_over(cp, gh, repo)
    assert len(gh.issues(repo)) == 1 and issue_creations(gh, repo) == 1
    assert len([a for a in gh.agent_assignments if a[0] == repo]) == 1, "the agent is asked once"
    assert gh.comment_bodies(1, repo) == []


def test_fix_merged_then_the_next_revision_fails_the_same_way(
    control_plane: ControlPlane, kubeconfig: str, gh: GitHubStandIn, namespace: str, repo: str
) -> None:
    cp, ns = control_plane, namespace
    ro = setup_world(cp, gh, ns, repo, agent={"type": "label", "label": "fix-me"})
    fp = fingerprint()
    name = create_ticket(cp, ns, ro, FAILING, "3", fp)
    with operator_process(kubeconfig, ns):
        wait_status(cp, ns, name, lambda s: (s.get("issue") or {}).get("agentAssigned"), "issue + agent")
        pr = gh.open_pull(repo, "Fix nil map", "This PR fixes #1 properly.\n\nFixes #1", author="dev", draft=False)
        gh.merge_pull(pr, repo)
        wait_phase(cp, ns, name, "FixMerged")
        time.sleep(1.1)
        replicaset(cp, ns, ro, "0d1e2f3a4b", "4", "ghcr.io/acme/web:fixed")
        rollout_status(cp, ns, ro, current="0d1e2f3a4b", stable=STABLE, phase="Paused")
        wait_phase(cp, ns, name, "Verifying")

    # The pipeline runs inside the operator and shares its per-ticket lock; called from the test
    # process, record_failure must not race a reconcile pass, so the operator is stopped meanwhile.
    assert record(cp, ns, "0d1e2f3a4b", "4", fingerprint()) is None  # another failure: a ticket of its own
    assert record(cp, ns, "0d1e2f3a4b", "4", fp) == name
    assert record(cp, ns, "0d1e2f3a4b", "4", fp) == name  # reported again: recorded once
    assert status(cp, ns, name)["phase"] == "Regressed"
    with operator_process(kubeconfig, ns):
        st = wait_status(
            cp,
            ns,
            name,
            lambda s: (
                s.get("phase") == "Regressed"
                and (s.get("issue") or {}).get("reopenedFor") == "0d1e2f3a4b"
                and condition(s, "FixProposed")[1] == "AgentAskedAgain"
            ),
            "regression followed up",
        )
        assert st["occurrences"] == 2 and st["verification"]["state"] == "Failed"
        assert condition(st, "Verified")[:2] == ("False", "RevisionRegressed")
        assert condition(st, "FixProposed")[:2] == ("False", "AgentAskedAgain")
        issue = gh.issue(1, repo)
        assert issue["state"] == "open"
        comments = gh.comment_bodies(1, repo)
        assert len(comments) == 1 and "Regressed" in comments[0] and "`4`" in comments[0]
        labelled = [e["event"] for e in gh.timeline_events(1, repo) if (e.get("label") or {}).get("name") == "fix-me"]
        assert labelled == ["labeled", "unlabeled", "labeled"]  # the agent asked again
        assert columns(cp, ns, name)["PHASE"] == "Regressed"
        assert "TicketRegressed" in rollout_event_reasons(cp, ns)


def test_github_outage_rate_limit_and_bad_token(
    control_plane: ControlPlane, kubeconfig: str, gh: GitHubStandIn, namespace: str, repo: str
) -> None:
    cp, ns = control_plane, namespace
    ro = setup_world(cp, gh, ns, repo, agent={"type": "none"})
    path = f"/repos/{repo}/"
    with operator_process(kubeconfig, ns, **{"SELFHEAL_GITHUB_REFUSED_RETRY_SECONDS": "3"}):
        # The policy's own access check comes first, so the faults below all meet the ticket.
        cp.admin.wait_for(
            lambda: (cp.admin.get(f"{POLICIES.format(ns=ns)}/web").get("status") or {}).get("phase") == "Ready",
            timeout=30,
            message="the policy Ready",
        )
        gh.fail_next(3, 500)  # one call's worth: the client retries twice quickly, then gives up
        gh.rate_limit_next(retry_after=4, status=429)
        name = create_ticket(cp, ns, ro, FAILING, "3", fingerprint())
        wait_status(cp, ns, name, lambda s: condition(s, "IssueOpened")[1] == "GitHubUnavailable", "outage shown")
        wait_status(
            cp, ns, name, lambda s: condition(s, "IssueOpened")[1] == "RateLimited", "rate limit shown", timeout=20
        )
        st = wait_status(cp, ns, name, lambda s: (s.get("issue") or {}).get("number"), "issue once recovered")
        assert st["phase"] == "IssueOpened" and condition(st, "FixProposed")[1] == "NoAgent"
        log = [r for r in gh.requests if r.path.startswith(path)]
        assert [r.status for r in log[:5]] == [500, 500, 500, 429, 200]
        assert 9 <= log[3].at - log[2].at <= 14  # the outage: the TransientError's delay, not a busy loop
        assert 3.5 <= log[4].at - log[3].at <= 7  # the secondary rate limit: Retry-After
        assert len(gh.issues(repo)) == 1

        # The token is revoked: a second failure cannot open its issue and says why; no busy loop.
        gh.bad_token(True)
        cp.admin.patch(f"{TICKETS.format(ns=ns)}/{name}/status", {"status": {"occurrences": 2}})
        replicaset(cp, ns, ro, "1e2f3a4b5c", "4", "ghcr.io/acme/web:other")
        other = create_ticket(cp, ns, ro, "1e2f3a4b5c", "4", fingerprint())
        st = wait_phase(cp, ns, other, "Failed")
        assert condition(st, "IssueOpened")[:2] == ("False", "BadCredentials")
        assert "Bad credentials" in condition(st, "IssueOpened")[2]
        assert "verification" not in st  # with GitHub configured, verification waits for a merged fix
        wait_status(cp, ns, name, lambda s: s["issue"].get("reason") == "BadCredentials", "refusal on the issue")
        start = len(gh.requests)
        time.sleep(REFUSAL_WINDOW)  # a window of fixed length: what is counted is the pace of the retries
        refused = [r for r in gh.requests[start:] if r.status == 401]
        assert 1 <= len(refused) <= 10  # two tickets retrying every 3 seconds, not a busy loop

        # GitHub accepts the token again: nothing was lost.
        gh.bad_token(False)
        st = wait_phase(cp, ns, other, "IssueOpened", timeout=20)
        assert st["issue"]["number"] == 2
        wait_status(
            cp,
            ns,
            name,
            lambda s: s["issue"].get("commentedOccurrences") == 2 and "reason" not in s["issue"],
            "repeat reported, failure cleared",
        )
        assert len(gh.comment_bodies(1, repo)) == 1


def test_refusals_are_named_and_heal(
    control_plane: ControlPlane, kubeconfig: str, gh: GitHubStandIn, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    repo = f"acme/{namespace}-later"  # does not exist yet
    ro = setup_world(cp, gh, ns, repo)
    name = create_ticket(cp, ns, ro, FAILING, "3", fingerprint())
    gh.strict_labels, gh.copilot_enabled = True, False  # labels must exist; Copilot not enabled for the token
    try:
        with operator_process(kubeconfig, ns, **{"SELFHEAL_GITHUB_REFUSED_RETRY_SECONDS": "2"}):
            st = wait_phase(cp, ns, name, "Failed")
            assert condition(st, "IssueOpened")[:2] == ("False", "RepositoryNotFound")
            gh.add_repo(repo)
            st = wait_status(cp, ns, name, lambda s: condition(s, "IssueOpened")[1] == "InvalidLabel", "422 named")
            assert "value=selfheal" in condition(st, "IssueOpened")[2] and st["phase"] == "Failed"
            gh.strict_labels = False
            st = wait_status(
                cp, ns, name, lambda s: condition(s, "FixProposed")[1] == "AgentNotStarted", "agent not started"
            )
            assert st["phase"] == "IssueOpened" and st["issue"]["agentAssigned"] is False
            assert "did not start" in condition(st, "FixProposed")[2]
            cp.admin.wait_for(
                lambda: "AgentNotStarted" in rollout_event_reasons(cp, ns), timeout=10, message="AgentNotStarted Event"
            )
            assert len(gh.issues(repo)) == 1
    finally:
        gh.strict_labels, gh.copilot_enabled = False, True


def test_without_github_the_failure_and_the_verification_are_still_tracked(
    control_plane: ControlPlane, kubeconfig: str, gh: GitHubStandIn, namespace: str, repo: str
) -> None:
    cp, ns = control_plane, namespace
    ro = setup_world(cp, gh, ns, repo)
    cp.admin.patch(f"{POLICIES.format(ns=ns)}/web", {"spec": {"remediation": {"github": None}}})
    name = create_ticket(cp, ns, ro, FAILING, "3", fingerprint())
    with operator_process(kubeconfig, ns):
        st = wait_status(cp, ns, name, lambda s: (s.get("issue") or {}).get("disabled"), "GitHub disabled")
        assert st["phase"] == "Open" and st["issue"]["reason"] == "GitHubDisabled"
        assert condition(st, "IssueOpened")[:2] == ("False", "GitHubDisabled")
        replicaset(cp, ns, ro, "2f3a4b5c6d", "4", "ghcr.io/acme/web:next")
        rollout_status(cp, ns, ro, current="2f3a4b5c6d", stable=STABLE, phase="Paused")
        wait_phase(cp, ns, name, "Verifying")
        rollout_status(cp, ns, ro, current="2f3a4b5c6d", stable="2f3a4b5c6d", phase="Healthy")
        st = wait_phase(cp, ns, name, "Resolved")
        assert st["verification"]["revision"] == "4" and "number" not in st["issue"]
    assert gh.issues(repo) == []


def test_an_agent_that_stalls_is_reported_and_a_human_called_once(
    control_plane: ControlPlane, kubeconfig: str, gh: GitHubStandIn, namespace: str, repo: str
) -> None:
    cp, ns = control_plane, namespace
    ro = setup_world(cp, gh, ns, repo, patienceHours=2, escalation={"label": "needs-human", "mention": "@oncall"})
    name = create_ticket(cp, ns, ro, FAILING, "3", fingerprint())
    with operator_process(kubeconfig, ns):
        st = wait_status(cp, ns, name, lambda s: (s.get("issue") or {}).get("agentAssigned"), "issue + agent")
        # The agent was asked three hours ago (as the clock will see it) and no PR came.
        conditions = st["conditions"]
        for cond in conditions:
            if cond["type"] == "FixProposed":
                asked = datetime.fromisoformat(cond["lastTransitionTime"].replace("Z", "+00:00"))
                cond["lastTransitionTime"] = (asked - timedelta(hours=3)).isoformat().replace("+00:00", "Z")
        cp.admin.patch(f"{TICKETS.format(ns=ns)}/{name}/status", {"status": {"conditions": conditions}})
        st = wait_status(cp, ns, name, lambda s: condition(s, "FixProposed")[1] == "AgentStalled", "agent stalled")
        assert condition(st, "FixProposed")[0] == "False"
        assert "after 2 hour(s)" in condition(st, "FixProposed")[2]
        cp.admin.wait_for(
            lambda: "AgentStalled" in rollout_event_reasons(cp, ns),
            timeout=10,
            message="an AgentStalled Event on the Rollout",
        )
        cp.admin.wait_for(
            lambda: "needs-human" in {label["name"] for label in gh.issue(1, repo)["labels"]},
            timeout=10,
            message="the escalation label",
        )
        passes_over(cp, gh, repo)  # further passes do not call the human again
        assert len([c for c in gh.comment_bodies(1, repo) if "@oncall" in c]) == 1
