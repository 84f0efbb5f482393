"""The simulated Argo Rollouts controller honours argo-rollouts-contract.md (§9 checklist), on the real apiserver."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from selfheal.testing import scenarios as sc
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.argosim.expr import ExprError, evaluate, jsonpath
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.kubelet import NODE_NAME, TestKubelet
from selfheal.testing.rest import ApiError
from selfheal.testing.workloads import INJECTION_LINE, SECRET_LINE, Behaviour, Workloads, register_behaviour

SAFE_HASH = re.compile(r"^[456789bcdf]+$")


@pytest.fixture
def sim(control_plane: ControlPlane, kubelet: TestKubelet, namespace: str) -> Iterator[ArgoSimulator]:
    with ArgoSimulator(
        control_plane, kubelet, namespaces=[namespace], interval=0.05, requests_per_second=100
    ) as simulator:
        yield simulator
    assert simulator.errors == []


@pytest.fixture
def admin(control_plane: ControlPlane):
    return control_plane.admin


def cond(obj: dict, kind: str) -> dict | None:
    return next((c for c in obj["status"].get("conditions") or [] if c["type"] == kind), None)


def step_index(n: int):
    """Paused at step ``n`` once the controller has also set the Paused condition (one reconcile later)."""
    return lambda o: (
        (o.get("status") or {}).get("currentStepIndex") == n
        and sc.rollout_phase(o)[0] == "Paused"
        and (cond(o, "Paused") or {}).get("status") == "True"
    )


def revision_of(obj: dict) -> str:
    return obj["metadata"]["annotations"]["rollout.argoproj.io/revision"]


def deploy(admin, namespace: str, rollout: dict) -> dict:
    sc.create(admin, namespace, rollout)
    return sc.wait_phase(admin, namespace, rollout["metadata"]["name"], "Healthy")


def reasons(admin, namespace: str, name: str) -> list[str]:
    return [e["reason"] for e in sc.events(admin, namespace, name=name)]


def messages(admin, namespace: str, name: str, reason: str) -> list[str]:
    return [e["message"] for e in sc.events(admin, namespace, name=name, reason=reason)]


def event(admin, namespace: str, name: str, reason: str, message: str | None = None) -> dict:
    """The event with ``reason`` (and ``message``) on ``name``; Event list order is by name, not by time.

    Events are posted right after the status change they report, so they are waited for a moment."""

    def matching() -> list[dict]:
        return [
            e
            for e in sc.events(admin, namespace, name=name, reason=reason)
            if message is None or e["message"] == message
        ]

    deadline = time.monotonic() + 5
    while not (found := matching()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found, f"no {reason} {message!r} event on {name}: {messages(admin, namespace, name, reason)}"
    return found[-1]


# -- §4, §6.5 initial deploy ------------------------------------------------------------------------------


def test_initial_deploy_creates_rs_and_pods_and_is_healthy(admin, sim: ArgoSimulator, namespace: str) -> None:
    ro = deploy(admin, namespace, sc.demo_rollout("web", "blue", replicas=3))
    status = ro["status"]
    pod_hash = status["currentPodHash"]
    assert SAFE_HASH.match(pod_hash)
    assert status["stableRS"] == pod_hash
    assert status["observedGeneration"] == str(ro["metadata"]["generation"])
    assert status["currentStepIndex"] == 8 and status["currentStepHash"]
    assert (
        status["replicas"],
        status["updatedReplicas"],
        status["readyReplicas"],
        status["availableReplicas"],
        status["HPAReplicas"],
    ) == (3, 3, 3, 3, 3)
    assert status["selector"] == "app=web"
    assert status["message"] == "" if "message" in status else True
    assert ro["metadata"]["annotations"]["rollout.argoproj.io/revision"] == "1"
    for kind, state, reason in (
        ("Progressing", "True", "NewReplicaSetAvailable"),
        ("Available", "True", "AvailableReason"),
        ("Completed", "True", "RolloutCompleted"),
        ("Healthy", "True", "RolloutHealthy"),
    ):
        c = cond(ro, kind)
        assert c and (c["status"], c["reason"]) == (state, reason), c

    rs = sc.replicaset(admin, namespace, "web", pod_hash)
    assert rs["metadata"]["labels"] == {"app": "web", "rollouts-pod-template-hash": pod_hash}
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "rollouts-pod-template-hash": pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"]["rollouts-pod-template-hash"] == pod_hash
    assert rs["metadata"]["annotations"]["rollout.argoproj.io/revision"] == "1"
    assert rs["metadata"]["annotations"]["rollout.argoproj.io/desired-replicas"] == "3"
    [owner] = rs["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": "web",
        "uid": ro["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }

    pods = sc.pods_of(admin, namespace, pod_hash)
    assert len(pods) == 3
    for pod in pods:
        assert (
            pod["metadata"]["name"].startswith(f"web-{pod_hash}-")
            and len(pod["metadata"]["name"]) == len(f"web-{pod_hash}-") + 5
        )
        assert pod["metadata"]["labels"]["role"] == "stable"
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert pod["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"]
        assert pod["status"]["phase"] == "Running"
        [cs] = pod["status"]["containerStatuses"]
        assert cs["ready"] and cs["restartCount"] == 0 and "running" in cs["state"]
        assert cs["image"] == "argoproj/rollouts-demo:blue"
    name = pods[0]["metadata"]["name"]
    logs = admin.wait_for(
        lambda: admin.text(f"/api/v1/namespaces/{namespace}/pods/{name}/log").splitlines()[1:],
        timeout=5,
        message="log lines",
    )
    assert re.match(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d 200 - blue$", logs[0]), logs[0]

    done = event(admin, namespace, "web", "RolloutCompleted")
    assert done["message"] == f"Rollout completed update to revision 1 ({pod_hash}): Initial deploy"
    assert done["source"]["component"] == "rollouts-controller" and done["type"] == "Normal"
    assert done["involvedObject"]["kind"] == "Rollout" and done["involvedObject"]["uid"] == ro["metadata"]["uid"]
    assert {"NewReplicaSetCreated", "RolloutUpdated", "ScalingReplicaSet"} <= set(reasons(admin, namespace, "web"))


def test_min_ready_seconds_delays_availability(admin, sim: ArgoSimulator, namespace: str) -> None:
    rollout = sc.demo_rollout("web", "blue", replicas=1)
    rollout["spec"]["minReadySeconds"] = 2
    sc.create(admin, namespace, rollout)
    ro = sc.wait_rollout(
        admin, namespace, "web", lambda o: o.get("status", {}).get("readyReplicas") == 1, message="ready pod"
    )
    assert "availableReplicas" not in ro["status"]
    assert sc.rollout_phase(ro) == ("Progressing", "updated replicas are still becoming available")
    sc.wait_phase(admin, namespace, "web", "Healthy", timeout=10)


# -- §2.1, §6.5 canary steps, pause, promote ---------------------------------------------------------------


def test_set_weight_pause_promote_and_promote_full(admin, sim: ArgoSimulator, namespace: str) -> None:
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
    stable = deploy(admin, namespace, sc.demo_rollout("web", "blue", steps=steps, replicas=5))["status"]["stableRS"]
    sc.set_image(admin, namespace, "web", "green")
    ro = sc.wait_rollout(admin, namespace, "web", step_index(1), message="paused at step 1")
    status = ro["status"]
    canary = status["currentPodHash"]
    assert canary != stable and status["stableRS"] == stable
    assert sc.rollout_phase(ro) == ("Paused", "CanaryPauseStep")
    assert status["controllerPause"] is True
    assert [c["reason"] for c in status["pauseConditions"]] == ["CanaryPauseStep"]
    assert ro["metadata"]["annotations"]["rollout.argoproj.io/revision"] == "2"
    assert sc.replicaset(admin, namespace, "web", canary)["spec"]["replicas"] == 1
    assert sc.replicaset(admin, namespace, "web", stable)["spec"]["replicas"] == 4
    assert revision_of(sc.replicaset(admin, namespace, "web", canary)) == "2"
    assert {p["metadata"]["labels"]["role"] for p in sc.pods_of(admin, namespace, canary)} == {"canary"}
    assert {p["metadata"]["labels"]["role"] for p in sc.pods_of(admin, namespace, stable)} == {"stable"}
    assert cond(ro, "Paused")["status"] == "True"
    assert (cond(ro, "Completed")["status"], cond(ro, "Healthy")["status"]) == ("False", "False")
    event(admin, namespace, "web", "RolloutUpdated", "Rollout updated to revision 2")
    event(admin, namespace, "web", "NewReplicaSetCreated", f"Created ReplicaSet web-{canary} (revision 2)")
    event(admin, namespace, "web", "RolloutStepCompleted", "Rollout step 1/4 completed (setWeight: 20)")
    event(admin, namespace, "web", "RolloutPaused", "Rollout is paused (CanaryPauseStep)")

    assert sc.promote(admin, namespace, "web") == [("status", {"status": {"pauseConditions": None}})]
    ro = sc.wait_rollout(admin, namespace, "web", step_index(3), message="paused at step 3")
    assert sc.replicaset(admin, namespace, "web", canary)["spec"]["replicas"] == 3
    assert sc.replicaset(admin, namespace, "web", stable)["spec"]["replicas"] == 2

    assert sc.promote(admin, namespace, "web", full=True) == [("status", {"status": {"promoteFull": True}})]
    ro = sc.wait_phase(admin, namespace, "web", "Healthy")
    assert ro["status"]["stableRS"] == ro["status"]["currentPodHash"] == canary
    assert "promoteFull" not in ro["status"] and "pauseConditions" not in ro["status"]
    assert ro["status"]["currentStepIndex"] == 4
    event(
        admin,
        namespace,
        "web",
        "RolloutCompleted",
        f"Rollout completed update to revision 2 ({canary}): Full promotion requested",
    )
    admin.wait_for(
        lambda: sc.replicaset(admin, namespace, "web", stable)["status"].get("replicas", 0) == 0,
        timeout=5,
        message="old RS scaled down",
    )
    assert {p["metadata"]["labels"]["role"] for p in sc.pods_of(admin, namespace, canary)} == {"stable"}
    # a fully promoted rollout gets no status patch from promote --full
    assert sc.promote(admin, namespace, "web", full=True) == []


def test_informer_lag_delays_the_reaction_to_others_changes(
    admin, control_plane: ControlPlane, kubelet: TestKubelet, namespace: str
) -> None:
    lag = 2.0
    with ArgoSimulator(
        control_plane, kubelet, namespaces=[namespace], interval=0.05, requests_per_second=100, informer_lag=lag
    ) as lagging:
        steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
        deploy(admin, namespace, sc.demo_rollout("web", "blue", steps=steps, replicas=5))
        changed_at = time.monotonic()
        sc.set_image(admin, namespace, "web", "green")
        sc.wait_rollout(admin, namespace, "web", step_index(1), message="paused at step 1")
        assert time.monotonic() - changed_at >= lag

        promoted_at = time.monotonic()
        sc.promote(admin, namespace, "web")
        unpausing = sc.get_rollout(admin, namespace, "web")
        assert sc.rollout_phase(unpausing) == ("Progressing", "waiting for rollout to unpause")
        ro = sc.wait_rollout(admin, namespace, "web", step_index(3), message="paused at step 3")
        assert time.monotonic() - promoted_at >= lag
        # It sees its own writes at once: no stale view makes it complete the pause step twice.
        assert [m for m in messages(admin, namespace, "web", "RolloutStepCompleted") if "(pause)" in m] == [
            "Rollout step 2/4 completed (pause)"
        ]
        assert ro["status"]["currentStepIndex"] == 3
    assert lagging.errors == []


def test_timed_pauses_complete_and_all_steps_promote(admin, sim: ArgoSimulator, namespace: str) -> None:
    deploy(
        admin,
        namespace,
        sc.demo_rollout("web", "blue", steps=[{"setWeight": 50}, {"pause": {"duration": "1s"}}], replicas=2),
    )
    sc.set_image(admin, namespace, "web", "slow-green")
    ro = sc.wait_rollout(admin, namespace, "web", lambda o: sc.rollout_phase(o)[0] == "Paused", message="timed pause")
    assert ro["status"]["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    ro = sc.wait_phase(admin, namespace, "web", "Healthy", timeout=10)
    assert sorted(messages(admin, namespace, "web", "RolloutStepCompleted")) == [
        "Rollout step 1/2 completed (setWeight: 50)",
        "Rollout step 2/2 completed (pause: 1s)",
    ]
    event(
        admin,
        namespace,
        "web",
        "RolloutCompleted",
        f"Rollout completed update to revision 2 ({ro['status']['currentPodHash']}): Completed all 2 canary steps",
    )
    assert "controllerPause" not in ro["status"]


def test_manual_pause_and_observed_generation_is_a_string(admin, sim: ArgoSimulator, namespace: str) -> None:
    deploy(admin, namespace, sc.demo_rollout("web", "blue", steps=[{"setWeight": 50}, {"pause": {}}], replicas=2))
    sc.pause(admin, namespace, "web")
    ro = sc.wait_rollout(
        admin,
        namespace,
        "web",
        lambda o: sc.rollout_phase(o) == ("Paused", "manually paused"),
        message="manually paused",
    )
    assert ro["status"]["observedGeneration"] == str(ro["metadata"]["generation"]) == "2"
    sc.wait_rollout(
        admin, namespace, "web", lambda o: (cond(o, "Paused") or {}).get("status") == "True", message="Paused condition"
    )
    assert "RolloutPaused" not in reasons(admin, namespace, "web")
    assert sc.promote(admin, namespace, "web", full=True) == [("", {"spec": {"paused": False}})]
    sc.wait_phase(admin, namespace, "web", "Healthy")


def test_back_to_the_stable_template_skips_the_steps(admin, sim: ArgoSimulator, namespace: str) -> None:
    stable = deploy(
        admin, namespace, sc.demo_rollout("web", "blue", steps=[{"setWeight": 50}, {"pause": {}}], replicas=2)
    )["status"]["stableRS"]
    sc.set_image(admin, namespace, "web", "green")
    canary = sc.wait_rollout(admin, namespace, "web", step_index(1), message="paused")["status"]["currentPodHash"]
    admin.patch(sc.rollout_path(namespace, "web"), {"metadata": {"annotations": {"team": "payments"}}})
    admin.wait_for(
        lambda: sc.replicaset(admin, namespace, "web", canary)["metadata"]["annotations"].get("team"),
        timeout=5,
        message="annotation copied to the new ReplicaSet",
    )
    sc.set_image(admin, namespace, "web", "blue")
    ro = sc.wait_phase(admin, namespace, "web", "Healthy")
    assert ro["status"]["currentPodHash"] == ro["status"]["stableRS"] == stable
    assert ro["status"]["currentStepIndex"] == 2
    event(admin, namespace, "web", "SkipSteps", "Rollback to stable ReplicaSets")
    assert ro["metadata"]["annotations"]["rollout.argoproj.io/revision"] == "3"
    assert revision_of(sc.replicaset(admin, namespace, "web", stable)) == "3"
    admin.wait_for(
        lambda: sc.replicaset(admin, namespace, "web", canary)["spec"]["replicas"] == 0,
        timeout=5,
        message="canary scaled down",
    )


# -- §6.2, §6.3 abort and retry ---------------------------------------------------------------------------


def test_user_abort_then_retry(admin, sim: ArgoSimulator, namespace: str) -> None:
    stable = deploy(
        admin, namespace, sc.demo_rollout("web", "blue", steps=[{"setWeight": 40}, {"pause": {}}], replicas=5)
    )["status"]["stableRS"]
    sc.set_image(admin, namespace, "web", "green")
    ro = sc.wait_rollout(admin, namespace, "web", step_index(1), message="paused")
    canary = ro["status"]["currentPodHash"]
    sc.abort(admin, namespace, "web")
    ro = sc.wait_phase(admin, namespace, "web", "Degraded")
    status = ro["status"]
    assert status["message"] == "RolloutAborted: Rollout aborted update to revision 2"
    progressing = cond(ro, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "False",
        "RolloutAborted",
        "Rollout aborted update to revision 2",
    )
    assert status["abort"] is True and status["abortedAt"]
    assert "pauseConditions" not in status and "controllerPause" not in status
    assert status["currentStepIndex"] == 0
    aborted_at = status["abortedAt"]
    admin.wait_for(
        lambda: sc.replicaset(admin, namespace, "web", canary)["spec"]["replicas"] == 0,
        timeout=5,
        message="canary scaled to 0",
    )
    admin.wait_for(
        lambda: sc.replicaset(admin, namespace, "web", stable)["spec"]["replicas"] == 5,
        timeout=5,
        message="stable back to full",
    )
    warning = event(admin, namespace, "web", "RolloutAborted")
    assert (warning["type"], warning["message"], warning["source"]["component"]) == (
        "Warning",
        "Rollout aborted update to revision 2",
        "rollouts-controller",
    )
    sim.wait_passes(5)
    later = sc.get_rollout(admin, namespace, "web")["status"]
    assert later["abortedAt"] == aborted_at and later["phase"] == "Degraded"
    assert len(sc.events(admin, namespace, name="web", reason="RolloutAborted")) == 1

    sim.stop()  # step the controller by hand to see each reconcile of §6.3
    sc.retry(admin, namespace, "web")
    sim.reconcile_once()
    ro = sc.get_rollout(admin, namespace, "web")
    progressing = cond(ro, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "Unknown",
        "RolloutRetry",
        "Retrying Rollout after abort",
    )
    assert ro["status"]["abortedAt"] == aborted_at and ro["status"]["abort"] is False  # as the CLI wrote it
    for _ in range(3):  # the Paused condition settles first, then the persist drops abortedAt
        sim.reconcile_once()
        if "abortedAt" not in sc.get_rollout(admin, namespace, "web")["status"]:
            break
    assert "abortedAt" not in sc.get_rollout(admin, namespace, "web")["status"]
    sim.start()
    ro = sc.wait_rollout(admin, namespace, "web", step_index(1), message="paused again after retry")
    assert "abort" not in ro["status"] and "abortedAt" not in ro["status"]
    assert sc.replicaset(admin, namespace, "web", canary)["spec"]["replicas"] == 2


def test_abort_of_fully_promoted_rollout_is_removed(admin, sim: ArgoSimulator, namespace: str) -> None:
    deploy(admin, namespace, sc.demo_rollout("web", "blue", replicas=1))
    sc.abort(admin, namespace, "web")
    ro = sc.wait_rollout(admin, namespace, "web", lambda o: "abort" not in o["status"], message="abort removed")
    assert sc.rollout_phase(ro)[0] == "Healthy"
    assert cond(ro, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert "RolloutAborted" not in reasons(admin, namespace, "web")


def test_new_revision_while_aborted_clears_the_abort(admin, sim: ArgoSimulator, namespace: str) -> None:
    deploy(admin, namespace, sc.demo_rollout("web", "blue", steps=[{"setWeight": 40}, {"pause": {}}], replicas=2))
    sc.set_image(admin, namespace, "web", "bad-green")
    sc.wait_rollout(admin, namespace, "web", step_index(1), message="paused")
    sc.abort(admin, namespace, "web")
    sc.wait_phase(admin, namespace, "web", "Degraded")
    sc.set_image(admin, namespace, "web", "green")
    ro = sc.wait_rollout(admin, namespace, "web", step_index(1), message="new revision paused")
    assert "abort" not in ro["status"] and "abortedAt" not in ro["status"]
    assert ro["metadata"]["annotations"]["rollout.argoproj.io/revision"] == "3"
    rs = sc.replicaset(admin, namespace, "web", ro["status"]["currentPodHash"])
    assert rs["metadata"]["annotations"]["rollout.argoproj.io/revision"] == "3"
    event(admin, namespace, "web", "RolloutUpdated", "Rollout updated to revision 3")


# -- §3.4, §6.1, §6.3 analysis runs ------------------------------------------------------------------------


def test_failed_background_analysis_aborts_and_retry_creates_dot_one(admin, sim: ArgoSimulator, namespace: str) -> None:
    sc.create(admin, namespace, sc.analysis_template("error-rate", "error-rate", "result < 0.05", interval="1s"))
    rollout = sc.demo_rollout(
        "web",
        "blue",
        steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}],
        replicas=5,
        background_analysis="error-rate",
        starting_step=1,
    )
    ro = deploy(admin, namespace, rollout)
    stable, uid = ro["status"]["stableRS"], ro["metadata"]["uid"]
    assert admin.items(f"{sc.GROUP}/namespaces/{namespace}/analysisruns") == []  # none on the initial deploy
    sc.set_image(admin, namespace, "web", "bad-green")
    ro = sc.wait_phase(admin, namespace, "web", "Degraded")
    canary = ro["status"]["currentPodHash"]
    run_name = f"web-{canary}-2"
    run = admin.get(f"{sc.GROUP}/namespaces/{namespace}/analysisruns/{run_name}")
    assert run["metadata"]["labels"] == {
        "rollouts-pod-template-hash": canary,
        "rollout-type": "Background",
        "app": "web",
    }
    assert run["metadata"]["annotations"] == {"rollout.argoproj.io/revision": "2"}
    assert run["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "name": "web",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert run["spec"]["args"] == [{"name": "canary-hash", "value": canary}]
    assert run["spec"]["metrics"][0]["provider"] == {
        "plugin": {"selfheal-test/pods": {"query": "error-rate", "podTemplateHash": "{{args.canary-hash}}"}}
    }
    status = run["status"]
    message = 'Metric "error-rate" assessed Failed due to failed (1) > failureLimit (0)'
    assert (status["phase"], status["message"]) == ("Failed", message)
    assert status["startedAt"] and status["completedAt"]
    assert status["runSummary"] == {"count": 1, "failed": 1}
    [result] = status["metricResults"]
    assert (result["name"], result["phase"], result["count"], result["failed"]) == ("error-rate", "Failed", 1, 1)
    measurement = result["measurements"][-1]  # an Error ("no data yet") may precede it
    assert measurement["phase"] == "Failed" and 0.05 < float(measurement["value"]) <= 1.0
    event(admin, namespace, run_name, "AnalysisRunFailed", "Analysis Completed. Result: Failed")
    assert event(admin, namespace, run_name, "MetricFailed")["type"] == "Warning"

    abort_message = f"Rollout aborted update to revision 2: Background analysis phase error/failed: {message}"
    assert ro["status"]["message"] == f"RolloutAborted: {abort_message}"
    assert ro["status"]["canary"]["currentBackgroundAnalysisRunStatus"] == {
        "name": run_name,
        "status": "Failed",
        "message": message,
    }
    assert event(admin, namespace, "web", "RolloutAborted", abort_message)["type"] == "Warning"
    failed = event(admin, namespace, "web", "AnalysisRunFailed")
    assert failed["type"] == "Warning" and failed["message"] in (
        f"Background Analysis Run '{run_name}' Status New: 'Failed' Previous: '{before}'"
        for before in ("Running", "NoPreviousStatus")
    )
    admin.wait_for(
        lambda: sc.replicaset(admin, namespace, "web", canary)["spec"]["replicas"] == 0,
        timeout=5,
        message="canary scaled to 0",
    )
    assert sc.replicaset(admin, namespace, "web", stable)["spec"]["replicas"] == 5

    sc.retry(admin, namespace, "web")
    ro = sc.wait_rollout(
        admin,
        namespace,
        "web",
        lambda o: (
            sc.rollout_phase(o)[0] == "Degraded"
            and (o["status"].get("canary") or {}).get("currentBackgroundAnalysisRunStatus", {}).get("name")
            == f"{run_name}.1"
        ),
        message="aborted again by the retried run",
    )
    retried = admin.get(f"{sc.GROUP}/namespaces/{namespace}/analysisruns/{run_name}.1")
    assert retried["metadata"]["labels"] == run["metadata"]["labels"]
    assert retried["status"]["phase"] == "Failed"
    assert ro["status"]["canary"]["currentBackgroundAnalysisRunStatus"]["name"] == f"{run_name}.1"


def test_step_analysis_success_then_inconclusive_pause_and_promote(admin, sim: ArgoSimulator, namespace: str) -> None:
    ok = sc.analysis_template("ok", "error-rate", "result < 0.05", interval="1s", count=1)
    ok["spec"]["args"] += [{"name": "stable-hash"}, {"name": "rollout"}, {"name": "team", "value": "payments"}]
    sc.create(admin, namespace, ok)
    sc.create(
        admin,
        namespace,
        sc.analysis_template(
            "unsure", "error-rate", "result > 0.5", interval="1s", count=1, failure_condition="result > 0.9"
        ),
    )
    steps = [{"setWeight": 50}, sc.analysis_step("ok"), sc.analysis_step("unsure"), {"setWeight": 75}, {"pause": {}}]
    stable = deploy(admin, namespace, sc.demo_rollout("web", "blue", steps=steps, replicas=2))["status"]["stableRS"]
    sc.set_image(admin, namespace, "web", "green")
    ro = sc.wait_rollout(admin, namespace, "web", step_index(2), message="inconclusive pause", timeout=20)
    canary = ro["status"]["currentPodHash"]
    assert [c["reason"] for c in ro["status"]["pauseConditions"]] == ["InconclusiveAnalysisRun"]
    assert ro["status"]["controllerPause"] is True
    assert sc.rollout_phase(ro) == ("Paused", "InconclusiveAnalysisRun")
    assert ro["status"]["canary"]["currentStepAnalysisRunStatus"]["name"] == f"web-{canary}-2-2"
    assert ro["status"]["canary"]["currentStepAnalysisRunStatus"]["status"] == "Inconclusive"
    first = admin.get(f"{sc.GROUP}/namespaces/{namespace}/analysisruns/web-{canary}-2-1")
    assert first["status"]["phase"] == "Successful"
    assert first["metadata"]["labels"]["rollout-type"] == "Step" and first["metadata"]["labels"]["step-index"] == "1"
    assert first["spec"]["args"] == [
        {"name": "canary-hash", "value": canary},
        {"name": "stable-hash", "value": stable},
        {"name": "rollout", "value": "web"},
        {"name": "team", "value": "payments"},
    ]
    assert first["status"]["metricResults"][0]["measurements"][-1]["value"] == "0"  # json.Marshal(0.0)
    second = admin.get(f"{sc.GROUP}/namespaces/{namespace}/analysisruns/web-{canary}-2-2")
    assert (
        second["status"]["message"]
        == 'Metric "error-rate" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)'
    )
    assert event(admin, namespace, "web", "RolloutPaused")["message"] == "Rollout is paused (InconclusiveAnalysisRun)"

    assert sc.promote(admin, namespace, "web") == [
        ("status", {"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": 3}})
    ]
    ro = sc.wait_rollout(admin, namespace, "web", step_index(4), message="next pause step")
    assert ro["status"]["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    assert sc.replicaset(admin, namespace, "web", canary)["spec"]["replicas"] == 2


def test_promote_skips_a_running_step_analysis_which_is_terminated(admin, sim: ArgoSimulator, namespace: str) -> None:
    sc.create(admin, namespace, sc.analysis_template("forever", "error-rate", "result < 0.05", interval="1s"))
    steps = [{"setWeight": 50}, sc.analysis_step("forever"), {"pause": {}}]
    deploy(admin, namespace, sc.demo_rollout("web", "blue", steps=steps, replicas=2))
    sc.set_image(admin, namespace, "web", "green")
    ro = sc.wait_rollout(
        admin,
        namespace,
        "web",
        lambda o: (
            ((o["status"].get("canary") or {}).get("currentStepAnalysisRunStatus") or {}).get("status") == "Running"
        ),
        message="step analysis running",
    )
    name = ro["status"]["canary"]["currentStepAnalysisRunStatus"]["name"]
    assert sc.promote(admin, namespace, "web") == [
        ("status", {"status": {"pauseConditions": None, "currentStepIndex": 2}})
    ]
    sc.wait_rollout(admin, namespace, "web", step_index(2), message="pause step after skipped analysis")
    run = _wait_run(admin, namespace, name, lambda s: s.get("phase") == "Successful", "terminated run")
    assert run["spec"]["terminate"] is True and run["status"]["message"] == "Run Terminated"
    assert "rollouts-controller" in {e["source"]["component"] for e in sc.events(admin, namespace, name=name)}


def test_abort_terminates_the_running_step_analysis(admin, sim: ArgoSimulator, namespace: str) -> None:
    sc.create(admin, namespace, sc.analysis_template("forever", "error-rate", "result < 0.05", interval="1s"))
    deploy(
        admin,
        namespace,
        sc.demo_rollout("web", "blue", steps=[{"setWeight": 50}, sc.analysis_step("forever")], replicas=2),
    )
    sc.set_image(admin, namespace, "web", "green")
    ro = sc.wait_rollout(
        admin,
        namespace,
        "web",
        lambda o: (
            ((o["status"].get("canary") or {}).get("currentStepAnalysisRunStatus") or {}).get("status") == "Running"
        ),
        message="step analysis running",
    )
    name = ro["status"]["canary"]["currentStepAnalysisRunStatus"]["name"]
    sc.abort(admin, namespace, "web")
    run = sc.wait_analysis_run(admin, namespace, name, "Successful")
    assert [r["metadata"]["name"] for r in sc.analysis_runs(admin, namespace, "web")] == [name]
    assert run["spec"]["terminate"] is True and run["status"]["message"] == "Run Terminated"
    ro = sc.wait_phase(admin, namespace, "web", "Degraded")
    # v1.9.1 keeps the run it aborted with in the status
    assert ro["status"]["canary"]["currentStepAnalysisRunStatus"]["name"] == name


# -- §3.2, §3.3, §5.1 the analysis controller: web provider, limits, terminate ------------------------------


class _Verdicts(BaseHTTPRequestHandler):
    """Serves whatever body and status code the test put on the server."""

    def do_GET(self) -> None:
        code, body = self.server.reply  # type: ignore[attr-defined]
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def verdicts() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Verdicts)
    server.reply = (200, {"ok": True, "score": 0.97})  # type: ignore[attr-defined]
    server.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run(name: str, metric: dict, args: list[dict] | None = None) -> dict:
    spec: dict = {"metrics": [metric]}
    if args:
        spec["args"] = args
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun", "metadata": {"name": name}, "spec": spec}


def _wait_run(admin, namespace: str, name: str, predicate, message: str) -> dict:
    path = f"{sc.GROUP}/namespaces/{namespace}/analysisruns/{name}"

    def check() -> dict | None:
        run = admin.get(path)
        return run if predicate(run.get("status") or {}) else None

    return admin.wait_for(check, timeout=10, interval=0.05, message=message)


def test_web_metric_runs_until_terminated(
    admin, sim: ArgoSimulator, namespace: str, verdicts: ThreadingHTTPServer
) -> None:
    url = f"http://127.0.0.1:{verdicts.server_port}/verdict?rollout={{{{args.rollout}}}}"
    metric = sc.web_analysis_template(
        "t", url, "result.ok && result.score >= 0.9", json_path="{$}", interval="1s", timeout_seconds=2
    )["spec"]["metrics"][0]
    sc.create(admin, namespace, _run("web-check", metric, [{"name": "rollout", "value": "web"}]))
    run = _wait_run(
        admin,
        namespace,
        "web-check",
        lambda s: (s.get("metricResults") or [{}])[0].get("count", 0) >= 2,
        "two measurements",
    )
    assert run["status"]["phase"] == "Running" and run["status"]["startedAt"]
    result = run["status"]["metricResults"][0]
    assert result["measurements"][0]["value"] == '{"ok":true,"score":0.97}'  # json.Marshal of the match
    assert result["consecutiveSuccess"] >= 2 and result["successful"] == result["count"]
    assert verdicts.paths[0] == "/verdict?rollout=web"  # type: ignore[attr-defined]
    sc.terminate(admin, namespace, "web-check")
    run = _wait_run(admin, namespace, "web-check", lambda s: s.get("phase") == "Successful", "terminated")
    assert run["status"]["message"] == "Run Terminated" and run["status"]["completedAt"]
    assert run["status"]["runSummary"] == {"count": 1, "successful": 1}
    event(admin, namespace, "web-check", "AnalysisRunSuccessful", "Analysis Completed. Result: Successful")


def test_web_metric_errors_and_failure_limit(
    admin, sim: ArgoSimulator, namespace: str, verdicts: ThreadingHTTPServer
) -> None:
    url = f"http://127.0.0.1:{verdicts.server_port}/"
    verdicts.reply = (503, {"ok": False})  # type: ignore[attr-defined]
    errors = sc.web_analysis_template("t", url, "result == true", consecutive_error_limit=0)["spec"]["metrics"][0]
    sc.create(admin, namespace, _run("errors", errors))
    run = _wait_run(admin, namespace, "errors", lambda s: s.get("phase") == "Error", "Error phase")
    assert run["status"]["message"] == (
        'Metric "web" assessed Error due to consecutiveErrors (1) > '
        'consecutiveErrorLimit (0): "Error Message: received non 2xx response '
        'code: 503"'
    )
    [measurement] = run["status"]["metricResults"][0]["measurements"]
    assert measurement["phase"] == "Error" and "value" not in measurement
    assert event(admin, namespace, "errors", "AnalysisRunError")["type"] == "Warning"

    verdicts.reply = (200, {"ok": False})  # type: ignore[attr-defined]
    failing = sc.web_analysis_template("t", url, "result == true", failure_limit=1, interval="100ms", metric="ok")[
        "spec"
    ]["metrics"][0]
    sc.create(admin, namespace, _run("failing", failing))
    run = _wait_run(admin, namespace, "failing", lambda s: s.get("phase") == "Failed", "Failed phase")
    result = run["status"]["metricResults"][0]
    assert (result["count"], result["failed"]) == (2, 2)
    assert [m["value"] for m in result["measurements"]] == ["false", "false"]
    assert run["status"]["message"] == 'Metric "ok" assessed Failed due to failed (2) > failureLimit (1)'


def test_web_metric_non_json_body_is_successful(admin, sim: ArgoSimulator, namespace: str) -> None:
    class Plain(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"nope")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        metric = sc.web_analysis_template(
            "t", f"http://127.0.0.1:{server.server_port}/", "result == true", interval=None
        )["spec"]["metrics"][0]
        sc.create(admin, namespace, _run("plain", metric))
        run = _wait_run(admin, namespace, "plain", lambda s: s.get("phase") == "Successful", "v1.9.1 raw body")
        assert run["status"]["metricResults"][0]["measurements"][0]["value"] == "nope"
    finally:
        server.shutdown()
        server.server_close()


# -- robustness --------------------------------------------------------------------------------------------


def test_objects_deleted_mid_flight_do_not_stop_the_simulator(admin, sim: ArgoSimulator, namespace: str) -> None:
    sc.create(admin, namespace, sc.analysis_template("forever", "error-rate", "result < 0.05", interval="1s"))
    deploy(
        admin,
        namespace,
        sc.demo_rollout("gone", "blue", steps=[{"setWeight": 50}, sc.analysis_step("forever")], replicas=2),
    )
    ro = deploy(admin, namespace, sc.demo_rollout("kept", "blue", steps=[{"setWeight": 50}], replicas=2))
    sc.set_image(admin, namespace, "gone", "green")
    sc.wait_rollout(
        admin,
        namespace,
        "gone",
        lambda o: (o["status"].get("canary") or {}).get("currentStepAnalysisRunStatus"),
        message="step analysis linked",
    )
    for run in admin.items(f"{sc.GROUP}/namespaces/{namespace}/analysisruns"):
        admin.delete(f"{sc.GROUP}/namespaces/{namespace}/analysisruns/{run['metadata']['name']}")
    admin.delete(sc.rollout_path(namespace, "gone"))
    victim = sc.pods_of(admin, namespace, ro["status"]["stableRS"])[0]["metadata"]["name"]
    admin.delete(f"/api/v1/namespaces/{namespace}/pods/{victim}")  # graceful: the kubelet finishes it
    admin.wait_for(
        lambda: (
            len(
                [
                    p
                    for p in sc.pods_of(admin, namespace, ro["status"]["stableRS"])
                    if p["metadata"]["name"] != victim and p["status"].get("phase") == "Running"
                ]
            )
            == 2
        ),
        timeout=10,
        message="replacement pod",
    )
    sc.set_image(admin, namespace, "kept", "green")
    sc.wait_rollout(
        admin,
        namespace,
        "kept",
        lambda o: (
            o["status"].get("currentPodHash") == o["status"].get("stableRS") != ro["status"]["stableRS"]
            and sc.rollout_phase(o)[0] == "Healthy"
        ),
        message="kept promoted",
    )
    assert sim.errors == []


def test_progress_deadline_abort_on_a_crash_looping_canary(admin, sim: ArgoSimulator, namespace: str) -> None:
    register_behaviour("dies-at-start", Behaviour(crash_after=0))
    rollout = sc.demo_rollout("web", "blue", steps=[{"setWeight": 50}, {"pause": {}}], replicas=2)
    rollout["spec"].update(progressDeadlineSeconds=2, progressDeadlineAbort=True)
    deploy(admin, namespace, rollout)
    sc.set_image(admin, namespace, "web", "dies-at-start")
    ro = sc.wait_phase(admin, namespace, "web", "Degraded", timeout=20)
    rs_name = f"web-{ro['status']['currentPodHash']}"
    timed_out = f'ReplicaSet "{rs_name}" has timed out progressing.'
    assert ro["status"]["message"] == f"RolloutAborted: Rollout aborted update to revision 2: {timed_out}"
    assert ro["status"]["abort"] is True
    assert event(admin, namespace, "web", "ProgressDeadlineExceeded", timed_out)["type"] == "Warning"
    event(admin, namespace, "web", "RolloutAborted", f"Rollout aborted update to revision 2: {timed_out}")


def test_completed_runs_are_garbage_collected(admin, sim: ArgoSimulator, namespace: str) -> None:
    sc.create(admin, namespace, sc.analysis_template("ok", "error-rate", "result < 0.05", interval=None))
    rollout = sc.demo_rollout(
        "web",
        "blue",
        steps=[
            {"setWeight": 50},
            sc.analysis_step("ok"),
            sc.analysis_step("ok"),
            sc.analysis_step("ok"),
            {"pause": {}},
        ],
        replicas=2,
    )
    rollout["spec"]["analysis"] = {"successfulRunHistoryLimit": 1}
    deploy(admin, namespace, rollout)
    sc.set_image(admin, namespace, "web", "green")
    ro = sc.wait_rollout(admin, namespace, "web", step_index(4), message="past three analysis steps")
    runs = admin.wait_for(
        lambda: len(r := admin.items(f"{sc.GROUP}/namespaces/{namespace}/analysisruns")) == 1 and r,
        timeout=5,
        message="history limit",
    )
    assert runs[0]["metadata"]["name"] == f"web-{ro['status']['currentPodHash']}-2-3"


# -- the kubelet side: crash loops, OOM kills, previous logs, BackOff events --------------------------------


def test_crash_and_oom_behaviours(admin, sim: ArgoSimulator, namespace: str) -> None:
    sc.create(admin, namespace, sc.demo_rollout("crashy", "crash", steps=[], replicas=1))
    sc.create(admin, namespace, sc.demo_rollout("hungry", "oom", steps=[], replicas=1))

    def crashed(name: str, reason: str):
        def check():
            for pod in admin.items(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"app={name}"):
                [cs] = pod["status"].get("containerStatuses") or [{}]
                if (
                    cs.get("restartCount", 0) >= 2
                    and "waiting" in cs.get("state", {})
                    and cs["lastState"].get("terminated", {}).get("reason") == reason
                ):
                    return pod
            return None

        return admin.wait_for(check, timeout=15, interval=0.1, message=f"{name} crash-looping")

    pod = crashed("crashy", "Error")
    [cs] = pod["status"]["containerStatuses"]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" and cs["ready"] is False
    assert cs["lastState"]["terminated"]["exitCode"] == 2
    assert next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["status"] == "False"
    previous = admin.text(f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/log", previous="true")
    assert "panic: runtime error: invalid memory address or nil pointer dereference" in previous
    backoff = event(admin, namespace, pod["metadata"]["name"], "BackOff")
    assert (backoff["type"], backoff["message"], backoff["source"]) == (
        "Warning",
        "Back-off restarting failed container",
        {"component": "kubelet", "host": NODE_NAME},
    )
    assert backoff["involvedObject"]["fieldPath"] == "spec.containers{crashy}"

    oom = crashed("hungry", "OOMKilled")
    assert oom["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 137


def test_demo_app_log_lines_served_through_pods_log(admin, sim: ArgoSimulator, namespace: str) -> None:
    register_behaviour("teapot", Behaviour(colour="brown", requests_per_second=200))
    for name, image in (
        ("panicky", "panic"),
        ("bad", "bad-red"),
        ("slow", "slow-blue"),
        ("inj", "injection"),
        ("quiet", "silent"),
        ("tea", "teapot"),
    ):
        sc.create(admin, namespace, sc.demo_rollout(name, image, steps=[], replicas=1))
    pinned = sc.demo_rollout("pinned", "panic", steps=[], replicas=1, env={"COLOR": "red"})
    sc.create(admin, namespace, pinned)

    def log_of(app: str) -> str:
        def read() -> str | None:
            pods = admin.items(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"app={app}")
            if not pods:
                return None
            try:
                text = admin.text(f"/api/v1/namespaces/{namespace}/pods/{pods[0]['metadata']['name']}/log")
            except ApiError:
                return None
            if app == "quiet":
                return "<empty>" if text == "" else None
            if app == "inj":  # its extra lines come on a random 30 % of ticks: wait for them, however slow
                return text if INJECTION_LINE in text and SECRET_LINE in text and "http: panic" in text else None
            return text if text.count("\n") > 150 else None

        return admin.wait_for(read, timeout=20, interval=0.2, message=f"{app} logs")

    panicky = log_of("panicky")
    assert re.search(
        r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d http: panic serving 10\.\d+\.\d+\.\d+:\d+: runtime error: "
        r"index out of range \[0\] with length 0$",
        panicky,
        re.M,
    )
    for line in (
        "net/http.(*conn).serve.func1()",
        "\t/usr/local/go/src/net/http/server.go:1868 +0xb0",
        "main.getColor(...)",
        "\t/go/src/app/main.go:93 +0x1e5",
    ):
        assert line in panicky.splitlines()
    assert re.search(r"^goroutine \d+ \[running\]:$", panicky, re.M)
    assert re.search(r" 200 - (orange|yellow|green|blue|purple)$", panicky, re.M)
    assert " 200 - red" not in panicky
    bad = log_of("bad").splitlines()[1:]
    share = sum(" 500 - red" in line for line in bad) / len(bad)
    assert 0.7 < share < 0.97 and all(line.endswith(" - red") for line in bad)
    assert re.search(r" 200 - blue \(2\.000000s\)$", log_of("slow"), re.M)
    injected = log_of("inj")
    assert INJECTION_LINE in injected and SECRET_LINE in injected and "http: panic serving" in injected
    assert log_of("quiet") == "<empty>"
    assert " 200 - brown" in log_of("tea")
    pinned_log = log_of("pinned").splitlines()[1:]
    assert all(" 200 - " not in line for line in pinned_log)  # COLOR=red: every request panics
    pods = {p["metadata"]["labels"]["app"]: p for p in admin.items(f"/api/v1/namespaces/{namespace}/pods")}
    assert pods["panicky"]["status"]["containerStatuses"][0]["restartCount"] == 0  # recovered panics


def test_workload_metrics_for_the_plugin_provider() -> None:
    class Sink:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def append(self, namespace, pod, container, *lines, previous=False, at=None) -> None:
            self.lines.extend(lines)

        def restart_container(self, *args) -> None:
            pass

        def forget(self, *args) -> None:
            pass

    workloads = Workloads(Sink(), requests_per_second=1000, seed=7)
    now = datetime.now(UTC)
    for pod, image in (("p", "panic"), ("b", "bad-green"), ("s", "slow-green"), ("g", "green")):
        workloads.ensure("ns", pod, {"name": "app", "image": f"argoproj/rollouts-demo:{image}"}, now)
    workloads.tick(now, 1.0)
    assert 0.1 < workloads.metric("ns", {"p"}, "panic-rate") < 0.25
    assert 0.75 < workloads.metric("ns", {"b"}, "error-rate") < 0.95
    assert workloads.metric("ns", {"g"}, "error-rate") == 0.0
    assert 2.0 <= workloads.metric("ns", {"s"}, "p95-latency") < 2.01
    assert workloads.metric("ns", {"g"}, "restarts") == 0.0
    assert workloads.metric("ns", {"nothing"}, "error-rate") is None
    with pytest.raises(ValueError):
        workloads.metric("ns", {"g"}, "cpu")


def test_condition_expressions_are_evaluated_safely() -> None:
    assert evaluate("result == true", True) is True
    assert evaluate("result < 0.05", 0.01) is True
    assert evaluate("result >= 0.9", 0.5) is False
    assert evaluate("asFloat(result) < 1", "0.5") is True
    assert evaluate("result.ok && result.score >= 0.9", {"ok": True, "score": 0.97}) is True
    assert evaluate("isNil(result) || result[0] > 2", [3]) is True
    assert evaluate("isNil(result)", None) is True
    assert evaluate("default(result, 0) < 1 and not (result == 1)", None) is True
    assert evaluate('result == "ok"', "ok") is True
    for bad in ("__import__('os')", "result < 0.05", "result.__class__", "1 +", "result ; 1"):
        with pytest.raises(ExprError):
            evaluate(bad, None)
    assert jsonpath("{$.data.ok}", {"data": {"ok": True}}) is True
    assert jsonpath("{$}", [1]) == [1]
    assert jsonpath("{.items[1].v}", {"items": [{"v": 1}, {"v": 2}]}) == 2


# -- §8.1 RBAC ---------------------------------------------------------------------------------------------


def test_simulator_runs_as_the_argo_rollouts_service_account(
    control_plane: ControlPlane, sim: ArgoSimulator, namespace: str
) -> None:
    admin = control_plane.admin
    deploy(admin, namespace, sc.demo_rollout("web", "blue", replicas=1))
    pod = sc.pods_of(admin, namespace, sc.get_rollout(admin, namespace, "web")["status"]["currentPodHash"])[0]
    with pytest.raises(ApiError) as err:  # the real ClusterRole has list/update/watch on pods, not get
        sim.client.get(f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}")
    assert err.value.status == 403
    assert "system:serviceaccount:argo-rollouts:argo-rollouts" in str(err.value)
    with pytest.raises(ApiError) as err:
        sim.client.create(f"/api/v1/namespaces/{namespace}/secrets", {"metadata": {"name": "x"}})
    assert err.value.status == 403
    # events recorded by the controller come from its own identity
    assert (
        event(admin, namespace, "web", "RolloutAddedToInformer")["message"]
        == f"Rollout resource added to informer: {namespace}/web"
    )
