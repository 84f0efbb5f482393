"""What every Rollout strategy's reconcile shares in the simulated controller: ReplicaSets, revisions, ephemeral
metadata, pause and abort status, conditions, phase and the status write (contract §1-§4, §6, §7)."""

from __future__ import annotations

import copy
import json
import logging
from typing import TYPE_CHECKING, Any

from selfheal.testing.argosim.status import (
    calculate_phase,
    format_selector,
    get_condition,
    set_condition,
)
from selfheal.testing.argosim.util import (
    controller_uid,
    merge_diff,
    now_utc,
    owner_ref,
    parse_ts,
    pod_template_hash,
    prune,
    ts,
)
from selfheal.testing.rest import ApiError

if TYPE_CHECKING:
    from selfheal.testing.argosim.simulator import ArgoSimulator

log = logging.getLogger(__name__)

GROUP = "/apis/argoproj.io/v1alpha1"
HASH_LABEL = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
DESIRED = "rollout.argoproj.io/desired-replicas"
EPHEMERAL = "rollout.argoproj.io/ephemeral-metadata"
_SKIP_ANNOTATIONS = {
    REVISION,
    DESIRED,
    "rollout.argoproj.io/revision-history",
    "kubectl.kubernetes.io/last-applied-configuration",
}
# Go omitempty: these fields vanish from the written status when zero / false.
_OMIT_FALSY = (
    "abort",
    "controllerPause",
    "promoteFull",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "HPAReplicas",
    "currentPodHash",
    "currentStepHash",
    "stableRS",
    "selector",
)


def rs_hash(rs: dict | None) -> str:
    return ((rs or {}).get("metadata", {}).get("labels") or {}).get(HASH_LABEL, "")


def revision_of(obj: dict | None) -> int:
    try:
        return int(((obj or {}).get("metadata", {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


class RolloutReconcile:
    """The shared part of one reconcile of one observed Rollout; a strategy's subclass (canary, blue-green) is
    built fresh per reconcile and its :meth:`run` called."""

    strategy = ""
    # The ephemeral metadata of the new pods and of the stable ones (canary/stable, preview/active).
    metadata_keys = ("", "")

    def __init__(self, sim: ArgoSimulator, rollout: dict, replicasets: list[dict], runs: list[dict]) -> None:
        self.sim = sim
        self.client = sim.client
        self.ro = rollout
        self.meta = rollout["metadata"]
        self.ns, self.name = self.meta["namespace"], self.meta["name"]
        self.spec = rollout["spec"]
        self.status: dict = copy.deepcopy(rollout.get("status") or {})
        self.strategy_spec: dict = (self.spec.get("strategy") or {}).get(self.strategy) or {}
        uid = self.meta["uid"]
        self.all_rs = [rs for rs in replicasets if controller_uid(rs) == uid]
        self.runs = [r for r in runs if controller_uid(r) == uid]
        self.computed_hash = pod_template_hash(self.spec.get("template") or {}, self.status.get("collisionCount"))
        self.new_rs = next(
            (rs for rs in self.all_rs if rs["metadata"]["name"] == f"{self.name}-{self.computed_hash}"), None
        )
        self.add_pause: list[str] = []
        self.remove_pause: list[str] = []
        self.clear_pause = False
        self.add_abort = False
        self.remove_abort = False
        self.abort_message = ""
        self.rs_created = False
        self.now = now_utc()
        # The runs chosen as current this reconcile (by kind), and what the status records of them.
        self.current_runs: dict[str, dict | None] | None = None
        self.run_statuses: dict[str, Any] | None = None
        self.now_s = ts(self.now)

    # -- derived state ------------------------------------------------------------------------------

    @property
    def stable_rs(self) -> dict | None:
        stable = self.status.get("stableRS")
        return next((rs for rs in self.all_rs if stable and rs_hash(rs) == stable), None)

    @property
    def new(self) -> dict:
        """The new ReplicaSet, once `ensure_new_rs` has made sure there is one."""
        assert self.new_rs is not None, "ensure_new_rs runs first"
        return self.new_rs

    @property
    def path(self) -> str:
        return f"{GROUP}/namespaces/{self.ns}/rollouts/{self.name}"

    def revision(self) -> str:
        return (self.meta.get("annotations") or {}).get(REVISION, "")

    def is_aborted(self) -> bool:
        if self.remove_abort:
            return False
        return self.add_abort or bool(self.status.get("abort"))

    def fully_promoted(self) -> bool:
        return bool(self.status.get("stableRS")) and self.status.get("stableRS") == self.status.get("currentPodHash")

    def pause_condition(self, reason: str) -> dict | None:
        return next((c for c in self.status.get("pauseConditions") or [] if c.get("reason") == reason), None)

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.sim.rollout_event(self.ro, reason, message, warning=warning)

    def write(self, subresource: str, body: dict) -> dict:
        """Merge-patch this Rollout (``"/status"`` or ``""``); the controller sees its own write at once."""
        written = self.client.patch(f"{self.path}{subresource}", body)
        self.sim.informer.wrote(written)
        return written

    # -- what each strategy decides ----------------------------------------------------------------

    def run(self) -> None:
        raise NotImplementedError

    def is_available(self, new: dict) -> bool:
        """The ``Available`` condition."""
        raise NotImplementedError

    def is_healthy(self, new: dict) -> bool:
        """The ``Healthy`` condition (RolloutHealthy)."""
        raise NotImplementedError

    def strategy_progressed(self, new: dict) -> bool:
        """Progress only this strategy counts (a step, a Service switch)."""
        raise NotImplementedError

    # -- paused / retry conditions (checkPausedConditions) -------------------------------------------

    def check_paused_conditions(self) -> bool:
        if self.status.get("observedGeneration") != str(self.meta.get("generation")):
            return True
        conditions = copy.deepcopy(self.status.get("conditions") or [])
        progressing = get_condition(conditions, "Progressing")
        prog_paused = bool(progressing and progressing["reason"] == "RolloutPaused")
        is_paused = bool(self.status.get("pauseConditions")) or bool(self.spec.get("paused"))
        abort_exists = bool(progressing and progressing["reason"] == "RolloutAborted")
        changed, resumed = False, False
        if is_paused != prog_paused and not abort_exists:
            reason, message = (
                ("RolloutPaused", "Rollout is paused") if is_paused else ("RolloutResumed", "Rollout is resumed")
            )
            changed |= set_condition(conditions, "Progressing", "Unknown", reason, message, self.now_s)
            resumed = not is_paused
        if not self.is_aborted() and abort_exists:
            changed |= set_condition(
                conditions, "Progressing", "Unknown", "RolloutRetry", "Retrying Rollout after abort", self.now_s
            )
        paused = get_condition(conditions, "Paused")
        if is_paused != bool(paused and paused["status"] == "True") and not abort_exists:
            changed |= set_condition(
                conditions, "Paused", "True" if is_paused else "False", "RolloutPaused", "Rollout is paused", self.now_s
            )
        if not changed:
            return True
        status = dict(self.status, conditions=conditions)
        phase, message = calculate_phase(self.spec, status)
        self.write("/status", {"status": {"conditions": conditions, "phase": phase, "message": message or None}})
        if resumed:
            self.event("RolloutResumed", "Rollout is resumed")
        return False

    # -- ReplicaSets ---------------------------------------------------------------------------------

    def ensure_new_rs(self) -> bool:
        """Create the new ReplicaSet if needed and keep revisions in sync; False ends the reconcile."""
        max_revision = max((revision_of(rs) for rs in self.all_rs), default=0)
        if self.new_rs is None:
            revision = max_revision + 1
            body = self._new_rs_body(revision)
            try:
                self.new_rs = self.client.create(f"/apis/apps/v1/namespaces/{self.ns}/replicasets", body)
            except ApiError as e:
                if e.status != 409:
                    raise
                existing = self.client.get(f"/apis/apps/v1/namespaces/{self.ns}/replicasets/{body['metadata']['name']}")
                if controller_uid(existing) != self.meta["uid"]:
                    count = int(self.status.get("collisionCount") or 0) + 1
                    self.write("/status", {"status": {"collisionCount": count}})
                    return False
                self.new_rs = existing
            else:
                self.rs_created = True
                self.event(
                    "NewReplicaSetCreated",
                    f"Created ReplicaSet {self.new_rs['metadata']['name']} (revision {revision})",
                )
            self.all_rs.append(self.new_rs)
        elif revision_of(self.new_rs) < max_revision or revision_of(self.new_rs) == 0:
            revision = max_revision + 1
            self.new_rs = self.client.patch(
                f"/apis/apps/v1/namespaces/{self.ns}/replicasets/{self.new_rs['metadata']['name']}",
                {"metadata": {"annotations": {REVISION: str(revision)}}},
            )
            self.all_rs = [
                self.new_rs if rs["metadata"]["uid"] == self.new_rs["metadata"]["uid"] else rs for rs in self.all_rs
            ]
        copied = {k: v for k, v in (self.meta.get("annotations") or {}).items() if k not in _SKIP_ANNOTATIONS}
        current = self.new_rs["metadata"].get("annotations") or {}
        if any(current.get(k) != v for k, v in copied.items()):
            # Rollout annotations (Kopf's included) are carried over to the new ReplicaSet (§4).
            self.new_rs = self.client.patch(
                f"/apis/apps/v1/namespaces/{self.ns}/replicasets/{self.new_rs['metadata']['name']}",
                {"metadata": {"annotations": copied}},
            )
            self.all_rs = [
                self.new_rs if rs["metadata"]["uid"] == self.new_rs["metadata"]["uid"] else rs for rs in self.all_rs
            ]
        current = str(revision_of(self.new_rs))
        if self.revision() != current:
            self.ro = self.write("", {"metadata": {"annotations": {REVISION: current}}})
            self.meta = self.ro["metadata"]
            self.event("RolloutUpdated", f"Rollout updated to revision {current}")
        return True

    def _new_rs_body(self, revision: int) -> dict:
        template = copy.deepcopy(self.spec.get("template") or {})
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = dict(tmeta.get("labels") or {}, **{HASH_LABEL: self.computed_hash})
        fully = not self.status.get("stableRS") or self.status.get("stableRS") == self.computed_hash
        new_key, stable_key = self.metadata_keys
        ephemeral = self.strategy_spec.get(stable_key if fully else new_key) or {}
        annotations = {k: v for k, v in (self.meta.get("annotations") or {}).items() if k not in _SKIP_ANNOTATIONS}
        annotations.update({REVISION: str(revision), DESIRED: str(self.spec.get("replicas", 1))})
        if ephemeral:
            tmeta["labels"].update(ephemeral.get("labels") or {})
            if ephemeral.get("annotations"):
                tmeta["annotations"] = dict(tmeta.get("annotations") or {}, **ephemeral["annotations"])
            annotations[EPHEMERAL] = json.dumps(ephemeral, sort_keys=True)
        selector = copy.deepcopy(self.spec.get("selector") or {})
        selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{HASH_LABEL: self.computed_hash})
        labels = dict(
            (self.spec.get("template") or {}).get("metadata", {}).get("labels") or {},
            **{HASH_LABEL: self.computed_hash},
        )
        spec = {"replicas": 0, "selector": selector, "template": template}
        if self.spec.get("minReadySeconds"):
            spec["minReadySeconds"] = self.spec["minReadySeconds"]
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{self.name}-{self.computed_hash}",
                "namespace": self.ns,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [owner_ref(self.ro)],
            },
            "spec": spec,
        }

    def reconcile_ephemeral_metadata(self) -> None:
        new_metadata, stable_metadata = (self.strategy_spec.get(key) or {} for key in self.metadata_keys)
        if not self.status.get("stableRS") or self.status.get("stableRS") == rs_hash(self.new_rs):
            self._sync_ephemeral(self.new_rs, stable_metadata)
        else:
            self._sync_ephemeral(self.new_rs, new_metadata)
            if self.stable_rs is not None:
                self._sync_ephemeral(self.stable_rs, stable_metadata)

    def _sync_ephemeral(self, rs: dict | None, metadata: dict) -> None:
        if rs is None:
            return
        annotations = rs["metadata"].get("annotations") or {}
        previous = json.loads(annotations.get(EPHEMERAL) or "{}")
        wanted = {"labels": metadata.get("labels") or {}, "annotations": metadata.get("annotations") or {}}
        wanted = {k: v for k, v in wanted.items() if v}
        if previous == wanted:
            return

        def fix(current: dict, kind: str) -> dict:
            out = {k: v for k, v in current.items() if k not in (previous.get(kind) or {})}
            out.update(wanted.get(kind) or {})
            return out

        tmeta = (rs["spec"].get("template") or {}).get("metadata") or {}
        template_patch = {}
        for kind in ("labels", "annotations"):
            diff = merge_diff(tmeta.get(kind) or {}, fix(tmeta.get(kind) or {}, kind))
            if diff:
                template_patch[kind] = diff
        patch: dict = {"metadata": {"annotations": {EPHEMERAL: json.dumps(wanted, sort_keys=True) if wanted else None}}}
        if template_patch:
            patch["spec"] = {"template": {"metadata": template_patch}}
        updated = self.client.patch(f"/apis/apps/v1/namespaces/{self.ns}/replicasets/{rs['metadata']['name']}", patch)
        self.all_rs = [updated if r["metadata"]["uid"] == updated["metadata"]["uid"] else r for r in self.all_rs]
        if self.new_rs and self.new_rs["metadata"]["uid"] == updated["metadata"]["uid"]:
            self.new_rs = updated
        selector = f"{HASH_LABEL}={rs_hash(rs)}"
        for pod in self.client.items(f"/api/v1/namespaces/{self.ns}/pods", labelSelector=selector):
            pmeta = pod["metadata"]
            pmeta["labels"] = fix(pmeta.get("labels") or {}, "labels")
            pmeta["annotations"] = fix(pmeta.get("annotations") or {}, "annotations")
            try:
                self.client.put(f"/api/v1/namespaces/{self.ns}/pods/{pmeta['name']}", pod)
            except ApiError as e:
                if e.status not in (404, 409):
                    raise

    def _scale(self, rs: dict, replicas: int) -> bool:
        current = int(rs["spec"].get("replicas") or 0)
        desired = str(self.spec.get("replicas", 1))
        annotations = rs["metadata"].get("annotations") or {}
        if current == replicas and annotations.get(DESIRED) == desired:
            return False
        updated = self.client.patch(
            f"/apis/apps/v1/namespaces/{self.ns}/replicasets/{rs['metadata']['name']}",
            {"metadata": {"annotations": {DESIRED: desired}}, "spec": {"replicas": replicas}},
        )
        self.all_rs = [updated if r["metadata"]["uid"] == updated["metadata"]["uid"] else r for r in self.all_rs]
        if self.new["metadata"]["uid"] == updated["metadata"]["uid"]:
            self.new_rs = updated
        if current != replicas:
            direction = "up" if replicas > current else "down"
            self.event(
                "ScalingReplicaSet",
                f"Scaled {direction} ReplicaSet {rs['metadata']['name']} "
                f"(revision {revision_of(rs)}) from {current} to {replicas}",
            )
            return True
        return False

    # -- status --------------------------------------------------------------------------------------

    def base_status(self) -> dict:
        new_hash = rs_hash(self.new_rs) if self.new_rs else self.computed_hash

        def total(key: str, rss: list[dict]) -> int:
            return sum(int((rs.get("status") or {}).get(key) or 0) for rs in rss)

        new_rss = [self.new_rs] if self.new_rs else []
        replicas = total("replicas", self.all_rs)
        status: dict[str, Any] = {
            "currentPodHash": new_hash,
            "replicas": replicas,
            "updatedReplicas": total("replicas", new_rss),
            "readyReplicas": total("readyReplicas", self.all_rs),
            "availableReplicas": total("availableReplicas", self.all_rs),
            "HPAReplicas": replicas,
            "selector": format_selector(self.spec.get("selector")),
            "collisionCount": self.status.get("collisionCount"),
            "conditions": copy.deepcopy(self.status.get("conditions") or []),
            "restartedAt": self.status.get("restartedAt"),
            "promoteFull": bool(self.status.get("promoteFull")) and new_hash != self.status.get("stableRS"),
            "stableRS": self.status.get("stableRS"),
        }
        if self.rs_created:
            set_condition(
                status["conditions"],
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{self.new["metadata"]["name"]}"',
                self.now_s,
            )
        return status

    def calculate_conditions(self, new: dict) -> None:
        conditions = new["conditions"]
        old = self.status
        is_paused = bool(old.get("pauseConditions")) or bool(self.spec.get("paused"))
        aborted = self.is_aborted()
        complete = bool(new.get("stableRS")) and new.get("stableRS") == new["currentPodHash"]
        was_complete = get_condition(old.get("conditions"), "Completed")
        not_completed = False
        if not is_paused and complete:
            set_condition(conditions, "Completed", "True", "RolloutCompleted", "RolloutCompleted", self.now_s)
        elif was_complete is not None:
            not_completed = (
                set_condition(conditions, "Completed", "False", "RolloutCompleted", "RolloutCompleted", self.now_s)
                and was_complete["status"] == "True"
            )
        rs_name = self.new_rs["metadata"]["name"] if self.new_rs else self.name
        if not aborted:
            if complete:
                set_condition(
                    conditions,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs_name}" has successfully progressed.',
                    self.now_s,
                )
            elif self._progressed(new):
                current = get_condition(conditions, "Progressing")
                transition = current["lastTransitionTime"] if current and current["status"] == "True" else self.now_s
                conditions[:] = [c for c in conditions if c.get("type") != "Progressing"]
                conditions.append(
                    {
                        "type": "Progressing",
                        "status": "True",
                        "reason": "ReplicaSetUpdated",
                        "message": f'ReplicaSet "{rs_name}" is progressing.',
                        "lastUpdateTime": self.now_s,
                        "lastTransitionTime": transition,
                    }
                )
            elif not is_paused and self._timed_out(conditions):
                message = f'ReplicaSet "{rs_name}" has timed out progressing.'
                if set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded", message, self.now_s):
                    self.event("ProgressDeadlineExceeded", message, warning=True)
                if self.spec.get("progressDeadlineAbort"):
                    self.add_abort, self.abort_message = True, message
                    aborted = True
        if self.is_available(new):
            set_condition(
                conditions, "Available", "True", "AvailableReason", "Rollout has minimum availability", self.now_s
            )
        else:
            set_condition(
                conditions,
                "Available",
                "False",
                "AvailableReason",
                "Rollout does not have minimum availability",
                self.now_s,
            )
        if aborted:
            message = f"Rollout aborted update to revision {self.revision()}"
            if self.abort_message:
                message = f"{message}: {self.abort_message}"
            if set_condition(conditions, "Progressing", "False", "RolloutAborted", message, self.now_s):
                self.event("RolloutAborted", message, warning=True)
        if self.is_healthy(new):
            set_condition(conditions, "Healthy", "True", "RolloutHealthy", "Rollout is healthy", self.now_s)
        else:
            set_condition(conditions, "Healthy", "False", "RolloutHealthy", "Rollout is not healthy", self.now_s)
        if not_completed:
            self.event(
                "RolloutNotCompleted",
                f"Rollout not completed, started update to revision {self.revision()} ({new['currentPodHash']})",
            )

    def _timed_out(self, conditions: list[dict]) -> bool:
        """RolloutTimedOut: no progress for ``progressDeadlineSeconds`` (default 600) since lastUpdateTime."""
        progressing = get_condition(conditions, "Progressing")
        if progressing is None or progressing["reason"] == "NewReplicaSetAvailable":
            return False
        if progressing["reason"] == "ProgressDeadlineExceeded":
            return True
        since = parse_ts(progressing.get("lastUpdateTime"))
        deadline = float(self.spec.get("progressDeadlineSeconds", 600))
        return since is not None and (self.now - since).total_seconds() > deadline

    def _progressed(self, new: dict) -> bool:
        """RolloutProgressing: the new ReplicaSet moved, or the strategy did."""
        old = self.status
        if old.get("currentPodHash") != new.get("currentPodHash") or self.strategy_progressed(new):
            return True
        return (
            new.get("updatedReplicas", 0) != old.get("updatedReplicas", 0)
            or new.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or new.get("availableReplicas", 0) > old.get("availableReplicas", 0)
        )

    def calculate_pause_status(self, new: dict) -> None:
        if self.is_aborted():
            new["abort"] = True
            new["abortedAt"] = self.status.get("abortedAt") or self.now_s
            return
        if self.clear_pause:
            return
        controller_pause = bool(self.status.get("controllerPause"))
        old_conditions = self.status.get("pauseConditions") or []
        conditions = [c for c in old_conditions if c.get("reason") not in self.remove_pause]
        existing = {c.get("reason") for c in old_conditions}
        added = []
        for reason in self.add_pause:
            if reason not in existing:
                conditions.append({"reason": reason, "startTime": self.now_s})
                existing.add(reason)
                controller_pause = True
                added.append(reason)
        if added and not old_conditions:
            self.event("RolloutPaused", f"Rollout is paused ({added[0]})")
        if conditions:
            new["controllerPause"] = controller_pause
            new["pauseConditions"] = conditions

    def persist(self, new: dict) -> None:
        self.calculate_conditions(new)
        self.calculate_pause_status(new)
        new["observedGeneration"] = str(self.meta.get("generation"))
        new["phase"], new["message"] = calculate_phase(self.spec, new)
        for key in _OMIT_FALSY:
            if not new.get(key):
                new.pop(key, None)
        if not new.get("message"):
            new.pop("message", None)
        new = prune(new)
        diff = merge_diff(self.status, new)
        if diff:
            self.write("/status", {"status": diff})


__all__ = ["RolloutReconcile", "calculate_phase", "get_condition", "set_condition"]
