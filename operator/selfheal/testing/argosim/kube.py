"""The parts of Kubernetes the simulated Argo controller relies on: the ReplicaSet controller and a kubelet."""

from __future__ import annotations

import hashlib
import logging
import random
from datetime import datetime
from typing import Any

from selfheal.testing.argosim.util import Recorder, controller_uid, merge_diff, now_utc, parse_ts, ts
from selfheal.testing.kubelet import NODE_NAME
from selfheal.testing.rest import ApiError, KubeREST
from selfheal.testing.workloads import Workloads

log = logging.getLogger(__name__)

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"

# What the simulated kube-controller-manager and kubelet may do, bound to their own ServiceAccount.
NODE_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["get", "patch", "update"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["replicasets/status"], "verbs": ["get", "patch", "update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]},
]


# How long a pod a ReplicaSet scales down stays terminating (its logs readable), as a container that exits
# promptly on SIGTERM would; Kubernetes allows up to the pod's terminationGracePeriodSeconds (30 s by default).
TERMINATION_GRACE_SECONDS = 3


def _rand_suffix(rng: random.Random, n: int = 5) -> str:
    return "".join(rng.choice(_NAME_CHARS) for _ in range(n))


class NodeSimulator:
    """Creates and deletes pods to match ReplicaSets owned by Rollouts, runs their containers through
    :class:`Workloads`, and reports pod and ReplicaSet status the way the kubelet and the RS controller do."""

    def __init__(self, client: KubeREST, kubelet: Any, workloads: Workloads) -> None:
        self.client = client
        self.kubelet = kubelet
        self.workloads = workloads
        self.recorder = Recorder(client, "kubelet", NODE_NAME)
        self._rng = random.Random()
        self._sent: dict[str, dict] = {}
        self._last_tick: datetime | None = None

    def reconcile(self, namespaces: list[str] | None) -> list[BaseException]:
        errors: list[BaseException] = []
        now = now_utc()
        dt = (now - self._last_tick).total_seconds() if self._last_tick else 0.0
        self._last_tick = now
        crashed = self.workloads.tick(now, min(dt, 2.0))
        scopes: list[str | None] = [*namespaces] if namespaces else [None]
        for scope in scopes:
            rs_path = f"/apis/apps/v1/namespaces/{scope}/replicasets" if scope else "/apis/apps/v1/replicasets"
            pod_path = f"/api/v1/namespaces/{scope}/pods" if scope else "/api/v1/pods"
            try:
                replicasets = self.client.items(rs_path)
                pods = self.client.items(pod_path)
            except ApiError as e:
                errors.append(e)
                continue
            by_owner: dict[str, list[dict]] = {}
            for pod in pods:
                leaving = pod["metadata"].get("deletionTimestamp")
                if leaving:  # terminating: its logs stay readable until its grace period is over
                    if (parse_ts(leaving) or now) <= now:
                        self._delete_pod(pod)
                    continue
                by_owner.setdefault(controller_uid(pod) or "", []).append(pod)
            for rs in replicasets:
                refs = rs["metadata"].get("ownerReferences") or []
                if not any(r.get("kind") == "Rollout" and r.get("controller") for r in refs):
                    continue
                try:
                    self._sync_rs(rs, by_owner.get(rs["metadata"]["uid"], []), now)
                except Exception as e:
                    if not (isinstance(e, ApiError) and e.status in (404, 409)):
                        errors.append(e)
        for run in crashed:
            self._backoff_event(run)
        return errors

    # -- ReplicaSet controller ------------------------------------------------------------------

    def _sync_rs(self, rs: dict, pods: list[dict], now: datetime) -> None:
        desired = int(rs["spec"].get("replicas") or 0)
        pods = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
        while len(pods) > desired:
            self._delete_pod(pods.pop(), grace=TERMINATION_GRACE_SECONDS)
        while len(pods) < desired:
            pods.append(self._create_pod(rs))
        ready = available = 0
        min_ready = float(rs["spec"].get("minReadySeconds") or 0)
        for pod in pods:
            since = self._sync_pod_status(pod, now)
            if since is not None:
                ready += 1
                if (now - since).total_seconds() >= min_ready:
                    available += 1
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        old = rs.get("status") or {}
        diff = merge_diff({k: old.get(k, 0) for k in status}, status)
        if diff:
            meta = rs["metadata"]
            self.client.patch(
                f"/apis/apps/v1/namespaces/{meta['namespace']}/replicasets/{meta['name']}/status", {"status": status}
            )

    def _create_pod(self, rs: dict) -> dict:
        meta = rs["metadata"]
        template = rs["spec"].get("template") or {}
        spec = dict(template.get("spec") or {})
        spec["nodeName"] = NODE_NAME
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{meta['name']}-{_rand_suffix(self._rng)}",
                "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }
        return self.client.create(f"/api/v1/namespaces/{meta['namespace']}/pods", body)

    def _delete_pod(self, pod: dict, grace: int = 0) -> None:
        """Delete the pod: at once (``grace`` 0, the kubelet confirming a terminated pod), or gracefully, as a
        scale-down does: the apiserver marks it terminating until ``grace`` seconds from now."""
        meta = pod["metadata"]
        try:
            self.client.request(
                "DELETE",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": grace},
            )
        except ApiError as e:
            if e.status != 404:
                raise
        if grace:
            return
        self._sent.pop(meta["uid"], None)
        self.workloads.forget(meta["namespace"], meta["name"])

    # -- kubelet ---------------------------------------------------------------------------------

    def _sync_pod_status(self, pod: dict, now: datetime) -> datetime | None:
        """Report the pod's status; returns since when it is Ready, or None."""
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        statuses, all_ready = [], True
        for container in pod["spec"].get("containers") or []:
            run = self.workloads.ensure(namespace, name, container, now)
            cid = hashlib.sha256(f"{meta['uid']}/{container['name']}/{run.restarts}".encode()).hexdigest()
            if run.running:
                state = {"running": {"startedAt": ts(run.running_since or now)}}
            else:
                backoff = max(1, round((run.backoff_until - now).total_seconds())) if run.backoff_until else 10
                state = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {backoff}s restarting failed container="
                        f"{container['name']} pod={name}_{namespace}({meta['uid']})",
                    }
                }
            all_ready = all_ready and run.running
            image = container.get("image", "")
            statuses.append(
                {
                    "name": container["name"],
                    "image": image,
                    "imageID": f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}",
                    "containerID": f"containerd://{cid}",
                    "ready": run.running,
                    "started": run.running,
                    "restartCount": run.restarts,
                    "state": state,
                    "lastState": run.last_termination or {},
                }
            )
        ready = "True" if all_ready else "False"
        started = meta.get("creationTimestamp") or ts(now)
        old = self._sent.get(meta["uid"]) or pod.get("status") or {}
        old_conds = {c["type"]: c for c in old.get("conditions") or []}

        def cond(kind: str, status: str) -> dict:
            prev = old_conds.get(kind)
            since = prev["lastTransitionTime"] if prev and prev.get("status") == status else ts(now)
            out = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
            if status == "False":
                out["reason"] = "ContainersNotReady"
                out["message"] = (
                    "containers with unready status: [" + " ".join(s["name"] for s in statuses if not s["ready"]) + "]"
                )
            return out

        octets = hashlib.sha256(meta["uid"].encode()).digest()
        conditions = [
            cond("Initialized", "True"),
            cond("Ready", ready),
            cond("ContainersReady", ready),
            cond("PodScheduled", "True"),
        ]
        status: dict[str, Any] = {
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "podIP": f"10.244.{octets[0] % 4}.{octets[1] % 250 + 2}",
            "startTime": started,
            "qosClass": "BestEffort",
            "conditions": conditions,
            "containerStatuses": statuses,
        }
        if self._sent.get(meta["uid"]) != status:
            self.client.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", {"status": status})
            self._sent[meta["uid"]] = status
        if not all_ready:
            return None
        ready_since = next(c["lastTransitionTime"] for c in conditions if c["type"] == "Ready")
        return parse_ts(ready_since)

    def _backoff_event(self, run: Any) -> None:
        try:
            pod = self.client.get(f"/api/v1/namespaces/{run.namespace}/pods/{run.pod}")
            self.recorder.event(
                pod,
                "BackOff",
                "Back-off restarting failed container",
                warning=True,
                field_path=f"spec.containers{{{run.container}}}",
                aggregate=True,
            )
        except ApiError as e:
            if e.status != 404:
                log.warning("BackOff event for %s/%s not recorded: %s", run.namespace, run.pod, e)


__all__ = ["NODE_RULES", "NodeSimulator"]
