"""The test control plane itself: real pods/log path, real RBAC, faithful Argo CRD behaviour."""

from __future__ import annotations

import pytest

from selfheal.testing.controlplane import ControlPlane
from selfheal.testing.kubelet import NODE_NAME, TestKubelet
from selfheal.testing.rest import ApiError


def _pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": NODE_NAME, "containers": [{"name": "app", "image": "demo:blue"}]},
    }


def test_pod_logs_go_through_the_real_pods_log_path(
    control_plane: ControlPlane, kubelet: TestKubelet, namespace: str
) -> None:
    admin = control_plane.admin
    admin.create(f"/api/v1/namespaces/{namespace}/pods", _pod("web"))
    kubelet.append(namespace, "web", "app", *[f"200 - blue {i}" for i in range(100)])
    path = f"/api/v1/namespaces/{namespace}/pods/web/log"

    assert admin.text(path, tailLines=2) == "200 - blue 98\n200 - blue 99\n"
    assert admin.text(path, limitBytes=12) == "200 - blue 0"
    assert admin.text(path, sinceSeconds=3600).count("\n") == 100
    assert admin.text(path, timestamps="true", tailLines=1).split(" ", 1)[1] == "200 - blue 99\n"
    with pytest.raises(ApiError) as err:
        admin.text(path, previous="true")
    assert err.value.status == 400

    kubelet.restart_container(namespace, "web", "app")
    kubelet.append(namespace, "web", "app", "starting again")
    assert admin.text(path, previous="true", tailLines=1) == "200 - blue 99\n"
    assert admin.text(path) == "starting again\n"


def test_rbac_is_real(control_plane: ControlPlane, kubelet: TestKubelet, namespace: str) -> None:
    control_plane.admin.create(f"/api/v1/namespaces/{namespace}/pods", _pod("web"))
    kubeconfig = control_plane.service_account(
        namespace, "reader", rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    )
    with control_plane.client(kubeconfig) as reader:
        assert [p["metadata"]["name"] for p in reader.items(f"/api/v1/namespaces/{namespace}/pods")] == ["web"]
        with pytest.raises(ApiError) as err:
            reader.text(f"/api/v1/namespaces/{namespace}/pods/web/log")
        assert err.value.status == 403
        assert "pods/log" in str(err.value)


def test_rollout_status_is_a_strict_subresource(control_plane: ControlPlane, namespace: str) -> None:
    admin = control_plane.admin
    base = f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts"
    admin.create(
        base,
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "demo:blue"}]},
                },
            },
        },
    )
    # status sent to the main resource is dropped; sent to /status it is kept, unknown keys pruned.
    admin.patch(f"{base}/web", {"status": {"abort": True}})
    assert "abort" not in admin.get(f"{base}/web").get("status", {})
    admin.patch(f"{base}/web/status", {"status": {"abort": True, "observedGeneration": "1", "kopf": {"x": 1}}})
    status = admin.get(f"{base}/web")["status"]
    assert status == {"abort": True, "observedGeneration": "1"}
    # observedGeneration is a string in Argo's schema
    with pytest.raises(ApiError) as err:
        admin.patch(f"{base}/web/status", {"status": {"observedGeneration": 2}})
    assert err.value.status == 422


def test_analysisrun_has_no_status_subresource_and_requires_phase(control_plane: ControlPlane, namespace: str) -> None:
    admin = control_plane.admin
    base = f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/analysisruns"
    with pytest.raises(ApiError) as err:
        admin.create(
            base,
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisRun",
                "metadata": {"name": "no-metrics"},
                "spec": {},
            },
        )
    assert err.value.status == 422
    run = admin.create(
        base,
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {"name": "ar"},
            "spec": {"metrics": [{"name": "m", "provider": {"web": {"url": "http://x"}}}]},
        },
    )
    with pytest.raises(ApiError) as err:
        admin.patch(f"{base}/ar", {"status": {"message": "no phase"}})
    assert err.value.status == 422
    updated = admin.patch(f"{base}/ar", {"status": {"phase": "Running"}})
    assert updated["status"]["phase"] == "Running"
    assert updated["metadata"]["generation"] > run["metadata"]["generation"]
    with pytest.raises(ApiError) as err:
        admin.get(f"{base}/ar/status")
    assert err.value.status == 404


def test_teardown_leaves_no_process_or_port_behind() -> None:
    import socket

    cp = ControlPlane(install_crds=False)
    cp.start()
    pids = [p.pid for p in cp._procs]
    ports = [cp.port, cp.etcd_port]
    workdir = cp.workdir
    cp.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            import os

            os.kill(pid, 0)
    for port in ports:  # nothing listens any more
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
    assert not workdir.exists()


def test_a_failed_start_cleans_up_too(tmp_path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("etcd", "kube-apiserver"):
        script = fake / name
        script.write_text("#!/bin/sh\nexit 7\n")
        script.chmod(0o755)
    cp = ControlPlane(fake)
    with pytest.raises(Exception) as err:
        cp.start(timeout=10)
    assert "exited with 7" in str(err.value)
    assert not cp.workdir.exists()
    assert cp._procs == []
