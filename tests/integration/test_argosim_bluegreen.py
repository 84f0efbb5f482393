"""The simulated Argo Rollouts controller honours the blue-green contract (Services, promotion pause, pre- and
post-promotion analysis, scale-down delays, abort), on the real apiserver."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from selfheal.testing import scenarios as sc
from selfheal.testing.argosim import ArgoSimulator
from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.kubelet import TestKubelet
from tests.integration.test_argosim import cond, event, messages, reasons

SAFE_HASH = re.compile(r"^[456789bcdf]+$")
MANAGED_BY = "argo-rollouts.argoproj.io/managed-by-rollouts"


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


def deploy(admin, namespace: str, rollout: dict) -> dict:
    for service in sc.blue_green_services(rollout["metadata"]["name"]):
        sc.create(admin, namespace, service)
    sc.create(admin, namespace, rollout)
    return sc.wait_phase(admin, namespace, rollout["metadata"]["name"], "Healthy")


def selectors(admin, namespace: str, name: str = "web") -> tuple[str, str]:
    """The pod-template hash the active and the preview Service select."""
    return tuple(  # type: ignore[return-value]
        sc.service(admin, namespace, f"{name}-{which}")["spec"]["selector"].get("rollouts-pod-template-hash", "")
        for which in ("active", "preview")
    )


def paused_for_promotion(o: dict) -> bool:
    return sc.rollout_phase(o) == ("Paused", "BlueGreenPause") and (cond(o, "Paused") or {}).get("status") == "True"


def test_initial_deploy_points_both_services_at_the_first_revision(admin, sim: ArgoSimulator, namespace: str) -> None:
    ro = deploy(admin, namespace, sc.blue_green_rollout("web", "blue", replicas=3))
    status = ro["status"]
    pod_hash = status["currentPodHash"]
    assert SAFE_HASH.match(pod_hash) and status["stableRS"] == pod_hash
    assert status["blueGreen"] == {"activeSelector": pod_hash, "previewSelector": pod_hash}
    assert "currentStepIndex" not in status and "currentStepHash" not in status
    assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"], status["HPAReplicas"]) == (
        3,
        3,
        3,
        3,
    )
    # the scale subresource's selector is the active ReplicaSet's, hash included
    assert status["selector"] == f"app=web,rollouts-pod-template-hash={pod_hash}"
    for kind, state, reason in (
        ("Progressing", "True", "NewReplicaSetAvailable"),
        ("Available", "True", "AvailableReason"),
        ("Completed", "True", "RolloutCompleted"),
        ("Healthy", "True", "RolloutHealthy"),
    ):
        c = cond(ro, kind)
        assert c and (c["status"], c["reason"]) == (state, reason), c
    assert selectors(admin, namespace) == (pod_hash, pod_hash)
    for which in ("active", "preview"):
        svc = sc.service(admin, namespace, f"web-{which}")
        assert svc["metadata"]["annotations"][MANAGED_BY] == "web"
        assert svc["spec"]["selector"] == {"app": "web", "rollouts-pod-template-hash": pod_hash}
        event(
            admin,
            namespace,
            "web",
            "SwitchService",
            f"Switched selector for service 'web-{which}' from '' to '{pod_hash}'",
        )
    event(
        admin,
        namespace,
        "web",
        "RolloutCompleted",
        f"Rollout completed update to revision 1 ({pod_hash}): Initial deploy",
    )


def test_a_preview_waits_for_promotion_then_the_old_pods_go_after_the_delay(
    admin, sim: ArgoSimulator, namespace: str
) -> None:
    ro = deploy(admin, namespace, sc.blue_green_rollout("web", "blue", auto_promotion=False, scale_down_delay=2))
    blue = ro["status"]["stableRS"]
    sc.set_image(admin, namespace, "web", "green")
    ro = sc.wait_rollout(admin, namespace, "web", paused_for_promotion, message="paused for promotion")
    green = ro["status"]["currentPodHash"]
    status = ro["status"]
    assert green != blue and status["stableRS"] == blue
    assert status["blueGreen"] == {"activeSelector": blue, "previewSelector": green}
    assert status["controllerPause"] is True
    assert [c["reason"] for c in status["pauseConditions"]] == ["BlueGreenPause"]
    assert selectors(admin, namespace) == (blue, green)
    # both sides run in full while the preview waits
    assert sc.replicaset(admin, namespace, "web", green)["spec"]["replicas"] == 3
    assert sc.replicaset(admin, namespace, "web", blue)["spec"]["replicas"] == 3
    event(admin, namespace, "web", "RolloutPaused", "Rollout is paused (BlueGreenPause)")
    event(
        admin,
        namespace,
        "web",
        "SwitchService",
        f"Switched selector for service 'web-preview' from '{blue}' to '{green}'",
    )

    # `kubectl argo rollouts promote` on a paused blue-green: the pause conditions go, nothing else
    assert sc.promote(admin, namespace, "web") == [("status", {"status": {"pauseConditions": None}})]
    ro = sc.wait_rollout(
        admin,
        namespace,
        "web",
        lambda o: o["status"].get("stableRS") == green and sc.rollout_phase(o)[0] == "Healthy",
        message="promoted",
    )
    assert ro["status"]["blueGreen"] == {"activeSelector": green, "previewSelector": green}
    assert "pauseConditions" not in ro["status"] and "controllerPause" not in ro["status"]
    assert selectors(admin, namespace) == (green, green)
    event(
        admin,
        namespace,
        "web",
        "SwitchService",
        f"Switched selector for service 'web-active' from '{blue}' to '{green}'",
    )
    event(
        admin,
        namespace,
        "web",
        "RolloutCompleted",
        f"Rollout completed update to revision 2 ({green}): Completed blue-green update",
    )
    # the old ReplicaSet keeps its pods for scaleDownDelaySeconds, marked with its deadline, then goes
    old = admin.wait_for(
        lambda: (
            (rs := sc.replicaset(admin, namespace, "web", blue))["metadata"]["annotations"].get("scale-down-deadline")
            and rs
        ),
        timeout=5,
        message="a scale-down deadline",
    )
    assert old["spec"]["replicas"] == 3
    admin.wait_for(
        lambda: sc.replicaset(admin, namespace, "web", blue)["spec"]["replicas"] == 0, timeout=15, message="scaled down"
    )
    event(admin, namespace, "web", "ScalingReplicaSet", f"Scaled down ReplicaSet web-{blue} (revision 1) from 3 to 0")


def test_pre_promotion_analysis_gates_the_switch(admin, sim: ArgoSimulator, namespace: str) -> None:
    sc.create(admin, namespace, sc.analysis_template("error-rate", "error-rate", "result < 0.05", interval=None))
    ro = deploy(admin, namespace, sc.blue_green_rollout("web", "blue", pre_promotion="error-rate"))
    blue, uid = ro["status"]["stableRS"], ro["metadata"]["uid"]
    assert admin.items(f"{sc.GROUP}/namespaces/{namespace}/analysisruns") == []  # none on the initial deploy
    sc.set_image(admin, namespace, "web", "green")
    ro = sc.wait_rollout(
        admin, namespace, "web", lambda o: o["status"].get("stableRS") not in (None, blue), message="promoted"
    )
    green = ro["status"]["stableRS"]
    name = f"web-{green}-2-pre"
    run = admin.get(f"{sc.GROUP}/namespaces/{namespace}/analysisruns/{name}")
    assert run["metadata"]["labels"] == {
        "rollouts-pod-template-hash": green,
        "rollout-type": "PrePromotion",
        "app": "web",
    }
    assert run["metadata"]["ownerReferences"][0]["uid"] == uid
    assert run["status"]["phase"] == "Successful"
    assert {a["name"]: a["value"] for a in run["spec"]["args"]} == {"canary-hash": green}
    assert ro["status"]["blueGreen"]["prePromotionAnalysisRunStatus"] == {"name": name, "status": "Successful"}
    successful = messages(admin, namespace, "web", "AnalysisRunSuccessful")
    assert any(m.startswith(f"PrePromotion Analysis Run '{name}' Status New: 'Successful'") for m in successful)
    assert selectors(admin, namespace) == (green, green)


def test_a_failed_pre_promotion_analysis_aborts_and_the_preview_is_scaled_down(
    admin, sim: ArgoSimulator, namespace: str
) -> None:
    sc.create(admin, namespace, sc.analysis_template("error-rate", "error-rate", "result < 0.05", interval=None))
    rollout = sc.blue_green_rollout("web", "blue", pre_promotion="error-rate", abort_scale_down_delay=1)
    blue = deploy(admin, namespace, rollout)["status"]["stableRS"]
    sc.set_image(admin, namespace, "web", "bad-green")
    ro = sc.wait_phase(admin, namespace, "web", "Degraded", timeout=30)
    green = ro["status"]["currentPodHash"]
    name = f"web-{green}-2-pre"
    run = admin.get(f"{sc.GROUP}/namespaces/{namespace}/analysisruns/{name}")
    message = 'Metric "error-rate" assessed Failed due to failed (1) > failureLimit (0)'
    assert (run["status"]["phase"], run["status"]["message"]) == ("Failed", message)
    abort_message = (
        f"Rollout aborted update to revision 2: Blue/green pre-promotion analysis phase error/failed: {message}"
    )
    status = ro["status"]
    assert status["message"] == f"RolloutAborted: {abort_message}"
    assert status["abort"] is True and status["abortedAt"] and status["stableRS"] == blue
    assert status["blueGreen"]["activeSelector"] == blue  # production never saw the new pods
    assert status["blueGreen"]["prePromotionAnalysisRunStatus"] == {
        "name": name,
        "status": "Failed",
        "message": message,
    }
    assert event(admin, namespace, "web", "RolloutAborted", abort_message)["type"] == "Warning"
    assert event(admin, namespace, "web", "AnalysisRunFailed")["type"] == "Warning"
    # the preview keeps its pods abortScaleDownDelaySeconds, then is scaled down; the stable is untouched
    admin.wait_for(
        lambda: sc.replicaset(admin, namespace, "web", green)["spec"]["replicas"] == 0, timeout=15, message="scaled"
    )
    assert sc.replicaset(admin, namespace, "web", blue)["spec"]["replicas"] == 3
    assert selectors(admin, namespace) == (blue, green)


def test_the_new_pods_become_stable_once_the_post_promotion_analysis_succeeds(
    admin, sim: ArgoSimulator, namespace: str
) -> None:
    sc.create(
        admin, namespace, sc.analysis_template("error-rate", "error-rate", "result < 0.05", interval="1s", count=3)
    )
    blue = deploy(admin, namespace, sc.blue_green_rollout("web", "blue", post_promotion="error-rate"))["status"][
        "stableRS"
    ]
    sc.set_image(admin, namespace, "web", "green")
    waiting = sc.wait_rollout(
        admin,
        namespace,
        "web",
        lambda o: sc.rollout_phase(o) == ("Progressing", "waiting for analysis to complete"),
        message="post-promotion analysis running",
    )
    green = waiting["status"]["currentPodHash"]
    assert waiting["status"]["blueGreen"]["activeSelector"] == green and waiting["status"]["stableRS"] == blue
    assert (cond(waiting, "Healthy") or {}).get("status") == "True"  # serving from the new pods already
    ro = sc.wait_rollout(
        admin,
        namespace,
        "web",
        lambda o: o["status"].get("stableRS") == green and sc.rollout_phase(o)[0] == "Healthy",
        message="stable after the analysis",
    )
    name = f"web-{green}-2-post"
    assert ro["status"]["blueGreen"]["postPromotionAnalysisRunStatus"] == {"name": name, "status": "Successful"}
    run = admin.get(f"{sc.GROUP}/namespaces/{namespace}/analysisruns/{name}")
    assert run["metadata"]["labels"]["rollout-type"] == "PostPromotion"
    assert run["status"]["metricResults"][0]["count"] == 3


def test_a_failed_post_promotion_analysis_switches_the_active_service_back(
    admin, sim: ArgoSimulator, namespace: str
) -> None:
    sc.create(
        admin, namespace, sc.analysis_template("error-rate", "error-rate", "result < 0.05", interval="1s", count=2)
    )
    blue = deploy(admin, namespace, sc.blue_green_rollout("web", "blue", post_promotion="error-rate"))["status"][
        "stableRS"
    ]
    sc.set_image(admin, namespace, "web", "bad-green")
    ro = sc.wait_phase(admin, namespace, "web", "Degraded", timeout=30)
    green = ro["status"]["currentPodHash"]
    name = f"web-{green}-2-post"
    assert ro["status"]["message"].startswith(
        "RolloutAborted: Rollout aborted update to revision 2: Blue/green post-promotion analysis phase error/failed"
    )
    assert ro["status"]["blueGreen"]["postPromotionAnalysisRunStatus"]["name"] == name
    ro = sc.wait_rollout(
        admin,
        namespace,
        "web",
        lambda o: (o["status"].get("blueGreen") or {}).get("activeSelector") == blue,
        message="active back on the stable pods",
    )
    assert ro["status"]["stableRS"] == blue
    assert selectors(admin, namespace)[0] == blue
    event(
        admin,
        namespace,
        "web",
        "SwitchService",
        f"Switched selector for service 'web-active' from '{green}' to '{blue}'",
    )
    event(
        admin,
        namespace,
        "web",
        "SwitchService",
        f"Switched selector for service 'web-active' from '{blue}' to '{green}'",
    )
    assert sc.replicaset(admin, namespace, "web", blue)["spec"]["replicas"] == 3


def test_a_human_abort_then_a_retry_runs_a_new_pre_promotion_analysis(
    admin, sim: ArgoSimulator, namespace: str
) -> None:
    sc.create(admin, namespace, sc.analysis_template("error-rate", "error-rate", "result < 0.05", interval=None))
    rollout = sc.blue_green_rollout("web", "blue", auto_promotion=False, pre_promotion="error-rate")
    blue = deploy(admin, namespace, rollout)["status"]["stableRS"]
    sc.set_image(admin, namespace, "web", "green")
    ro = sc.wait_rollout(admin, namespace, "web", paused_for_promotion, message="paused for promotion")
    green = ro["status"]["currentPodHash"]
    sc.abort(admin, namespace, "web")
    ro = sc.wait_phase(admin, namespace, "web", "Degraded")
    assert ro["status"]["message"] == "RolloutAborted: Rollout aborted update to revision 2"
    assert "pauseConditions" not in ro["status"] and "controllerPause" not in ro["status"]
    assert ro["status"]["blueGreen"]["activeSelector"] == blue
    sc.retry(admin, namespace, "web")
    ro = sc.wait_rollout(admin, namespace, "web", paused_for_promotion, message="paused again")
    assert ro["status"]["blueGreen"]["prePromotionAnalysisRunStatus"]["name"] == f"web-{green}-2-pre.1"
    assert "abortedAt" not in ro["status"]
    assert reasons(admin, namespace, "web").count("RolloutPaused") == 2


def test_promote_full_skips_the_pause(admin, sim: ArgoSimulator, namespace: str) -> None:
    ro = deploy(admin, namespace, sc.blue_green_rollout("web", "blue", auto_promotion=False))
    blue = ro["status"]["stableRS"]
    sc.set_image(admin, namespace, "web", "green")
    sc.wait_rollout(admin, namespace, "web", paused_for_promotion, message="paused for promotion")
    assert sc.promote(admin, namespace, "web", full=True) == [("status", {"status": {"promoteFull": True}})]
    ro = sc.wait_rollout(
        admin,
        namespace,
        "web",
        lambda o: o["status"].get("stableRS") not in (None, blue) and sc.rollout_phase(o)[0] == "Healthy",
        message="fully promoted",
    )
    assert "promoteFull" not in ro["status"]
    event(
        admin,
        namespace,
        "web",
        "RolloutCompleted",
        f"Rollout completed update to revision 2 ({ro['status']['stableRS']}): Full promotion requested",
    )


def test_a_missing_active_service_is_an_invalid_spec(admin, sim: ArgoSimulator, namespace: str) -> None:
    sc.create(admin, namespace, sc.blue_green_rollout("web", "blue", active="nowhere", preview=""))
    ro = sc.wait_phase(admin, namespace, "web", "Degraded")
    message = (
        'The Rollout "web" is invalid: spec.strategy.blueGreen.activeService: Invalid value: "nowhere": '
        'service "nowhere" not found'
    )
    assert ro["status"]["message"] == f"InvalidSpec: {message}"
    assert (cond(ro, "InvalidSpec") or {}).get("message") == message
    assert admin.items(f"/apis/apps/v1/namespaces/{namespace}/replicasets") == []
