"""The Kubernetes adapter and evidence gathering against the real apiserver, real RBAC and the test kubelet."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes_asyncio import client, config

from selfheal.adapters.kube import MERGE_PATCH, KubeAdapter, connect, translate
from selfheal.domain.argo import ABORT_STATUS_PATCH, PAUSE_SPEC_PATCH, Rollout, promote_patches
from selfheal.domain.evidence import Side
from selfheal.domain.policy import AnalysisSpec, LogBounds
from selfheal.errors import ConfigError, Conflict, PermanentError, RateLimitedError, TransientError
from selfheal.services import tickets
from selfheal.services.gather import gather_evidence
from selfheal.services.judge import prepare
from selfheal.testing.controlplane import ControlPlane, free_port
from selfheal.testing.kubelet import NODE_NAME, TestKubelet

ARGO = "/apis/argoproj.io/v1alpha1/namespaces/{ns}"
NEW, OLD = "new5c4b", "old7d8f"

# Contract §8.3, verbatim (the Kopf framework rules included).
OPERATOR_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["rollouts/status"], "verbs": ["get", "patch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["analysisruns"], "verbs": ["get", "list", "watch", "patch"]},
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["analysistemplates", "clusteranalysistemplates"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"], "verbs": ["list", "watch", "patch", "get"]},
    {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": ["list", "watch", "patch", "get"]},
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]


@contextlib.asynccontextmanager
async def adapter(kubeconfig: str) -> AsyncIterator[KubeAdapter]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        yield KubeAdapter(api, request_timeout=20)


async def test_connect_with_a_kubeconfig(control_plane: ControlPlane, namespace: str) -> None:
    api = await connect(control_plane.kubeconfig)
    try:
        assert await KubeAdapter(api).get_rollout(namespace, "none") is None
    finally:
        await api.close()
    with pytest.raises(ConfigError, match="kubeconfig"):
        await connect("/nonexistent/kubeconfig")


@pytest.fixture
async def kube(control_plane: ControlPlane) -> AsyncIterator[KubeAdapter]:
    async with adapter(control_plane.kubeconfig) as k:
        yield k


# --- objects, created the way the Argo controller would have left them ---------------------------------


def create_rollout(cp: ControlPlane, ns: str, name: str = "web", status: dict[str, Any] | None = None) -> dict:
    admin = cp.admin
    base = ARGO.format(ns=ns) + "/rollouts"
    ro = admin.create(
        base,
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": name, "annotations": {"rollout.argoproj.io/revision": "2"}},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [{"name": "app", "image": "demo:v2"}, {"name": "proxy", "image": "envoy:1"}]
                    },
                },
                "strategy": {"canary": {"steps": [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}]}},
            },
        },
    )
    full_status = {
        "observedGeneration": str(ro["metadata"]["generation"]),
        "currentPodHash": NEW,
        "stableRS": OLD,
        "currentStepIndex": 1,
        "controllerPause": True,
        "phase": "Paused",
        "message": "CanaryPauseStep",
        "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}],
        **(status or {}),
    }
    return admin.patch(f"{base}/{name}/status", {"status": full_status})


def create_replicaset(cp: ControlPlane, ns: str, ro: dict, pod_hash: str) -> dict:
    name = ro["metadata"]["name"]
    labels = {"app": name, "rollouts-pod-template-hash": pod_hash}
    return cp.admin.create(
        f"/apis/apps/v1/namespaces/{ns}/replicasets",
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name}-{pod_hash}",
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": "argoproj.io/v1alpha1",
                        "kind": "Rollout",
                        "name": name,
                        "uid": ro["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "demo"}]},
                },
            },
        },
    )


def create_pod(
    cp: ControlPlane,
    ns: str,
    name: str,
    pod_hash: str,
    *,
    app: str = "web",
    restarts: int = 0,
    ready: bool = True,
    waiting: str = "",
    last_terminated: str = "",
) -> dict:
    admin = cp.admin
    admin.create(
        f"/api/v1/namespaces/{ns}/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": app, "rollouts-pod-template-hash": pod_hash}},
            "spec": {
                "nodeName": NODE_NAME,
                "containers": [{"name": "app", "image": "demo:v2"}, {"name": "proxy", "image": "envoy:1"}],
            },
        },
    )
    app_status: dict[str, Any] = {
        "name": "app",
        "image": "demo:v2",
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "state": {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
    }
    if last_terminated:
        app_status["lastState"] = {
            "terminated": {
                "reason": last_terminated,
                "exitCode": 137,
                "startedAt": "2026-01-01T00:00:00Z",
                "finishedAt": "2026-01-01T00:01:00Z",
            }
        }
    proxy_status = {
        "name": "proxy",
        "image": "envoy:1",
        "imageID": "",
        "ready": True,
        "restartCount": 0,
        "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
    }
    return admin.patch(
        f"/api/v1/namespaces/{ns}/pods/{name}/status",
        {
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                "containerStatuses": [app_status, proxy_status],
            }
        },
    )


def create_event(
    cp: ControlPlane, ns: str, obj_name: str, kind: str, reason: str, message: str, type_: str = "Warning"
) -> None:
    cp.admin.create(
        f"/api/v1/namespaces/{ns}/events",
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{obj_name}.{reason.lower()}"},
            "involvedObject": {"kind": kind, "name": obj_name, "namespace": ns},
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 3,
            "source": {"component": "kubelet"},
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:01:00Z",
        },
    )


def create_failed_run(cp: ControlPlane, ns: str, ro: dict, pod_hash: str, name: str) -> dict:
    base = ARGO.format(ns=ns) + "/analysisruns"
    cp.admin.create(
        base,
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {
                "name": name,
                "labels": {
                    "rollouts-pod-template-hash": pod_hash,
                    "rollout-type": "Background",
                    "app": ro["metadata"]["name"],
                },
                "ownerReferences": [
                    {
                        "apiVersion": "argoproj.io/v1alpha1",
                        "kind": "Rollout",
                        "name": ro["metadata"]["name"],
                        "uid": ro["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {"metrics": [{"name": "error-rate", "provider": {"web": {"url": "http://x"}}}]},
        },
    )
    return cp.admin.patch(
        f"{base}/{name}",
        {
            "status": {
                "phase": "Failed",
                "message": 'Metric "error-rate" assessed Failed due to failed (2) > failureLimit (1)',
                "metricResults": [
                    {
                        "name": "error-rate",
                        "phase": "Failed",
                        "count": 2,
                        "failed": 2,
                        "measurements": [{"phase": "Failed", "value": "0.31"}, {"phase": "Failed", "value": "0.42"}],
                    }
                ],
            }
        },
    )


def scenario(cp: ControlPlane, kubelet: TestKubelet, ns: str) -> dict:
    """A canary with four pods (two in trouble) next to three stable pods, with logs, events and a failed run."""
    ro = create_rollout(cp, ns)
    create_replicaset(cp, ns, ro, NEW)
    create_replicaset(cp, ns, ro, OLD)
    create_pod(cp, ns, "web-new-a", NEW)
    create_pod(
        cp, ns, "web-new-b", NEW, restarts=4, ready=False, waiting="CrashLoopBackOff", last_terminated="OOMKilled"
    )
    create_pod(cp, ns, "web-new-c", NEW)
    create_pod(cp, ns, "web-new-d", NEW, restarts=1, last_terminated="Error")
    for stable in ("web-old-a", "web-old-b", "web-old-c"):
        create_pod(cp, ns, stable, OLD)
        kubelet.append(ns, stable, "app", *[f"GET /cart 200 {i}ms" for i in range(50)])
        kubelet.append(ns, stable, "proxy", "proxy ready")
    create_pod(cp, ns, "other-app", NEW, app="other")
    for pod in ("web-new-a", "web-new-b", "web-new-c", "web-new-d"):
        kubelet.append(ns, pod, "app", *[f"GET /cart 200 {i}ms" for i in range(20)])
        kubelet.append(ns, pod, "proxy", "proxy ready")
    kubelet.append(ns, "web-new-b", "app", "panic: assignment to entry in nil map")
    kubelet.restart_container(ns, "web-new-b", "app")
    kubelet.append(ns, "web-new-b", "app", "starting")
    kubelet.restart_container(ns, "web-new-d", "app")
    kubelet.append(ns, "web-new-d", "app", "starting again")
    create_event(cp, ns, "web-new-b", "Pod", "BackOff", "Back-off restarting failed container app")
    create_event(cp, ns, "web-new-a", "Pod", "Pulled", "Container image pulled", "Normal")
    create_event(cp, ns, "web", "Rollout", "RolloutPaused", "Rollout is paused (CanaryPauseStep)", "Normal")
    create_event(cp, ns, "other-app", "Pod", "BackOff", "not ours")
    create_failed_run(cp, ns, ro, NEW, f"web-{NEW}-2")
    create_failed_run(cp, ns, ro, OLD, f"web-{OLD}-1")
    return ro


# --- logs ------------------------------------------------------------------------------------------------


async def test_log_bounds_are_honoured(
    control_plane: ControlPlane, kubelet: TestKubelet, namespace: str, kube: KubeAdapter
) -> None:
    create_pod(control_plane, namespace, "web-1", NEW)
    old = datetime.now(UTC) - timedelta(hours=2)
    kubelet.append(namespace, "web-1", "app", "ancient line", at=old)
    kubelet.append(namespace, "web-1", "app", *[f"line {i:03d}" for i in range(100)])

    tail = await kube.read_log(namespace, "web-1", "app", tail_lines=3)
    assert tail == "line 097\nline 098\nline 099\n"
    limited = await kube.read_log(namespace, "web-1", "app", limit_bytes=20)
    assert limited == "ancient line\nline 00"
    both = await kube.read_log(namespace, "web-1", "app", tail_lines=5, limit_bytes=18)
    assert both == "line 095\nline 096\n"
    recent = await kube.read_log(namespace, "web-1", "app", since_seconds=600)
    assert "ancient line" not in recent and recent.count("\n") == 100
    # no previous container yet: the kubelet's 400 is "no log", not an error
    assert await kube.read_log(namespace, "web-1", "app", previous=True) == ""

    kubelet.restart_container(namespace, "web-1", "app")
    kubelet.append(namespace, "web-1", "app", '{"level":"info","msg":"started"}')
    assert await kube.read_log(namespace, "web-1", "app", previous=True, tail_lines=1) == "line 099\n"
    # a JSON-looking log stays text
    assert await kube.read_log(namespace, "web-1", "app") == '{"level":"info","msg":"started"}\n'
    # a pod that does not exist has no log
    assert await kube.read_log(namespace, "gone", "app", tail_lines=1) == ""


# --- gathering --------------------------------------------------------------------------------------------


async def test_gather_prefers_troubled_pods_and_stays_bounded(
    control_plane: ControlPlane, kubelet: TestKubelet, namespace: str, kube: KubeAdapter
) -> None:
    scenario(control_plane, kubelet, namespace)
    ro = await kube.get_rollout(namespace, "web")
    assert ro is not None and ro.status.current_pod_hash == NEW
    before = len(kubelet.requests)
    bounds = LogBounds(pods_per_side=2, tail_lines=10, limit_bytes=4096)
    now = datetime.now(UTC)

    evidence = await gather_evidence(kube, ro, bounds, trigger="indefinite-pause", now=now)

    canary = {p.name: p for p in evidence.side(Side.CANARY)}
    stable = {p.name: p for p in evidence.side(Side.STABLE)}
    assert set(canary) == {"web-new-b", "web-new-d"}  # the restarted/unready ones
    assert len(stable) == 2 and set(stable) <= {"web-old-a", "web-old-b", "web-old-c"}
    assert (evidence.canary_hash, evidence.stable_hash, evidence.revision) == (NEW, OLD, "2")
    assert evidence.step == "step 2/3 (pause)"
    assert evidence.images == ["demo:v2", "envoy:1"]
    assert evidence.trigger == "indefinite-pause"
    assert evidence.canary_since is not None and evidence.canary_since <= now + timedelta(seconds=1)

    b = canary["web-new-b"]
    app = next(c for c in b.containers if c.name == "app")
    assert (app.restart_count, app.waiting_reason, app.last_terminated_reason, app.last_exit_code) == (
        4,
        "CrashLoopBackOff",
        "OOMKilled",
        137,
    )
    assert not b.ready and b.restarts == 4
    logs = {(log.container, log.previous): log for log in b.logs}
    assert set(logs) == {("app", False), ("app", True), ("proxy", False)}  # previous only where restarted
    assert logs[("app", True)].text.endswith("panic: assignment to entry in nil map\n")
    assert logs[("app", True)].truncated  # 21 lines, tail of 10
    assert logs[("app", True)].text.count("\n") == 10
    assert logs[("app", False)].text == "starting\n"
    assert all(len(log.logs) == 2 for log in stable.values())

    # bounded: pods_per_side x containers x 2 per side at most, each with the bounds and sinceSeconds
    requests = [r for r in kubelet.requests[before:] if f"/{namespace}/" in r]
    assert len(requests) <= 2 * 2 * 2 * 2
    assert len(requests) == sum(len(p.logs) for p in evidence.pods) == 2 * 3 + 2 * 2
    assert all("tailLines=10" in r and "limitBytes=4096" in r and "sinceSeconds=" in r for r in requests)

    events = {(e.object_name, e.reason) for e in evidence.events}
    assert ("web-new-b", "BackOff") in events and ("web", "RolloutPaused") in events
    assert not any(name == "other-app" for name, _ in events)
    backoff = next(e for e in evidence.events if e.reason == "BackOff")
    assert (backoff.type, backoff.count) == ("Warning", 3)

    assert [(m.analysis_run, m.name, m.values) for m in evidence.failed_metrics] == [
        (f"web-{NEW}-2", "error-rate", ["0.31", "0.42"])
    ]
    assert "failureLimit" in evidence.analysis_message


async def test_gather_without_since_and_previous(
    control_plane: ControlPlane, kubelet: TestKubelet, namespace: str, kube: KubeAdapter
) -> None:
    scenario(control_plane, kubelet, namespace)
    ro = await kube.get_rollout(namespace, "web")
    before = len(kubelet.requests)
    bounds = LogBounds(pods_per_side=1, since_canary_start=False, previous_container=False, containers=["app"])
    evidence = await gather_evidence(kube, ro, bounds, trigger="log-watch", now=datetime.now(UTC))
    assert [p.name for p in evidence.side(Side.CANARY)] == ["web-new-b"]  # most restarts first
    assert all([(log.container, log.previous) for log in p.logs] == [("app", False)] for p in evidence.pods)
    requests = [r for r in kubelet.requests[before:] if f"/{namespace}/" in r]
    assert len(requests) == 2 and not any("sinceSeconds" in r or "previous=true" in r for r in requests)


async def test_analysis_runs_are_found_by_controller_owner(
    control_plane: ControlPlane, kubelet: TestKubelet, namespace: str, kube: KubeAdapter
) -> None:
    ro = scenario(control_plane, kubelet, namespace)
    other = create_rollout(control_plane, namespace, "api")
    create_failed_run(control_plane, namespace, other, NEW, "api-run")
    runs = await kube.list_analysis_runs(namespace, ro["metadata"]["uid"])
    assert sorted(r.name for r in runs) == sorted([f"web-{NEW}-2", f"web-{OLD}-1"])
    run = await kube.get_analysis_run(namespace, f"web-{NEW}-2")
    assert run is not None and run.phase == "Failed" and run.owner.uid == ro["metadata"]["uid"]
    assert await kube.get_analysis_run(namespace, "nope") is None
    assert await kube.get_rollout(namespace, "nope") is None
    assert await kube.get_replicaset(namespace, "nope") is None
    rs = await kube.get_replicaset(namespace, f"web-{NEW}")
    assert rs["metadata"]["labels"]["rollouts-pod-template-hash"] == NEW


# --- patches ---------------------------------------------------------------------------------------------


async def test_abort_patch_lands_on_the_status_subresource(
    control_plane: ControlPlane, namespace: str, kube: KubeAdapter
) -> None:
    create_rollout(control_plane, namespace, "web")
    create_rollout(control_plane, namespace, "api")
    # the same body sent to the main resource is dropped by the apiserver
    await kube.patch_rollout(namespace, "api", ABORT_STATUS_PATCH)
    api = await kube.get_rollout(namespace, "api")
    assert api is not None and api.status.abort is False

    updated = await kube.patch_rollout_status(namespace, "web", ABORT_STATUS_PATCH)
    assert updated["status"]["abort"] is True
    web = await kube.get_rollout(namespace, "web")
    assert web is not None and web.status.abort is True
    assert web.status.current_pod_hash == NEW  # a merge patch: the rest of status untouched


async def test_promote_patches_are_merge_patches(
    control_plane: ControlPlane, namespace: str, kube: KubeAdapter
) -> None:
    """``null`` deletes a field only under JSON merge patch; a CRD refuses strategic merge outright."""
    # Left to itself the generated client would label a dict body as a JSON Patch (its first choice).
    assert (
        kube.api_client.select_header_content_type(
            ["application/json-patch+json", MERGE_PATCH, "application/apply-patch+yaml"], "PATCH", {}
        )
        != MERGE_PATCH
    )
    create_rollout(control_plane, namespace, "web")
    await kube.patch_rollout(namespace, "web", PAUSE_SPEC_PATCH)
    ro = await kube.get_rollout(namespace, "web")
    assert ro.paused and ro.status.pause_conditions
    status_patch, spec_patch = promote_patches(ro)
    assert status_patch == {"status": {"pauseConditions": None}}
    await kube.patch_rollout_status(namespace, "web", status_patch)
    await kube.patch_rollout(namespace, "web", spec_patch)
    ro = await kube.get_rollout(namespace, "web")
    assert ro.status.pause_conditions == [] and ro.status.controller_pause and not ro.paused
    assert ro.status.current_step_index == 1

    await kube.patch_rollout_status(namespace, "web", {"status": {"pauseConditions": None, "currentStepIndex": 2}})
    assert (await kube.get_rollout(namespace, "web")).status.current_step_index == 2


async def test_a_patch_with_a_stale_resource_version_is_refused(
    control_plane: ControlPlane, namespace: str, kube: KubeAdapter
) -> None:
    """The resourceVersion in a merge patch body is a precondition: a change in between gives 409, on the
    status subresource and on the main resource alike, and nothing of the patch lands."""
    create_rollout(control_plane, namespace, "web")
    judged = await kube.get_rollout(namespace, "web")
    assert judged is not None and judged.resource_version
    # a human promotes meanwhile
    await kube.patch_rollout_status(namespace, "web", {"status": {"pauseConditions": None}})
    with pytest.raises(Conflict, match="409"):
        await kube.patch_rollout_status(
            namespace, "web", {"status": {"currentStepIndex": 3}}, resource_version=judged.resource_version
        )
    with pytest.raises(Conflict, match="409"):
        await kube.patch_rollout(namespace, "web", PAUSE_SPEC_PATCH, resource_version=judged.resource_version)
    after = await kube.get_rollout(namespace, "web")
    assert after is not None
    assert (after.status.current_step_index, after.status.pause_conditions, after.paused) == (1, [], False)

    # with the version just read, the patch applies; its answer carries the next version
    updated = await kube.patch_rollout_status(
        namespace, "web", {"status": {"currentStepIndex": 2}}, resource_version=after.resource_version
    )
    assert updated["status"]["currentStepIndex"] == 2
    assert updated["metadata"]["resourceVersion"] != after.resource_version
    await kube.patch_rollout(
        namespace, "web", PAUSE_SPEC_PATCH, resource_version=updated["metadata"]["resourceVersion"]
    )
    assert (await kube.get_rollout(namespace, "web")).paused


async def test_patch_errors_are_translated(control_plane: ControlPlane, namespace: str, kube: KubeAdapter) -> None:
    create_rollout(control_plane, namespace, "web")
    with pytest.raises(PermanentError, match="rollouts/status"):
        await kube.patch_rollout_status(namespace, "web", {"status": {"observedGeneration": 5}})
    with pytest.raises(PermanentError, match="404"):
        await kube.patch_rollout_status(namespace, "missing", ABORT_STATUS_PATCH)


@pytest.mark.parametrize(
    ("status", "headers", "error", "delay"),
    [
        (429, {"Retry-After": "7"}, RateLimitedError, 7.0),
        (503, {}, TransientError, 10.0),
        (504, {"Retry-After": "2"}, TransientError, 2.0),
        (500, {}, TransientError, 10.0),
    ],
)
def test_retryable_statuses_carry_a_delay(status: int, headers: dict[str, str], error: type, delay: float) -> None:
    translated = translate(status, "busy", verb="get", resource="pods", target="ns/p", headers=headers)
    assert type(translated) is error and translated.delay == delay
    assert "get pods ns/p" in str(translated)


def test_other_statuses_are_permanent() -> None:
    assert type(translate(401, "x", verb="get", resource="pods", target="")) is PermanentError
    assert type(translate(422, "x", verb="patch", resource="rollouts/status", target="")) is PermanentError
    forbidden = translate(403, "nope", verb="list", resource="events", target="in namespace a")
    assert type(forbidden) is ConfigError and "list" in str(forbidden) and "events" in str(forbidden)


async def test_unreachable_apiserver_is_transient(control_plane: ControlPlane) -> None:
    configuration = client.Configuration()
    configuration.host = f"https://127.0.0.1:{free_port()}"
    configuration.verify_ssl = False
    async with client.ApiClient(configuration) as api:
        with pytest.raises(TransientError) as err:
            await KubeAdapter(api, request_timeout=5).get_rollout("default", "web")
    assert err.value.delay > 0


# --- events ---------------------------------------------------------------------------------------------


async def test_create_event_on_a_rollout(control_plane: ControlPlane, namespace: str, kube: KubeAdapter) -> None:
    ro = create_rollout(control_plane, namespace, "web")
    first = await kube.create_event(ro, reason="CanaryAborted", message="aborted: panic in canary", type="Warning")
    again = await kube.create_event(ro, reason="CanaryAborted", message="aborted: panic in canary", type="Warning")
    assert first["metadata"]["name"] == again["metadata"]["name"]
    assert first["metadata"]["name"].startswith("web.")
    events = control_plane.admin.items(
        f"/api/v1/namespaces/{namespace}/events", fieldSelector="involvedObject.name=web"
    )
    assert len(events) == 1
    event = events[0]
    assert (event["source"]["component"], event["reason"], event["type"]) == ("selfheal", "CanaryAborted", "Warning")
    assert event["involvedObject"]["uid"] == ro["metadata"]["uid"]
    assert event["involvedObject"]["kind"] == "Rollout"
    found = await kube.list_events(namespace, {"web"})
    assert [(e.reason, e.message) for e in found] == [("CanaryAborted", "aborted: panic in canary")]


# --- RBAC ---------------------------------------------------------------------------------------------


async def test_adapter_works_with_the_recommended_rbac(
    control_plane: ControlPlane, kubelet: TestKubelet, namespace: str
) -> None:
    ro_obj = scenario(control_plane, kubelet, namespace)
    kubeconfig = control_plane.service_account(namespace, "selfheal", rules=OPERATOR_RULES)
    async with adapter(kubeconfig) as kube:
        ro = await kube.get_rollout(namespace, "web")
        assert ro is not None
        assert len(await kube.list_pods(namespace, ro.selector, NEW)) == 4
        assert await kube.read_log(namespace, "web-new-a", "app", tail_lines=1) == "GET /cart 200 19ms\n"
        assert await kube.get_replicaset(namespace, f"web-{NEW}") is not None
        assert len(await kube.list_analysis_runs(namespace, ro.uid)) == 2
        assert await kube.get_analysis_run(namespace, f"web-{NEW}-2") is not None
        await kube.create_event(ro_obj, reason="SelfHealTest", message="hello")
        evidence = await gather_evidence(kube, ro, LogBounds(pods_per_side=2), trigger="t", now=datetime.now(UTC))
        assert len(evidence.pods) == 4 and evidence.failed_metrics
        # §8.3 grants no list on events: gathering goes on without them, the direct call says what is missing
        assert evidence.events == []
        with pytest.raises(ConfigError, match="list events"):
            await kube.list_events(namespace, {"web"})
        await kube.patch_rollout(namespace, "web", PAUSE_SPEC_PATCH)
        await kube.patch_rollout_status(namespace, "web", ABORT_STATUS_PATCH)
        ro = await kube.get_rollout(namespace, "web")
        assert ro.status.abort and ro.paused


async def test_missing_pods_log_permission_is_a_config_error(
    control_plane: ControlPlane, kubelet: TestKubelet, namespace: str
) -> None:
    scenario(control_plane, kubelet, namespace)
    rules = [r for r in OPERATOR_RULES if r["resources"] != ["pods/log"]]
    kubeconfig = control_plane.service_account(namespace, "nolog", rules=rules)
    async with adapter(kubeconfig) as kube:
        with pytest.raises(ConfigError) as err:
            await kube.read_log(namespace, "web-new-a", "app", tail_lines=5)
        assert "pods/log" in str(err.value) and "RBAC" in str(err.value)
        ro = await kube.get_rollout(namespace, "web")
        with pytest.raises(ConfigError, match="pods/log"):
            await gather_evidence(kube, ro, LogBounds(), trigger="t", now=datetime.now(UTC))


async def test_missing_status_permission_names_rollouts_status(control_plane: ControlPlane, namespace: str) -> None:
    create_rollout(control_plane, namespace, "web")
    rules = [r for r in OPERATOR_RULES if r["resources"] != ["rollouts/status"]]
    kubeconfig = control_plane.service_account(namespace, "nostatus", rules=rules)
    async with adapter(kubeconfig) as kube:
        with pytest.raises(ConfigError, match="patch rollouts/status"):
            await kube.patch_rollout_status(namespace, "web", ABORT_STATUS_PATCH)


# --- Secrets --------------------------------------------------------------------------------------------


async def test_secret_keys(control_plane: ControlPlane, namespace: str, kube: KubeAdapter) -> None:
    control_plane.admin.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "llm"},
            "data": {"api-key": base64.b64encode(b"sk-test\n").decode()},
        },
    )
    assert await kube.read_secret_key(namespace, "llm", "api-key") == "sk-test"
    with pytest.raises(ConfigError) as err:
        await kube.read_secret_key(namespace, "openai", "api-key")
    assert f"{namespace}/openai" in str(err.value) and "'api-key'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        await kube.read_secret_key(namespace, "llm", "token")
    assert f"{namespace}/llm" in str(err.value) and "'token'" in str(err.value)
    assert "api-key" not in str(err.value)  # the Secret's other keys are never listed


async def test_secret_without_permission_is_a_config_error(control_plane: ControlPlane, namespace: str) -> None:
    kubeconfig = control_plane.service_account(namespace, "nosecrets", rules=OPERATOR_RULES)
    async with adapter(kubeconfig) as kube:
        with pytest.raises(ConfigError, match="get secrets"):
            await kube.read_secret_key(namespace, "llm", "api-key")


# --- our resources --------------------------------------------------------------------------------------


def ticket_body(name: str, rollout: str) -> dict[str, Any]:
    return {
        "apiVersion": "selfheal.dev/v1alpha1",
        "kind": "RemediationTicket",
        "metadata": {"name": name},
        "spec": {
            "rollout": rollout,
            "policy": "default",
            "podTemplateHash": NEW,
            "fingerprint": "abc123",
            "verdict": {
                "verdict": "unhealthy",
                "confidence": 90,
                "analyzer": "statistical",
                "summary": "panic in canary",
            },
        },
    }


async def test_two_recorders_at_once_lose_no_occurrence(control_plane: ControlPlane, namespace: str) -> None:
    """Two operators (two connections) count sightings of one ticket at the same moment: each write carries
    the resourceVersion it read, a 409 is read again, so every sighting counts exactly once."""
    name = f"web-{NEW}"
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with adapter(control_plane.kubeconfig) as one, adapter(control_plane.kubeconfig) as other:
        await one.create_ticket(namespace, ticket_body(name, "web"))

        async def recorder(kube: KubeAdapter, prefix: str) -> int:
            written = 0
            for i in range(6):
                key = f"{prefix}-{i}"
                _, done = await tickets.update_status(
                    kube, namespace, name, lambda o, key=key: tickets.occurrence_patch(o.get("status"), key, now)
                )
                written += done
            return written

        # Two writers: each refusal of one is a write of the other, so neither can be refused more than six
        # times in a row, within the eight attempts a write gets.
        counts = await asyncio.gather(recorder(one, "a"), recorder(other, "b"))
        # the same sightings again (a restart in between): nothing more is counted
        again = await asyncio.gather(recorder(other, "a"), recorder(one, "b"))
    status = (await one_ticket(control_plane, namespace, name))["status"]
    assert counts == [6, 6] and again == [0, 0]
    assert status["occurrences"] == 12, status
    assert sorted(status["occurrenceKeys"]) == sorted(f"{p}-{i}" for p in "ab" for i in range(6))


async def one_ticket(control_plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    async with adapter(control_plane.kubeconfig) as kube:
        found = await kube.get_ticket(namespace, name)
    assert found is not None
    return found


async def test_tickets_and_policies(control_plane: ControlPlane, namespace: str, kube: KubeAdapter) -> None:
    created, fresh = await kube.create_ticket(namespace, ticket_body(f"web-{NEW}", "web"))
    assert fresh and created["metadata"]["name"] == f"web-{NEW}"
    existing, fresh = await kube.create_ticket(namespace, ticket_body(f"web-{NEW}", "web"))
    assert not fresh and existing["metadata"]["uid"] == created["metadata"]["uid"]
    await kube.create_ticket(namespace, ticket_body(f"api-{NEW}", "api"))

    patched = await kube.patch_ticket_status(namespace, f"web-{NEW}", {"status": {"occurrences": 2}})
    assert patched["status"]["occurrences"] == 2
    assert (await kube.get_ticket(namespace, f"web-{NEW}"))["status"]["occurrences"] == 2
    assert await kube.get_ticket(namespace, "nope") is None
    assert {t["metadata"]["name"] for t in await kube.list_tickets(namespace)} == {f"web-{NEW}", f"api-{NEW}"}
    assert [t["metadata"]["name"] for t in await kube.list_tickets(namespace, rollout="api")] == [f"api-{NEW}"]
    assert await kube.list_policies(namespace) == []
    with pytest.raises(PermanentError):
        await kube.create_ticket(
            namespace,
            {
                "apiVersion": "selfheal.dev/v1alpha1",
                "kind": "RemediationTicket",
                "metadata": {"name": "bad"},
                "spec": {},
            },
        )


def test_rollout_read_model_matches_what_the_apiserver_returns(control_plane: ControlPlane, namespace: str) -> None:
    obj = create_rollout(control_plane, namespace, "web")
    ro = Rollout.from_obj(json.loads(json.dumps(obj)))
    assert ro.status.observed_generation == "1" and ro.generation == 1


async def test_failed_log_reads_are_recorded_and_named_in_the_verdict(
    control_plane: ControlPlane, kubelet: TestKubelet, namespace: str, kube: KubeAdapter
) -> None:
    scenario(control_plane, kubelet, namespace)
    kubelet.fail_reads(namespace, "web-new-a")
    kubelet.fail_reads(namespace, "web-old-b", status=500)
    ro = await kube.get_rollout(namespace, "web")
    bounds = LogBounds(pods_per_side=4, containers=["app"], previous_container=False)
    evidence = await gather_evidence(kube, ro, bounds, trigger="indefinite-pause", now=datetime.now(UTC))

    failed = {(log.pod, log.container): log for log in evidence.failed_reads()}
    assert set(failed) == {("web-new-a", "app"), ("web-old-b", "app")}
    assert all(log.text == "" and log.error for log in failed.values())
    read = [log for p in evidence.pods for log in p.logs if not log.error]
    assert read and all(log.text for log in read)

    _, _, verdict, bundle = prepare(evidence, AnalysisSpec())
    assert verdict.verdict.value != "healthy"
    assert "web-new-a/app" in verdict.summary and "web-old-b/app" in verdict.summary
    assert "could not be read" in verdict.summary
    assert "logs_unreadable" in bundle.messages[1]["content"]
